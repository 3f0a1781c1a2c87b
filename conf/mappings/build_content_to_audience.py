"""Generate ``content_to_audience.csv``: IAB Content Taxonomy 3.1 category -> Audience Taxonomy 1.1 interest.

The mapping is reproducible: it is computed from the two shipped taxonomies, the deny-list and the
hand-written tables below, never edited by hand. Change a rule here, re-run, commit both files::

    .venv/bin/python conf/mappings/build_content_to_audience.py          # rewrite the CSV
    .venv/bin/python conf/mappings/build_content_to_audience.py --check  # exit 1 if the CSV is stale

Rules, for every content category under a root listed in ``ROOTS``:

1. ``OVERRIDES`` wins (an audience id, or ``None`` to exclude the category on purpose);
2. else the Interest node *inside the matching audience subtree* whose name equals the category's
   (case-insensitive, "&" read as "and"); the shallowest, then lowest id, if several;
3. else the mapping of the category's parent (recursively up to the root, which maps to the subtree root).

A category on the deny-list, or whose target is on it, is written with an empty ``audience_id``
(``match`` says why) so the file documents every decision. Labels already chosen by hand in the
genre, sub-genre and product tables are reused so an interest reads the same whatever its source;
other nodes get ``LABELS`` or else "Interested in <name>".
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

CONF_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(CONF_DIR.parent))  # run as a script from anywhere

from pipelines.reference.taxonomy import (  # noqa: E402
    AUDIENCE_TAXONOMY_FILE,
    CONTENT_TAXONOMY_FILE,
    MAPPING_FILES,
    MAPPINGS_DIR,
    AudienceNode,
    ContentNode,
    load_audience_taxonomy,
    load_content_taxonomy,
    load_deny_list,
    subtree,
)

MAPPING_VERSION = "1.0.0"
OUTPUT = MAPPINGS_DIR / MAPPING_FILES["content"]
COLUMNS = ("content_id", "content_name", "audience_id", "audience_name", "interest", "match", "mapping_version")

# Content root (or sub-root) -> Audience Interest subtree it corresponds to.
ROOTS: dict[str, int] = {
    "1": 243,      # Automotive
    "42": 258,     # Books and Literature
    "52": 268,     # Business and Finance
    "123": 338,    # Careers
    "132": 344,    # Education
    "186": 348,    # Family and Relationships
    "201": 359,    # Fine Art
    "210": 368,    # Food & Drink
    "223": 406,    # Healthy Living: the deny-list keeps only Fitness and Exercise
    "239": 422,    # Hobbies & Interests
    "274": 457,    # Home & Garden
    "324": 467,    # Entertainment > Movies
    "338": 481,    # Entertainment > Music -> Music and Audio
    "640": 706,    # Entertainment > Television
    "380": 523,    # Crime        -> News and Politics | Crime   (news only: Politics is denied)
    "381": 524,    # Disasters    -> News and Politics | Disasters
    "383": 526,    # Law          -> News and Politics | Law
    "389": 532,    # War and Conflicts -> under Politics: denied, documented as such
    "391": 534,    # Personal Finance
    "422": 541,    # Pets
    "432": 581,    # Pop Culture
    "441": 583,    # Real Estate
    "464": 207,    # Science -> Academic Interests
    "473": 606,    # Shopping
    "483": 607,    # Sports
    "552": 676,    # Style & Fashion
    "596": 687,    # Technology & Computing
    "653": 719,    # Travel
    "680": 733,    # Video Gaming
}

# Hand-made decisions where names differ, or where a category must not become an interest.
# (Genres: the same choices as ctv_genre_to_audience.csv, for pages classified by genre.)
OVERRIDES: dict[str, int | None] = {
    # Genres (SPSHQ5)
    "325": 468, "641": 707, "44": 260, "646": 709, "332": 711, "647": 710, "648": 711, "645": 474,
    "335": 475, "EZWB7V": 211, "649": 712, "336": 476, "650": 713, "156": 511, "331": 471, "651": 714,
    "326": 478, "652": 715, "642": 716, "643": 477, "370": 512, "371": 513, "376": 518, "KHPC5A": 471,
    "KHPC6A": 468, "51": 267, "700": 471, "VKIV56": 711,
    "TIFQA5": None,   # Lifestyle: too vague to be an interest
    "A0AH3G": None,   # Talk Show: too vague
    # Attractions and events with an obvious interest counterpart
    "179": 373, "155": 359, "177": 367, "159": 720, "151": 726, "153": 726, "160": 726, "178": 726,
    "154": 606, "162": 581, "185": 581, "180": 269,
    # Names that differ between the taxonomies
    "43": 259,        # Art and Photography -> Art and Photography Books
    "18": 244,        # Certified Pre-Owned Cars -> Auto Buying and Selling
    "465": 218,       # Biological Sciences -> Biology
    "467": 227,       # Environment -> Environmental Science and Sustainability
    "390": 533,       # Weather (under Science) -> News and Politics | Weather
    "464": 207,       # Science root -> Academic Interests
    "685": 733,       # Video Game Genres: genres without their own node read as plain "Gamer"
    # Excluded on purpose (not art. 9, but not something we target people on)
    "187": None,      # Bereavement: vulnerable life event
    "189": None,      # Divorce: vulnerable life event
    "394": None,      # Government Support and Welfare: financial vulnerability
    "480": None,      # Lotteries and Scratchcards: Belgian ban on gambling advertising (2023)
    "524": None,      # Poker and Professional Gambling: idem
    "ZJG29S": None,   # Casino and Gambling Video Games: idem
    "181": None,      # Casinos & Gambling: idem
    "MQ2XML": None,   # Adult Video Games: adult content
}

# Labels for nodes no hand-written table names and whose "Interested in <name>" reads badly.
LABELS: dict[int, str] = {
    207: "Science enthusiast",
    258: "Book lover",
    481: "Music lover",
}

# Extra roots covered only through OVERRIDES (their other children stay unmapped).
OVERRIDE_ONLY_ROOTS = ("SPSHQ5", "150", "8VZQHL")


def _norm(name: str) -> str:
    return " ".join(name.lower().replace("&", "and").split())


def _depth(audience: dict[int, AudienceNode], node_id: int) -> int:
    depth, parent = 0, audience[node_id].parent_id
    while parent is not None:
        depth, parent = depth + 1, audience[parent].parent_id
    return depth


def _hand_labels(conf_dir: Path) -> dict[int, str]:
    """Labels chosen by hand in the other mapping tables, by audience id."""
    labels: dict[int, str] = {}
    for name in ("ctv_genre", "subgenre", "product"):
        with (conf_dir / MAPPINGS_DIR / MAPPING_FILES[name]).open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                if row["audience_id"].strip() and row["interest"].strip():
                    labels.setdefault(int(row["audience_id"]), row["interest"].strip())
    return labels


def build_rows(conf_dir: Path = CONF_DIR) -> list[dict[str, str]]:
    """The rows of ``content_to_audience.csv``, in Content Taxonomy file order."""
    audience = load_audience_taxonomy(conf_dir / AUDIENCE_TAXONOMY_FILE)
    content: dict[str, ContentNode] = load_content_taxonomy(conf_dir / CONTENT_TAXONOMY_FILE)
    deny = load_deny_list(conf_dir, audience, content)
    labels = {**LABELS, **_hand_labels(conf_dir)}

    # content id -> the audience subtree root of the ROOTS entry it falls under
    scope: dict[str, int] = {}
    for root, audience_root in ROOTS.items():
        for content_id in subtree(content, root):
            scope.setdefault(content_id, audience_root)
    for root in OVERRIDE_ONLY_ROOTS:
        for content_id in subtree(content, root):
            if content_id in OVERRIDES:
                scope.setdefault(content_id, -1)

    def resolve(content_id: str) -> tuple[int | None, str]:
        if content_id in OVERRIDES:
            return OVERRIDES[content_id], "override"
        if content_id in ROOTS:
            same_name = _norm(audience[ROOTS[content_id]].name) == _norm(content[content_id].name)
            return ROOTS[content_id], "exact" if same_name else "root"
        audience_root = scope[content_id]
        candidates = [
            node_id for node_id in subtree(audience, audience_root)
            if _norm(audience[node_id].name) == _norm(content[content_id].name)
        ]
        if candidates:
            return min(candidates, key=lambda i: (_depth(audience, i), i)), "exact"
        parent = content[content_id].parent_id
        target, _ = resolve(parent) if parent is not None else (audience_root, "root")
        return target, "parent"

    rows: list[dict[str, str]] = []
    for content_id, node in content.items():  # file order: stable output
        if content_id not in scope:
            continue
        target, match = resolve(content_id)
        if deny.denies_content(content_id):
            target, match = None, "denied"
        elif target is not None and deny.denies_audience(target):
            target, match = None, "denied target"
        elif target is None:
            match = "excluded"
        rows.append({
            "content_id": content_id,
            "content_name": node.name,
            "audience_id": "" if target is None else str(target),
            "audience_name": "" if target is None else audience[target].condensed_name,
            "interest": "" if target is None else labels.get(target, f"Interested in {audience[target].name}"),
            "match": match,
            "mapping_version": MAPPING_VERSION,
        })
    return rows


def render(rows: list[dict[str, str]]) -> str:
    """The CSV text (LF line endings) of ``rows``."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed CSV differs from a rebuild")
    args = parser.parse_args(argv)
    text = render(build_rows(CONF_DIR))
    path = CONF_DIR / OUTPUT
    if args.check:
        current = path.read_text(encoding="utf-8") if path.is_file() else ""
        if current != text:
            print(f"{path} is stale: re-run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    path.write_text(text, encoding="utf-8")
    print(f"wrote {len(text.splitlines()) - 1} rows to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
