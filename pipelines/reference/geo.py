"""Belgian geography: postal code -> locality, province, region, language area, coordinates (no Spark).

Read from ``conf/reference/geo/`` (bpost postal code list via github.com/jief/zipcode-belgium):

* ``zipcodes_num_fr.csv``: code, locality, sub-municipality flag (``Oui``/``Non``), province (French);
* ``zipcode-belgium.csv``: code, locality, longitude, latitude.

Both have no header and several rows per postal code (one per locality). Codes without a province
(parliaments, broadcasters, sorting centres, Santa's ``0612``...) are not places where anybody lives:
they are kept apart in :attr:`Geography.non_geographic`.

The areas feed the k-anonymous roll-up of G1 (postal code -> province -> region). Provinces use
ISO 3166-2:BE codes; the Brussels-Capital Region has no province, so it is its own "province" BE-BRU.

Example::

    >>> from pipelines.config import CONF_DIR
    >>> geo = load_geography(CONF_DIR)
    >>> area = geo.areas["9000"]
    >>> area.locality, area.province_code, area.region_code, area.language_area
    ('Gent', 'BE-VOV', 'BE-VLG', 'nl')
"""
from __future__ import annotations

import csv
import unicodedata
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pipelines.reference.taxonomy import ReferenceDataError

POSTAL_CODES_FILE = Path("reference/geo/zipcodes_num_fr.csv")
COORDINATES_FILE = Path("reference/geo/zipcode-belgium.csv")

# French province names used by the bpost list -> ISO 3166-2:BE.
PROVINCE_BY_FRENCH_NAME: Mapping[str, str] = {
    "Anvers": "BE-VAN",
    "Brabant Flamand": "BE-VBR",
    "Limbourg": "BE-VLI",
    "Flandre-Orientale": "BE-VOV",
    "Flandre-Occidentale": "BE-VWV",
    "Brabant Wallon": "BE-WBR",
    "Hainaut": "BE-WHT",
    "Liège": "BE-WLG",
    "Luxembourg": "BE-WLX",
    "Namur": "BE-WNA",
    "Bruxelles (19 communes)": "BE-BRU",
}

PROVINCE_NAMES: Mapping[str, str] = {
    "BE-VAN": "Antwerpen", "BE-VBR": "Vlaams-Brabant", "BE-VLI": "Limburg", "BE-VOV": "Oost-Vlaanderen",
    "BE-VWV": "West-Vlaanderen", "BE-WBR": "Brabant wallon", "BE-WHT": "Hainaut", "BE-WLG": "Liège",
    "BE-WLX": "Luxembourg", "BE-WNA": "Namur", "BE-BRU": "Brussels-Capital",
}

REGION_NAMES: Mapping[str, str] = {
    "BE-VLG": "Vlaams Gewest", "BE-WAL": "Région wallonne", "BE-BRU": "Brussels-Capital Region",
}


def region_of_province(province_code: str) -> str:
    """ISO region of an ISO province code: ``BE-V..`` Flanders, ``BE-W..`` Wallonia, ``BE-BRU`` Brussels.

    >>> region_of_province("BE-VOV"), region_of_province("BE-WLG"), region_of_province("BE-BRU")
    ('BE-VLG', 'BE-WAL', 'BE-BRU')
    """
    if province_code == "BE-BRU":
        return "BE-BRU"
    if province_code in PROVINCE_NAMES:
        return "BE-VLG" if province_code.startswith("BE-V") else "BE-WAL"
    raise ValueError(f"unknown province code {province_code!r}")


def _code_number(postal_code: str | int) -> int:
    text = str(postal_code).strip()
    if not (len(text) == 4 and text.isdigit()) or int(text) < 1000:
        raise ValueError(f"not a Belgian postal code: {postal_code!r}")
    return int(text)


# The German-speaking Community: Eupen (4700-4701), Lontzen (4710-4711), Kelmis/La Calamine
# (4720-4728), Raeren (4730-4731), Bütgenbach (4750), Büllingen (4760-4761), Amel (4770-4771),
# Sankt Vith (4780-4784), Burg-Reuland (4790-4791). They are exactly the codes 47xx; the
# neighbouring Malmedy, Waimes, Welkenraedt, Plombières, Baelen are French-speaking (48xx-49xx).
_GERMAN_RANGE = range(4700, 4800)


