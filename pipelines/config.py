"""Configuration: frozen dataclasses loaded from YAML (``conf/base`` < ``conf/local`` < ``--conf FILE``).

No paths, dates or keys live in code: they come from here or from the command line. Secrets never do:
keys are read from the file named by ``AUDIENCE_KEYS`` (see :mod:`pipelines.privacy.keys`).

Example::

    >>> settings = load_settings()
    >>> settings.purposes["web_profile"].basis
    'consent'
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Mapping

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = PROJECT_ROOT / "conf"

BASES = ("consent", "legitimate_interest")


class ConfigError(ValueError):
    """A configuration file is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class SparkSettings:
    master: str = "local[2]"
    app_name: str = "audience-pipeline"
    shuffle_partitions: int = 8
    conf: Mapping[str, str] = field(default_factory=dict)
    delta_jars: str = "cache"


@dataclass(frozen=True)
class Purpose:
    name: str
    basis: str
    policy: str = ""

    @property
    def default_granted(self) -> bool:
        """Consent is off until granted; a legitimate interest is on until objected to."""
        return self.basis == "legitimate_interest"


@dataclass(frozen=True)
class TcfSettings:
    vendor_id: int = 4242
    required_purposes: tuple[int, ...] = (1, 3, 4)


@dataclass(frozen=True)
class IngestionSettings:
    max_clock_skew_minutes: int = 10
    min_year: int = 1900
    max_batch_mb: int = 1024   # event sources: new files ingested in batches of at most this much text (0: one)

    def __post_init__(self) -> None:
        if self.max_batch_mb < 0:
            raise ConfigError(f"ingestion.max_batch_mb must be 0 (no limit) or more, got {self.max_batch_mb}")

    @property
    def max_batch_bytes(self) -> int:
        return self.max_batch_mb * 1024 * 1024


@dataclass(frozen=True)
class ProfileSettings:
    epoch: date = date(2020, 1, 1)
    half_life_days: float = 30.0
    lookback_days: tuple[int, ...] = (28, 91)
    min_tv_minutes: float = 60.0
    min_web_events: float = 3.0
    min_lift: float = 1.2
    max_interests: int = 20
    web_event_weights: Mapping[str, float] = field(default_factory=lambda: {"page_view": 1.0, "ad_click": 3.0})
    loyalty_weight: float = 2.0
    purchase_lookback_days: int = 365
    purchase_weight: float = 5.0


@dataclass(frozen=True)
class SegmentSettings:
    path: str = "segments"
    audience_threshold: int = 50
    audience_rounding: int = 10
    min_audience_floor: int = 50


@dataclass(frozen=True)
class GeoSettings:
    k: int = 10
    dp_epsilon: float | None = None
    dp_max_contribution: int = 1


@dataclass(frozen=True)
class AdsDataSettings:
    recipients: tuple[str, ...] = ("adsdata",)
    expiry_months: int = 13


@dataclass(frozen=True)
class RefinementSettings:
    min_upload_rows: int = 100
    min_audience: int = 50
    rounding: int = 10
    difference_k: int = 50
    budget_requests_per_period: int = 20
    budget_period_days: int = 30


@dataclass(frozen=True)
class RetentionSettings:
    traffic_days: int = 365
    adsdata_days: int = 396
    customer_years_after_contract: int = 10
    quarantine_days: int = 90


@dataclass(frozen=True)
class TrackingSettings:
    tracking_uri: str | None = None
    experiment: str = "audience-pipeline"


