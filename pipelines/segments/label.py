"""Transparency label of a segment, in the spirit of the IAB Tech Lab Data Transparency Standard (S3).

One label per segment: who provides it, what it is (name, IAB Audience Taxonomy ids, description),
how it is built (criteria in plain language, data sources, audience criteria type, precision level,
no modelled expansion), how fresh it is (refresh cadence, look-back windows), on what legal basis,
and how many people it reaches (the thresholded size only, per channel). Pure functions: the caller
writes the JSON and HTML this module renders.

Example::

    >>> from datetime import date
    >>> from pipelines.config import load_settings
    >>> from pipelines.segments.catalogue import load_catalogue
    >>> from pipelines.segments.model import parse_file
    >>> settings = load_settings()
    >>> defn = parse_file(settings.conf_dir.parent / "segments" / "football_fans.yaml").definition
    >>> label = build_label(defn, load_catalogue(settings.conf_dir), settings, {"tv": 120, "web": None},
    ...                     date(2026, 11, 25), "run-1")
    >>> label["audience"]["size"]["tv"], label["audience"]["size"]["web"]
    (120, 'fewer than 100 (not published)')
"""
from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from pipelines.config import Settings
from pipelines.segments.catalogue import INTEREST_SOURCES, Catalogue, describe_rule
from pipelines.segments.lint import CHANNEL_PURPOSES
from pipelines.segments.model import SegmentDefinition, conditions

LABEL_VERSION = "1.0"
STANDARD = "In the spirit of the IAB Tech Lab Data Transparency Standard 1.1"

#: IAB DTS "audience precision level" per channel: a TV profile is a subscription (a decoder is shared).
PRECISION: Mapping[str, str] = {
    "tv": "Household (Pickx TV subscription; a decoder is shared by the household)",
    "web": "Individual (authenticated customer; their browsers and mobile devices)",
}
CHANNEL_NAMES: Mapping[str, str] = {"tv": "Pickx TV (adapted commercials)", "web": "Web and mobile apps"}


def published_floor(defn: SegmentDefinition, settings: Settings) -> int:
    """The smallest size published for ``defn``: the global threshold or its own ``min_audience``."""
    return max(settings.segments.audience_threshold, defn.min_audience, 1)


def _size_text(size: int | None, floor: int) -> int | str:
    return size if size is not None else f"fewer than {floor} (not published)"


def build_label(defn: SegmentDefinition, catalogue: Catalogue, settings: Settings,
                sizes: Mapping[str, int | None], as_of: date, run_id: str) -> dict[str, Any]:
    """The label of one segment as a JSON-ready dict; ``sizes`` are the *published* sizes per channel."""
    attrs = [catalogue.attribute(c.attribute) for c in conditions(defn.rule)]
    attrs = [a for a in dict.fromkeys(attrs) if a is not None and not a.special_category]
    sources: list[str] = []
    for a in attrs:
        if a.source == "interests":
            sources += [f"{INTEREST_SOURCES[ch]} ({ch})" for ch in defn.channels]
        else:
            sources.append(a.source)
    lookback: dict[str, str] = {}
    for a in attrs:
        if a.lookback == "interests":
            lookback["interests"] = (f"{max(settings.profiles.lookback_days)} days, recency-weighted "
                                     f"(half-life {settings.profiles.half_life_days:g} days)")
        elif a.lookback == "purchases":
            lookback["purchases"] = f"{settings.profiles.purchase_lookback_days} days"
        else:
            lookback.setdefault("profile attributes", "current value at the as-of date")
    floor = published_floor(defn, settings)
    taxonomy = [{"id": i, "name": catalogue.audience[i].condensed_name}
                for i in defn.iab_audience_ids if i in catalogue.audience]
    return {
        "label_version": LABEL_VERSION,
        "standard": STANDARD,
        "provider": {"name": defn.provider, "segment_owner": defn.owner},
        "segment": {
            "id": defn.name,
            "name": defn.display_name,
            "description": defn.description,
            "taxonomy": {"name": "IAB Tech Lab Audience Taxonomy 1.1", "ids": taxonomy},
            "channels": [{"id": ch, "name": CHANNEL_NAMES[ch]} for ch in defn.channels],
            "geography": "Belgium",
        },
        "audience": {
            "criteria": describe_rule(defn.rule, catalogue),
            "adults_only": f"members are at least {settings.minimum_age} years old",
            "criteria_types": sorted({a.criteria for a in attrs}),
            "attributes": [a.name for a in attrs],
            "precision": {ch: PRECISION[ch] for ch in defn.channels},
            "expansion": "none: no lookalike modelling or cross-device expansion",
            "size": {ch: _size_text(sizes.get(ch), floor) for ch in defn.channels},
            "size_method": (f"number of people with a profile, rounded down to a multiple of "
                            f"{max(settings.segments.audience_rounding, 1)}; not published below {floor}"),
        },
        "data": {
            "sources": list(dict.fromkeys(sources)),
            "refresh_cadence": defn.refresh,
            "membership_update": "recomputed at every daily run; a consent withdrawal applies at the next run",
            "lookback": lookback,
            "as_of": as_of.isoformat(),
            "run_id": run_id,
            "definition_hash": defn.definition_hash,
        },
        "privacy": {
            "legal_basis": [
                {"purpose": p, "basis": settings.purposes[p].basis, "policy": settings.purposes[p].policy}
                for p in defn.purposes if p in settings.purposes
            ],
            "consent_framework": "IAB TCF v2 (web events)" if "web" in defn.channels else None,
            "special_categories": "never used (GDPR art. 9)",
            "channel_purposes": {ch: CHANNEL_PURPOSES[ch] for ch in defn.channels},
        },
    }