def language_area(postal_code: str | int) -> str:
    """Official language area of a postal code: ``"nl"``, ``"fr"``, ``"de"`` or ``"bilingual"`` (Brussels).

    Language areas follow the regions, except the German-speaking municipalities of the province of
    Liège. Municipalities "with facilities" (Voeren, the Brussels periphery, Comines-Warneton, Mouscron,
    Malmedy...) belong to one language area like any other.

    >>> [language_area(c) for c in ("1000", "1300", "2000", "4000", "4700", "4791", "4800", "3790", "7700")]
    ['bilingual', 'fr', 'nl', 'fr', 'de', 'de', 'fr', 'nl', 'fr']
    """
    code = _code_number(postal_code)
    if code < 1300:
        return "bilingual"
    if code in _GERMAN_RANGE:
        return "de"
    if code < 1500 or 4000 <= code < 8000:
        return "fr"
    return "nl"


# Larger cities weigh more when spreading synthetic customers or ranking areas. Codes are those of
# the municipality itself (the postal code list, not a numeric range: 2070 Zwijndrecht or 8020
# Oostkamp are not Antwerp or Bruges).
BIG_CITIES: Mapping[str, tuple[int, tuple[str, ...]]] = {
    "Brussels": (8, ("1000", "1020", "1030", "1040", "1050", "1060", "1070", "1080", "1081", "1082", "1083",
                     "1090", "1120", "1130", "1140", "1150", "1160", "1170", "1180", "1190", "1200", "1210")),
    "Antwerpen": (8, ("2000", "2018", "2020", "2030", "2040", "2050", "2060", "2100", "2140", "2170", "2180",
                      "2600", "2610", "2660")),
    "Gent": (4, ("9000", "9030", "9031", "9032", "9040", "9041", "9042", "9050", "9051", "9052")),
    "Charleroi": (4, ("6000", "6001", "6010", "6020", "6030", "6031", "6032", "6040", "6041", "6042", "6043",
                      "6044", "6060", "6061")),
    "Liège": (4, ("4000", "4020", "4030", "4031", "4032")),
    "Brugge": (2, ("8000", "8200", "8310", "8380")),
    "Namur": (2, ("5000", "5001", "5002", "5003", "5004", "5020", "5021", "5022", "5024", "5100", "5101")),
    "Leuven": (2, ("3000", "3001", "3010", "3012", "3018")),
    "Mons": (2, ("7000", "7011", "7012", "7020", "7021", "7022", "7024", "7030", "7031", "7032", "7033", "7034")),
    "Aalst": (2, ("9300", "9308", "9310", "9320")),
    "Mechelen": (2, ("2800", "2801", "2811", "2812")),
    "Kortrijk": (2, ("8500", "8501", "8510", "8511")),
    "Hasselt": (2, ("3500", "3501", "3510", "3511", "3512")),
    "Oostende": (2, ("8400",)),
    "Sint-Niklaas": (2, ("9100", "9111", "9112")),
    "Genk": (2, ("3600",)),
    "La Louvière": (2, ("7100", "7110")),
}
_WEIGHT_BY_CODE: Mapping[str, int] = {code: weight for weight, codes in BIG_CITIES.values() for code in codes}


def big_city_weight(postal_code: str | int) -> int:
    """8 for Brussels and Antwerp, 4 for Ghent, Charleroi and Liège, 2 for other large cities, else 1.

    >>> big_city_weight("1000"), big_city_weight("9000"), big_city_weight("3000"), big_city_weight("8020")
    (8, 4, 2, 1)
    """
    return _WEIGHT_BY_CODE.get(f"{_code_number(postal_code):04d}", 1)


@dataclass(frozen=True)
class Locality:
    """One row of the postal code list: a locality (municipality or sub-municipality) and its code."""

    postal_code: str
    name: str
    is_main: bool  # a municipality, not a sub-municipality ("deelgemeente")
    province_code: str
    region_code: str


@dataclass(frozen=True)
class PostalArea:
    """One geographic postal code, named after its main locality."""

    postal_code: str
    locality: str
    province_code: str
    region_code: str
    lon: float | None
    lat: float | None
    is_main: bool  # the code serves a municipality's main locality
    language_area: str
    big_city_weight: int