@dataclass(frozen=True)
class Settings:
    """The whole configuration of one pipeline deployment."""

    spark: SparkSettings
    purposes: Mapping[str, Purpose]
    timezone: str = "Europe/Brussels"
    minimum_age: int = 18
    tcf: TcfSettings = TcfSettings()
    ingestion: IngestionSettings = IngestionSettings()
    profiles: ProfileSettings = ProfileSettings()
    segments: SegmentSettings = SegmentSettings()
    geo: GeoSettings = GeoSettings()
    adsdata: AdsDataSettings = AdsDataSettings()
    refinement: RefinementSettings = RefinementSettings()
    retention: RetentionSettings = RetentionSettings()
    tracking: TrackingSettings = TrackingSettings()
    conf_dir: Path = CONF_DIR
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def purpose(self, name: str) -> Purpose:
        try:
            return self.purposes[name]
        except KeyError:
            raise ConfigError(f"unknown purpose {name!r}; configured: {', '.join(sorted(self.purposes))}") from None

    @property
    def config_hash(self) -> str:
        """Stable hash of the effective configuration (an MLflow parameter)."""
        return hashlib.sha256(json.dumps(self.raw, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return data


def _section(cls: type, data: Mapping[str, Any] | None, name: str) -> Any:
    data = dict(data or {})
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{name}: unknown setting(s) {', '.join(unknown)}")
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        default = getattr(cls, key, None) if not isinstance(getattr(cls, key, None), property) else None
        if isinstance(value, list):
            value = tuple(value)
        elif key == "epoch" and isinstance(value, str):
            value = date.fromisoformat(value)
        if isinstance(default, (int, float)) and not isinstance(default, bool) and value is not None:
            if not isinstance(value, (int, float)):
                raise ConfigError(f"{name}.{key}: expected a number, got {value!r}")
        kwargs[key] = value
    return cls(**kwargs)


def settings_from_dict(data: Mapping[str, Any], conf_dir: Path = CONF_DIR) -> Settings:
    """Build :class:`Settings` from an already merged mapping (tests use this with small overrides)."""
    purposes_raw = data.get("purposes") or {}
    purposes: dict[str, Purpose] = {}
    for name, spec in purposes_raw.items():
        spec = dict(spec or {})
        basis = spec.get("basis")
        if basis not in BASES:
            raise ConfigError(f"purposes.{name}.basis must be one of {', '.join(BASES)}, got {basis!r}")
        purposes[name] = Purpose(name=name, basis=basis, policy=str(spec.get("policy", "")))
    if not purposes:
        raise ConfigError("purposes: at least one purpose with its legal basis is required")
    simple = {
        "tcf": TcfSettings, "ingestion": IngestionSettings, "profiles": ProfileSettings,
        "segments": SegmentSettings, "geo": GeoSettings, "adsdata": AdsDataSettings,
        "refinement": RefinementSettings, "retention": RetentionSettings, "tracking": TrackingSettings,
    }
    known_top = set(simple) | {"spark", "purposes", "timezone", "minimum_age"}
    unknown = sorted(set(data) - known_top)
    if unknown:
        raise ConfigError(f"unknown configuration section(s): {', '.join(unknown)}")
    spark_raw = dict(data.get("spark") or {})
    spark_raw["conf"] = {str(k): str(v) for k, v in (spark_raw.get("conf") or {}).items()}
    return Settings(
        spark=_section(SparkSettings, spark_raw, "spark"),
        purposes=purposes,
        timezone=str(data.get("timezone", "Europe/Brussels")),
        minimum_age=int(data.get("minimum_age", 18)),
        conf_dir=conf_dir,
        raw=dict(data),
        **{key: _section(cls, data.get(key), key) for key, cls in simple.items()},
    )


def load_settings(conf_file: Path | None = None, conf_dir: Path = CONF_DIR, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Load ``conf_dir/base/pipeline.yml``, then ``conf_dir/local/pipeline.yml`` if present, then ``conf_file``."""
    merged = _read_yaml(conf_dir / "base" / "pipeline.yml")
    local = conf_dir / "local" / "pipeline.yml"
    if local.is_file():
        merged = _deep_merge(merged, _read_yaml(local))
    if conf_file is not None:
        merged = _deep_merge(merged, _read_yaml(Path(conf_file)))
    if overrides:
        merged = _deep_merge(merged, overrides)
    return settings_from_dict(merged, conf_dir)
