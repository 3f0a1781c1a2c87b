"""Hand-written profile rows shared by the segment tests (columns of gold/tv_profiles and gold/web_profiles)."""
from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

AS_OF = date(2026, 11, 25)

PROFILE_DDL = (
    "customer_id string, age int, age_band string, age_band_id int, gender string, language string, "
    "postal_code string, province string, region string, customer_type string, services array<string>, "
    "family_typology string, household_size int, income_band string, sociodemo_level string, urbanisation string, "
    "dwelling_type string, has_garden boolean, products_owned array<string>, last_purchase_days int, "
    "interests array<struct<interest:string,iab_audience_id:int,score:double>>, as_of date"
)

FIELDS = [f.split()[0] for f in PROFILE_DDL.split(", ")]


def interest(label: str, audience_id: int, score: float) -> tuple[str, int, float]:
    return (label, audience_id, score)


# customer -> attributes (everything else null). a5 is a minor and a7 has no known age: never members.
CUSTOMERS: dict[str, dict[str, Any]] = {
    "a1": dict(age=30, age_band="30-34", gender="F", language="fr", postal_code="1000", province="BE-BRU",
               region="BE-BRU", services=["tv", "internet"], family_typology="family_young_children",
               household_size=4, income_band="high", urbanisation="urban", dwelling_type="house", has_garden=True,
               products_owned=["smartphone:premium"], last_purchase_days=20,
               interests=[interest("Football fan", 663, 1.6), interest("Action & adventure fan", 468, 2.0)]),
    "a2": dict(age=27, age_band="25-29", gender="M", language="fr", postal_code="1050", province="BE-BRU",
               region="BE-BRU", services=["tv"], family_typology="single", household_size=1, income_band="middle",
               urbanisation="urban", dwelling_type="apartment", has_garden=False,
               interests=[interest("Cooking enthusiast", 371, 1.3)]),
    "a3": dict(age=45, age_band="45-49", gender=None, language="nl", postal_code="9000", province="BE-VOV",
               region="BE-VLG", services=["tv", "mobile"], family_typology="family_older_children", household_size=4,
               income_band="low", urbanisation="suburban", dwelling_type="house", has_garden=True,
               products_owned=["laptop:entry"], last_purchase_days=400,
               interests=[interest("Football fan", 663, 1.2), interest("Cycling fan", 625, 2.5)]),
    "a4": dict(age=70, age_band="70-74", gender="F", language="nl", postal_code="2000", province="BE-VAN",
               region="BE-VLG", services=["tv"], family_typology="senior_household", household_size=2,
               urbanisation="rural", products_owned=[], interests=[interest("Quiz & game show fan", 445, 1.9)]),
    "a5": dict(age=16, gender="M", language="fr", postal_code="4000", province="BE-WLG", region="BE-WAL",
               services=["tv"], has_garden=True, interests=[interest("Football fan", 663, 3.0)]),
    "a6": dict(age=35, age_band="35-39", gender="X", language="de", postal_code="4700", province="BE-WLG",
               region="BE-WAL", services=["tv", "internet", "mobile"], family_typology="couple_no_children",
               household_size=2, income_band="high", urbanisation="rural", dwelling_type="house", has_garden=True,
               products_owned=["smartphone:mid", "tablet:premium"], last_purchase_days=100, interests=None),
    "a7": dict(age=None, gender="F", language="fr", postal_code="1000", province="BE-BRU", region="BE-BRU",
               has_garden=True, interests=[interest("Football fan", 663, 4.0)]),
    "w8": dict(age=40, age_band="40-44", gender="M", language="nl", postal_code="3000", province="BE-VBR",
               region="BE-VLG", services=["internet"], dwelling_type="house", has_garden=True,
               interests=[interest("Football fan", 663, 1.7)]),
}


def profile_rows(ids: list[str], as_of: date = AS_OF) -> list[tuple]:
    rows = []
    for cid in ids:
        values = {"customer_id": cid, "customer_type": "residential", "as_of": as_of, **CUSTOMERS[cid]}
        rows.append(tuple(values.get(name) for name in FIELDS))
    return rows


def profiles(spark, ids: list[str], as_of: date = AS_OF):
    """A profile DataFrame holding the given customers."""
    return spark.createDataFrame(profile_rows(ids, as_of), PROFILE_DDL)


def write_definition(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(f"name: {name}\ndescription: A segment written for a test.\nowner: test-team\n{body}",
                    encoding="utf-8")
    return path
