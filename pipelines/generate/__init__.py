"""Synthetic landing zone (``audience generate``): see :mod:`pipelines.generate.landing`."""
from pipelines.generate.landing import DEFAULT_END_DATE, GenerateOptions, bad_row_kinds, generate_landing

__all__ = ["GenerateOptions", "generate_landing", "bad_row_kinds", "DEFAULT_END_DATE"]
