"""Reference data the generator draws from: postal areas, CTV genres, content categories, TC strings.

All of it is small (reference-sized, independent of the number of customers) and prepared in Python once;
the generated rows themselves are built in Spark.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from pipelines.consent.tcf import encode
from pipelines.reference.geo import BIG_CITIES, load_geography
from pipelines.reference.taxonomy import (
    CONTENT_TAXONOMY_FILE,
    CTV_GENRE_FILE,
    ReferenceDataError,
    load_content_taxonomy,
    load_ctv_genres,
)

#: Resolution of the weighted postal-code draw (every geographic code gets several slots).
POSTAL_SLOTS = 16384

# Kinds of TC string in the pool; the first passes the web-profile check, the others each fail one way.
TC_VALID = "valid"
TC_NO_PURPOSE_1 = "missing_purpose_1"
TC_NO_PURPOSE_3 = "missing_purpose_3"
TC_NO_PURPOSE_4 = "missing_purpose_4"
TC_NO_VENDOR = "missing_vendor"


@dataclass(frozen=True)
class PostalArea:
    postal_code: str
    locality: str
    province_code: str
    region_code: str
    language_area: str
    urbanisation: str
    weight: float  # relative number of residents, for drawing customers


@dataclass(frozen=True)
class TcEntry:
    tc_string: str
    kind: str
    vendor_encoding: str
    weight: float


# Web content categories (IAB Content Taxonomy 3.1 ids) by theme; every id is checked against the taxonomy.
CONTENT_THEMES: dict[str, tuple[str, ...]] = {
    "news": ("386", "380", "80", "381", "390", "8YPBBL", "388"),
    "tech": ("596", "599", "630", "635", "636", "632", "637", "277", "619", "602"),
    "travel": ("653", "659", "673", "675", "677", "655"),
    "auto": ("1", "30", "22", "23", "25", "37"),
    "home": ("274", "275", "280", "283", "278", "276"),
    "pets": ("422", "424", "425"),
    "fashion": ("552", "553", "577", "560", "579"),
    "finance": ("391", "392", "410", "398", "52"),
    "realestate": ("441", "451", "452"),
    "food": ("210", "216", "217", "214", "218"),
    "fitness": ("225", "226", "483"),
    "family": ("186", "192", "197", "198"),
    "music": ("338", "346", "363", "351"),
    "culture": ("324", "640", "432", "201", "209"),
    "shopping": ("473", "481", "474", "477"),
    "health": ("286", "223"),
}
HOBBY_THEMES = (("travel", 14), ("auto", 10), ("home", 12), ("pets", 8), ("fashion", 9), ("finance", 8),
                ("realestate", 6), ("food", 12), ("fitness", 8), ("family", 8), ("music", 8), ("culture", 10),
                ("shopping", 8), ("health", 3))
GENERAL_CONTENT = (("386", 10), ("380", 8), ("80", 5), ("390", 6), ("381", 3), ("533", 8), ("492", 4),
                   ("432", 6), ("640", 6), ("324", 6), ("338", 4), ("473", 6), ("481", 4), ("653", 5),
                   ("216", 4), ("441", 3), ("286", 3), ("453", 1), ("596", 4))
# Sports sub-genres -> content category (for web pages and competitions of sports fans).
SPORT_CONTENT = {
    "Football": "533", "Cycling": "492", "Cyclocross": "492", "Tennis": "539", "Formula 1": "518",
    "Basketball": "547", "Hockey": "509", "Athletics": "540", "Darts": "493", "Snooker": "532",
    "Volleyball": "541", "Golf": "512", "MotoGP": "518", "Equestrian": "496", "Swimming": "537",
    "Rugby": "527", "Boxing": "485", "Skiing": "531",
}
# Genres whose published content id is not a Content Taxonomy 3.1 id (News: 1020) get these pages.
GENRE_CONTENT_FALLBACK = {"News": CONTENT_THEMES["news"]}
ENJOY_CONTENT = (("324", 25), ("338", 20), ("209", 10), ("533", 12), ("492", 5), ("151", 8), ("218", 10),
                 ("653", 6), ("162", 4))


@dataclass(frozen=True)
class Reference:
    """Everything the generator draws from, prepared once per run."""

    areas: tuple[PostalArea, ...]
    slot_area: tuple[int, ...]  # POSTAL_SLOTS entries: index into ``areas``
    genres: tuple[str, ...]  # CTV genres, as published
    genre_content: dict[str, tuple[str, ...]]  # genre -> web content categories
    content_ids: frozenset[str]
    tc_pool: tuple[TcEntry, ...]
    big_city_names: dict[str, tuple[str, ...]]  # language -> city names seen in geo-IP

    def check_content(self) -> None:
        ids = {i for theme in CONTENT_THEMES.values() for i in theme} | {i for i, _ in GENERAL_CONTENT}
        ids |= set(SPORT_CONTENT.values()) | {i for i, _ in ENJOY_CONTENT}
        ids |= {i for pool in self.genre_content.values() for i in pool}
        unknown = sorted(ids - self.content_ids)
        if unknown:
            raise ReferenceDataError(f"generator content ids not in Content Taxonomy 3.1: {unknown}")


def _distance_km(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))


def _areas(conf_dir: Path) -> tuple[PostalArea, ...]:
    """Geographic postal codes with an urbanisation class: city codes urban, within 15 km suburban."""
    geo = load_geography(conf_dir)
    centres = []
    for _, codes in BIG_CITIES.values():
        area = geo.areas.get(codes[0])
        if area is not None and area.lon is not None:
            centres.append((area.lon, area.lat))
    out = []
    for a in sorted(geo.areas.values(), key=lambda a: a.postal_code):
        if a.big_city_weight >= 2:
            urbanisation = "urban"
        elif a.lon is not None and min(_distance_km(a.lon, a.lat, lon, lat) for lon, lat in centres) < 15:
            urbanisation = "suburban"
        else:
            urbanisation = "rural"
        weight = a.big_city_weight * (1.0 if a.is_main else 0.6)
        out.append(PostalArea(a.postal_code, a.locality, a.province_code, a.region_code, a.language_area,
                              urbanisation, weight))
    return tuple(out)


def _slots(areas: tuple[PostalArea, ...]) -> tuple[int, ...]:
    total = sum(a.weight for a in areas)
    bounds, acc = [], 0.0
    for a in areas:
        acc += a.weight / total
        bounds.append(acc)
    out, j = [], 0
    for s in range(POSTAL_SLOTS):
        x = (s + 0.5) / POSTAL_SLOTS
        while j < len(bounds) - 1 and bounds[j] < x:
            j += 1
        out.append(j)
    return tuple(out)


def tc_pool(vendor_id: int, end: date, seed: int) -> tuple[TcEntry, ...]:
    """About twenty real TCF v2 core strings: mostly valid, some missing purpose 1, 3 or 4 or the vendor.

    Valid ones come in both vendor encodings (a bit field up to ``vendor_id`` is long: real strings are).
    """
    rng = random.Random(f"tcf/{seed}")
    base = datetime(end.year, end.month, end.day, 12, tzinfo=timezone.utc)
    full = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}

    def vendors(with_ours: bool) -> set[int]:
        chosen = set(rng.sample(range(1, 1100), rng.randint(12, 60))) | {755, 793}
        return chosen | {vendor_id} if with_ours else chosen - {vendor_id}

    def entry(kind: str, purposes: set[int], with_ours: bool, encoding: str, weight: float) -> TcEntry:
        created = base - timedelta(days=rng.randint(1, 330), seconds=rng.randint(0, 86399))
        text = encode(
            purposes_consent=purposes, vendor_consents=vendors(with_ours),
            vendor_encoding=encoding,  # type: ignore[arg-type]
            created=created, last_updated=created + timedelta(days=rng.randint(0, 20)),
            cmp_id=rng.choice((7, 10, 28, 300, 31)), cmp_version=rng.randint(1, 12),
            consent_language=rng.choice(("NL", "FR", "EN", "DE")), vendor_list_version=rng.randint(120, 200),
            tcf_policy_version=rng.choice((2, 4, 4, 4)), purposes_li_transparency={2, 7, 8, 9, 10},
        )
        return TcEntry(text, kind, encoding, weight)

    pool = [entry(TC_VALID, set(full), True, "range", 0.12) for _ in range(4)]
    pool += [entry(TC_VALID, set(rng.sample(sorted(full - {1, 3, 4}), 3)) | {1, 3, 4}, True, "bitfield", 0.05)
             for _ in range(2)]
    pool += [entry(TC_VALID, {1, 2, 3, 4, 7, 9, 10}, True, "auto", 0.07) for _ in range(2)]
    pool += [entry(TC_NO_PURPOSE_3, full - {3}, True, enc, 0.03) for enc in ("range", "bitfield", "auto")]
    pool += [entry(TC_NO_PURPOSE_4, full - {4}, True, enc, 0.03) for enc in ("range", "auto", "range")]
    pool += [entry(TC_NO_VENDOR, set(full), False, enc, 0.025) for enc in ("range", "bitfield", "auto")]
    pool += [entry(TC_NO_PURPOSE_1, full - {1}, True, "range", 0.015)]
    return tuple(pool)


def load_reference(conf_dir: Path, *, vendor_id: int, end: date, seed: int) -> Reference:
    """Read the geography and IAB files under ``conf_dir`` and build the TC string pool."""
    areas = _areas(conf_dir)
    genres = tuple(load_ctv_genres(conf_dir / CTV_GENRE_FILE))
    content = load_content_taxonomy(conf_dir / CONTENT_TAXONOMY_FILE)
    ctv = load_ctv_genres(conf_dir / CTV_GENRE_FILE)
    genre_content = {
        g: ((ctv[g],) if ctv.get(g) in content else GENRE_CONTENT_FALLBACK.get(g, CONTENT_THEMES["culture"]))
        for g in genres
    }
    ref = Reference(
        areas=areas,
        slot_area=_slots(areas),
        genres=genres,
        genre_content=genre_content,
        content_ids=frozenset(content),
        tc_pool=tc_pool(vendor_id, end, seed),
        big_city_names={
            "nl": ("Brussel", "Antwerpen", "Gent", "Leuven", "Mechelen"),
            "fr": ("Bruxelles", "Liège", "Charleroi", "Namur", "Mons"),
            "de": ("Eupen", "Aachen", "Liège", "Sankt Vith"),
            "en": ("Brussels", "Antwerp", "Ghent", "Luxembourg"),
        },
    )
    ref.check_content()
    return ref