@dataclass(frozen=True)
class Geography:
    """Belgian postal geography: ``areas`` by postal code, all ``localities``, and ``non_geographic`` codes."""

    areas: Mapping[str, PostalArea]
    localities: tuple[Locality, ...]
    non_geographic: Mapping[str, str]  # code -> name of the institution / service

    ROW_FIELDS: ClassVar[tuple[str, ...]] = (
        "postal_code", "locality", "province_code", "region_code", "language_area", "big_city_weight",
        "lon", "lat", "is_main",
    )

    @property
    def provinces(self) -> frozenset[str]:
        return frozenset(a.province_code for a in self.areas.values())

    @property
    def regions(self) -> frozenset[str]:
        return frozenset(a.region_code for a in self.areas.values())

    def area(self, postal_code: str) -> PostalArea | None:
        """The area of a postal code, or None for unknown and non-geographic codes."""
        return self.areas.get(postal_code)

    def to_rows(self) -> list[tuple]:
        """One plain tuple per geographic postal code, fields in :attr:`ROW_FIELDS` order, sorted by code.

        Small enough (about 1,150 rows) for a broadcast DataFrame:
        ``spark.createDataFrame(geo.to_rows(), GEO_SCHEMA)``.
        """
        return [
            (a.postal_code, a.locality, a.province_code, a.region_code, a.language_area, a.big_city_weight,
             a.lon, a.lat, a.is_main)
            for a in sorted(self.areas.values(), key=lambda a: a.postal_code)
        ]


def _fold(name: str) -> str:
    """Case- and accent-insensitive key: "LIÈGE" and "Liège" match, so do "Kessel Lo" and "Kessel-Lo"."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return "".join(c for c in decomposed if c.isalnum())


def _display_name(name: str) -> str:
    # Main localities are upper-case in the bpost list; "SINT-NIKLAAS" -> "Sint-Niklaas".
    return "-".join(part.title() for part in name.split("-")) if name.isupper() else name


def _read_rows(path: Path, width: int) -> list[list[str]]:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = [[cell.strip() for cell in row] for row in csv.reader(handle) if any(c.strip() for c in row)]
    except FileNotFoundError:
        raise ReferenceDataError(f"reference file not found: {path}") from None
    bad = [i + 1 for i, row in enumerate(rows) if len(row) != width]
    if bad:
        raise ReferenceDataError(f"{path}: expected {width} columns, line(s) {bad[:5]}")
    return rows


def load_geography(conf_dir: Path) -> Geography:
    """Read both postal code files under ``conf_dir/reference/geo/`` into a :class:`Geography`.

    The area of a code takes the name of its main locality (flag ``Non``) when it has one, else of
    its first locality; its coordinates are those of the same locality in the geocoded list, else of
    the code's first geocoded locality, else None.
    """
    postal_rows = _read_rows(conf_dir / POSTAL_CODES_FILE, 4)
    coordinate_rows = _read_rows(conf_dir / COORDINATES_FILE, 4)

    coordinates: dict[str, list[tuple[str, float, float]]] = defaultdict(list)
    for code, name, lon, lat in coordinate_rows:
        try:
            coordinates[code].append((name, float(lon), float(lat)))
        except ValueError:
            raise ReferenceDataError(f"{COORDINATES_FILE}: bad coordinates for {code} {name}: {lon}, {lat}") from None

    localities: list[Locality] = []
    non_geographic: dict[str, str] = {}
    problems: list[str] = []
    for code, name, flag, province in postal_rows:
        if not province:
            non_geographic.setdefault(code, name)
            continue
        if province not in PROVINCE_BY_FRENCH_NAME:
            problems.append(f"{code} {name}: unknown province {province!r}")
            continue
        if flag not in ("Oui", "Non"):
            problems.append(f"{code} {name}: sub-municipality flag must be Oui or Non, got {flag!r}")
            continue
        province_code = PROVINCE_BY_FRENCH_NAME[province]
        localities.append(Locality(code, name, flag == "Non", province_code, region_of_province(province_code)))
    if problems:
        raise ReferenceDataError(f"{conf_dir / POSTAL_CODES_FILE}:\n  - " + "\n  - ".join(problems))

    by_code: dict[str, list[Locality]] = defaultdict(list)
    for locality in localities:
        by_code[locality.postal_code].append(locality)

    areas: dict[str, PostalArea] = {}
    for code, entries in by_code.items():
        provinces = {e.province_code for e in entries}
        if len(provinces) != 1:
            raise ReferenceDataError(f"postal code {code} lies in several provinces: {sorted(provinces)}")
        main = next((e for e in entries if e.is_main), entries[0])
        geocoded = coordinates.get(code, [])
        match = next((c for c in geocoded if _fold(c[0]) == _fold(main.name)), geocoded[0] if geocoded else None)
        areas[code] = PostalArea(
            postal_code=code,
            locality=match[0] if match and _fold(match[0]) == _fold(main.name) else _display_name(main.name),
            province_code=main.province_code,
            region_code=main.region_code,
            lon=match[1] if match else None,
            lat=match[2] if match else None,
            is_main=any(e.is_main for e in entries),
            language_area=language_area(code),
            big_city_weight=big_city_weight(code),
        )
    non_geographic = {code: name for code, name in non_geographic.items() if code not in areas}
    return Geography(areas=areas, localities=tuple(localities), non_geographic=non_geographic)
