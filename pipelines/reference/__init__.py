"""Static reference data: IAB taxonomies, interest mappings, the special-category deny-list, Belgian geography.

Pure Python, no Spark: loaders read ``conf/reference/`` and ``conf/mappings/`` and return frozen
dataclasses; Spark code turns their ``*_rows()`` / ``to_rows()`` tuples into small broadcast tables.
"""
from pipelines.reference.geo import (
    Geography,
    Locality,
    PostalArea,
    big_city_weight,
    language_area,
    load_geography,
    region_of_province,
)
from pipelines.reference.taxonomy import (
    AgeBand,
    AudienceNode,
    ContentMapping,
    ContentNode,
    DenyEntry,
    DenyList,
    GenreMapping,
    MappingError,
    Mappings,
    ProductMapping,
    ReferenceDataError,
    SubgenreMapping,
    iab_age_bands,
    iab_gender_ids,
    load_audience_taxonomy,
    load_content_taxonomy,
    load_ctv_genres,
    load_deny_list,
    load_mappings,
    read_mappings,
    subgenre_key,
    validate_mappings,
)

__all__ = [
    "AgeBand", "AudienceNode", "ContentMapping", "ContentNode", "DenyEntry", "DenyList", "GenreMapping",
    "Geography", "Locality", "MappingError", "Mappings", "PostalArea", "ProductMapping", "ReferenceDataError",
    "SubgenreMapping", "big_city_weight", "iab_age_bands", "iab_gender_ids", "language_area",
    "load_audience_taxonomy", "load_content_taxonomy", "load_ctv_genres", "load_deny_list", "load_geography",
    "load_mappings", "read_mappings", "region_of_province", "subgenre_key", "validate_mappings",
]