def label_json(label: Mapping[str, Any]) -> str:
    """The machine-readable label."""
    return json.dumps(label, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def _rows(items: Sequence[tuple[str, Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, Mapping):
            return "<br>".join(f"{html.escape(str(k))}: {html.escape(str(v))}" for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return "<br>".join(cell(v) for v in value)
        return html.escape(str(value))

    return "\n".join(f"<tr><th>{html.escape(k)}</th><td>{cell(v)}</td></tr>" for k, v in items)


def label_section(label: Mapping[str, Any]) -> str:
    """One label as an HTML section (a table read top to bottom like a nutrition label)."""
    seg, aud, data, priv = label["segment"], label["audience"], label["data"], label["privacy"]
    items = [
        ("Provider", label["provider"]["name"]),
        ("Segment owner", label["provider"]["segment_owner"]),
        ("Segment", f"{seg['name']} ({seg['id']})"),
        ("Description", seg["description"]),
        ("IAB Audience Taxonomy 1.1", [f"{t['id']}: {t['name']}" for t in seg["taxonomy"]["ids"]] or "-"),
        ("Channels", [c["name"] for c in seg["channels"]]),
        ("Geography", seg["geography"]),
        ("Criteria", aud["criteria"]),
        ("Age", aud["adults_only"]),
        ("Criteria type", ", ".join(aud["criteria_types"])),
        ("Precision", aud["precision"]),
        ("Expansion", aud["expansion"]),
        ("Audience size", aud["size"]),
        ("Size method", aud["size_method"]),
        ("Data sources", data["sources"]),
        ("Refresh cadence", data["refresh_cadence"]),
        ("Membership update", data["membership_update"]),
        ("Look-back", data["lookback"]),
        ("Legal basis", [f"{b['purpose']}: {b['basis']}" for b in priv["legal_basis"]]),
        ("Special categories", priv["special_categories"]),
        ("As of", f"{data['as_of']} (run {data['run_id']})"),
    ]
    return (f'<section id="{html.escape(seg["id"])}"><h2>{html.escape(seg["name"])}</h2>\n'
            f"<table>\n{_rows(items)}\n</table></section>")


_STYLE = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}"
          "table{border-collapse:collapse;width:100%;margin-bottom:2em}"
          "th,td{border-top:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}"
          "th{width:14em;background:#f4f4f4}h2{border-bottom:3px solid #222}")


def labels_html(labels: Sequence[Mapping[str, Any]], title: str = "Segment transparency labels") -> str:
    """A readable page holding the given labels, with a table of contents."""
    toc = "".join(f'<li><a href="#{html.escape(lb["segment"]["id"])}">{html.escape(lb["segment"]["name"])}</a></li>'
                  for lb in labels)
    body = "\n".join(label_section(lb) for lb in labels)
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head>\n<body><h1>{html.escape(title)}</h1><p>{html.escape(STANDARD)}.</p>"
            f"<ul>{toc}</ul>\n{body}\n</body></html>\n")
