"""Data quality of every input and output: Great Expectations suites from ``conf/quality.yml``, results in
``ops/dq_results`` and an HTML report per run. Importing this package does not import Great Expectations."""
from pipelines.quality.suites import (
    DQResult,
    critical_failures,
    describe_failures,
    record_results,
    validate_inputs,
    validate_outputs,
)

__all__ = [
    "DQResult", "validate_inputs", "validate_outputs", "record_results", "critical_failures", "describe_failures",
]
