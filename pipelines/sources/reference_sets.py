"""Reference code sets used by the landing validation rules (``@name`` in ``conf/base/sources.yml``)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pipelines.config import Settings
from pipelines.reference.geo import load_geography
from pipelines.reference.taxonomy import (
    CONTENT_TAXONOMY_FILE,
    CTV_GENRE_FILE,
    load_content_taxonomy,
    load_ctv_genres,
)


@lru_cache(maxsize=4)
def _static_sets(conf_dir: Path) -> dict[str, frozenset[str]]:
    return {
        "ctv_genres": frozenset(load_ctv_genres(conf_dir / CTV_GENRE_FILE)),
        "content_ids": frozenset(load_content_taxonomy(conf_dir / CONTENT_TAXONOMY_FILE)),
        "postal_codes": frozenset(load_geography(conf_dir).areas),
    }


def reference_sets(settings: Settings) -> dict[str, frozenset[str]]:
    """``purposes`` (configured), ``ctv_genres``, ``content_ids`` (Content Taxonomy 3.1), ``postal_codes``."""
    return {"purposes": frozenset(settings.purposes), **_static_sets(Path(settings.conf_dir))}
