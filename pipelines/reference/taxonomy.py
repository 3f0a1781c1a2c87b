"""IAB taxonomies, the special-category deny-list and the interest mappings (no Spark).

Everything here is small, static reference data read from the project's ``conf/`` folder:

* ``conf/reference/iab/``: the IAB Tech Lab Audience Taxonomy 1.1, Content Taxonomy 3.1 and the
  CTV-genre mapping, as published (TSV, Windows line endings);
* ``conf/mappings/``: the project's own versioned tables that turn what a customer watched, read or
  bought into an Audience Taxonomy *Interest* id (P3), and the deny-list of special categories
  (GDPR art. 9) that no interest may ever point to (P4).

:func:`load_mappings` validates every mapping against both taxonomies and the deny-list and refuses
to load if anything is wrong, so a bad pull request on ``conf/mappings/`` stops the pipeline before a
single profile is computed.

Example::

    >>> from pipelines.config import CONF_DIR
    >>> audience = load_audience_taxonomy(CONF_DIR / AUDIENCE_TAXONOMY_FILE)
    >>> audience[663].name, audience[663].is_interest
    ('Soccer', True)
    >>> mappings = load_mappings(CONF_DIR)
    >>> mappings.interest_labels[663]
    'Football fan'
"""
from __future__ import annotations

import csv
import functools
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Protocol, TypeVar

# Layout of the conf/ folder (relative to it); callers pass the folder itself.
AUDIENCE_TAXONOMY_FILE = Path("reference/iab/audience-taxonomy-1.1.tsv")
CONTENT_TAXONOMY_FILE = Path("reference/iab/content-taxonomy-3.1.tsv")
CTV_GENRE_FILE = Path("reference/iab/ctv-genre-mapping.tsv")
MAPPINGS_DIR = Path("mappings")
DENY_LIST_FILE = MAPPINGS_DIR / "special_categories.csv"

# Mapping tables: name (also the key of ``Mappings.versions``) -> file under conf/mappings/.
MAPPING_FILES: Mapping[str, str] = {
    "ctv_genre": "ctv_genre_to_audience.csv",
    "subgenre": "subgenre_to_audience.csv",
    "content": "content_to_audience.csv",
    "product": "product_to_audience.csv",
}

# The purchases source's vocabulary (contract section 2).
PRODUCT_CATEGORIES = ("smartphone", "tablet", "laptop", "tv", "smart_home", "accessory", "subscription")
PRODUCT_TIERS = ("entry", "mid", "premium")

# Contract gender codes -> name of the Audience Taxonomy "Demographic | Gender" child node.
_GENDER_NODE_NAMES = {"F": "Female", "M": "Male", "X": "Other Gender", "unknown": "Unknown Gender"}


class ReferenceDataError(ValueError):
    """A reference file is missing, malformed or inconsistent with the taxonomies."""


class MappingError(ReferenceDataError):
    """``conf/mappings/`` holds at least one invalid row; the message lists every problem."""


# --------------------------------------------------------------------------------------------------
# Taxonomies
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AudienceNode:
    """One segment of the IAB Audience Taxonomy 1.1.

    ``tiers`` are the non-empty "Tier 1".."Tier 6" columns, e.g. ``("Interest", "Sports", "Soccer")``;
    ``name`` is the last element of the condensed name (the segment's own name).
    """

    id: int
    parent_id: int | None
    name: str
    condensed_name: str
    tiers: tuple[str, ...]
    extension_notes: str = ""

    @property
    def tier1(self) -> str:
        return self.tiers[0] if self.tiers else ""

    @property
    def is_interest(self) -> bool:
        """True for the "Interest" branch: the only branch an interest score may point to."""
        return self.tier1 == "Interest"

    @property
    def is_demographic(self) -> bool:
        return self.tier1 == "Demographic"

    @property
    def is_purchase_intent(self) -> bool:
        return self.tier1.rstrip("*").strip() == "Purchase Intent"


@dataclass(frozen=True)
class ContentNode:
    """One category of the IAB Content Taxonomy 3.1. Ids are strings: some are alphanumeric (``KHPC5A``)."""

    id: str
    parent_id: str | None
    name: str
    tiers: tuple[str, ...]
    extension: str = ""

    @property
    def tier1(self) -> str:
        return self.tiers[0] if self.tiers else ""


def _read_tsv(path: Path) -> list[list[str]]:
    """Rows of a tab-separated IAB file, cells stripped (the files have CRLF endings and padding)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return [[cell.strip() for cell in row] for row in csv.reader(handle, delimiter="\t")]
    except FileNotFoundError:
        raise ReferenceDataError(f"reference file not found: {path}") from None


def _header_index(rows: list[list[str]], path: Path) -> tuple[int, int]:
    """(row index, column index) of the "Unique ID" header cell; files differ in preamble and padding."""
    for row_no, row in enumerate(rows[:5]):
        if "Unique ID" in row:
            return row_no, row.index("Unique ID")
    raise ReferenceDataError(f"{path}: no 'Unique ID' header in the first rows")


def _check_parents(nodes: Mapping, path: Path) -> None:
    missing = sorted(str(n.id) for n in nodes.values() if n.parent_id is not None and n.parent_id not in nodes)
    if missing:
        raise ReferenceDataError(f"{path}: parent id not in the file for node(s) {', '.join(missing)}")


def load_audience_taxonomy(path: Path) -> dict[int, AudienceNode]:
    """Read the IAB Audience Taxonomy 1.1 TSV into ``{id: AudienceNode}``.

    Copes with the published file's quirks: a leading empty column, Windows line endings and
    trailing ``|`` in condensed names.

    >>> from pipelines.config import CONF_DIR
    >>> nodes = load_audience_taxonomy(CONF_DIR / AUDIENCE_TAXONOMY_FILE)
    >>> nodes[3].name, nodes[3].parent_id, nodes[3].tiers
    ('18-20', 2, ('Demographic', 'Age Range', '18-20'))
    """
    rows = _read_tsv(path)
    header_row, col = _header_index(rows, path)
    nodes: dict[int, AudienceNode] = {}
    for line_no, row in enumerate(rows[header_row + 1:], start=header_row + 2):
        cells = row[col:] + [""] * (10 - len(row[col:]))
        if not cells[0]:
            continue  # blank padding lines at the end of the file
        try:
            node_id = int(cells[0])
            parent_id = int(cells[1]) if cells[1] else None
        except ValueError:
            raise ReferenceDataError(f"{path}:{line_no}: non-numeric id {cells[0]!r}/{cells[1]!r}") from None
        if node_id in nodes:
            raise ReferenceDataError(f"{path}:{line_no}: duplicate id {node_id}")
        condensed = cells[2]
        parts = [part.strip() for part in condensed.split("|") if part.strip()]
        nodes[node_id] = AudienceNode(
            id=node_id,
            parent_id=parent_id,
            name=parts[-1] if parts else "",
            condensed_name=condensed.rstrip("| ").strip(),
            tiers=tuple(tier for tier in cells[3:9] if tier),
            extension_notes=cells[9],
        )
    _check_parents(nodes, path)
    return nodes


def load_content_taxonomy(path: Path) -> dict[str, ContentNode]:
    """Read the IAB Content Taxonomy 3.1 TSV (two header rows) into ``{id: ContentNode}``.

    >>> from pipelines.config import CONF_DIR
    >>> nodes = load_content_taxonomy(CONF_DIR / CONTENT_TAXONOMY_FILE)
    >>> nodes["533"].name, nodes["533"].parent_id
    ('Soccer', '483')
    """
    rows = _read_tsv(path)
    header_row, col = _header_index(rows, path)
    nodes: dict[str, ContentNode] = {}
    for line_no, row in enumerate(rows[header_row + 1:], start=header_row + 2):
        cells = row[col:] + [""] * (8 - len(row[col:]))
        if not cells[0]:
            continue
        if cells[0] in nodes:
            raise ReferenceDataError(f"{path}:{line_no}: duplicate id {cells[0]}")
        nodes[cells[0]] = ContentNode(
            id=cells[0],
            parent_id=cells[1] or None,
            name=cells[2],
            tiers=tuple(tier for tier in cells[3:7] if tier),
            extension=cells[7],
        )
    _check_parents(nodes, path)
    return nodes


def load_ctv_genres(path: Path) -> dict[str, str]:
    """The IAB CTV genre list as ``{genre: content id}`` (the id as published, even if dangling)."""
    rows = _read_tsv(path)
    if not rows or rows[0][:2] != ["CTV Genres", "Content 3.1 Unique ID"]:
        raise ReferenceDataError(f"{path}: unexpected header {rows[0] if rows else None}")
    return {row[0]: row[1] for row in rows[1:] if row and row[0]}


class _Node(Protocol):
    @property
    def id(self): ...  # noqa: E704

    @property
    def parent_id(self): ...  # noqa: E704


K = TypeVar("K", int, str)


def children_index(nodes: Mapping[K, _Node]) -> dict[K, list[K]]:
    """``{parent id: [child ids]}`` in file order."""
    children: dict[K, list[K]] = defaultdict(list)
    for node in nodes.values():
        if node.parent_id is not None:
            children[node.parent_id].append(node.id)
    return dict(children)


def subtree(nodes: Mapping[K, _Node], root: K) -> frozenset[K]:
    """``root`` and all its descendants.

    >>> from pipelines.config import CONF_DIR
    >>> nodes = load_audience_taxonomy(CONF_DIR / AUDIENCE_TAXONOMY_FILE)
    >>> sorted(subtree(nodes, 529))
    [529, 530, 531, 532]
    """
    children = children_index(nodes)
    seen: set[K] = set()
    stack = [root]
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(children.get(current, ()))
    return frozenset(seen)


def ancestors(nodes: Mapping[K, _Node], node_id: K) -> tuple[K, ...]:
    """Ids from ``node_id``'s parent up to its root."""
    chain: list[K] = []
    parent = nodes[node_id].parent_id
    while parent is not None and parent not in chain:
        chain.append(parent)
        parent = nodes[parent].parent_id
    return tuple(chain)


# --------------------------------------------------------------------------------------------------
# Demographic nodes read from the taxonomy (never typed by hand)
# --------------------------------------------------------------------------------------------------


class AgeBand(NamedTuple):
    """An IAB "Demographic | Age Range" node: ``max_age`` is ``None`` for the open band ("75+")."""

    min_age: int
    max_age: int | None
    label: str
    audience_id: int


_AGE_LABEL = re.compile(r"^(\d+)\s*(?:-\s*(\d+)|\+)$")


def _child_nodes_of(audience: Mapping[int, AudienceNode], tiers: tuple[str, ...]) -> list[AudienceNode]:
    parents = [n for n in audience.values() if n.tiers == tiers]
    if len(parents) != 1:
        raise ReferenceDataError(f"audience taxonomy: expected one {' | '.join(tiers)!r} node, found {len(parents)}")
    parent_id = parents[0].id
    return [n for n in audience.values() if n.parent_id == parent_id]


def iab_age_bands(audience: Mapping[int, AudienceNode]) -> tuple[AgeBand, ...]:
    """The IAB age bands, sorted by age, parsed from the "Demographic | Age Range" nodes.

    >>> from pipelines.config import CONF_DIR
    >>> bands = iab_age_bands(load_audience_taxonomy(CONF_DIR / AUDIENCE_TAXONOMY_FILE))
    >>> bands[0]
    AgeBand(min_age=18, max_age=20, label='18-20', audience_id=3)
    >>> bands[-1]
    AgeBand(min_age=75, max_age=None, label='75+', audience_id=15)
    """
    bands = []
    for node in _child_nodes_of(audience, ("Demographic", "Age Range")):
        match = _AGE_LABEL.match(node.name)
        if not match:
            raise ReferenceDataError(f"audience taxonomy: age range node {node.id} has unparseable name {node.name!r}")
        low, high = int(match.group(1)), match.group(2)
        bands.append(AgeBand(low, int(high) if high else None, node.name, node.id))
    bands.sort()
    for previous, current in zip(bands, bands[1:]):
        if previous.max_age is None or previous.max_age + 1 != current.min_age:
            raise ReferenceDataError(f"audience taxonomy: age bands {previous.label} and {current.label} do not meet")
    return tuple(bands)


def iab_gender_ids(audience: Mapping[int, AudienceNode]) -> dict[str, int]:
    """Contract gender code (``F``, ``M``, ``X``; ``unknown`` for empty) -> "Demographic | Gender" node id.

    >>> from pipelines.config import CONF_DIR
    >>> iab_gender_ids(load_audience_taxonomy(CONF_DIR / AUDIENCE_TAXONOMY_FILE))
    {'F': 49, 'M': 50, 'X': 51, 'unknown': 52}
    """
    by_name = {n.name: n.id for n in _child_nodes_of(audience, ("Demographic", "Gender"))}
    missing = [name for name in _GENDER_NODE_NAMES.values() if name not in by_name]
    if missing:
        raise ReferenceDataError(f"audience taxonomy: gender node(s) {', '.join(missing)} not found")
    return {code: by_name[name] for code, name in _GENDER_NODE_NAMES.items()}


@functools.cache
def _shipped_age_bands() -> tuple[AgeBand, ...]:
    from pipelines.config import CONF_DIR

    return iab_age_bands(load_audience_taxonomy(CONF_DIR / AUDIENCE_TAXONOMY_FILE))


def __getattr__(name: str):
    # IAB_AGE_BANDS (a list of AgeBand tuples) is read from the shipped taxonomy on first use, not at import.
    if name == "IAB_AGE_BANDS":
        return list(_shipped_age_bands())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------------------------------
# Deny-list of special categories (GDPR art. 9)
# --------------------------------------------------------------------------------------------------

DENY_SCOPES = ("subtree", "node")


@dataclass(frozen=True)
class DenyEntry:
    """One row of ``special_categories.csv``. ``scope`` is ``subtree`` (default) or ``node`` (this node only)."""

    taxonomy: str
    node_id: str
    name: str
    reason: str
    scope: str = "subtree"


@dataclass(frozen=True)
class DenyList:
    """Expanded deny-list: every audience / content id no interest may be derived from or point to."""

    audience_ids: frozenset[int]
    content_ids: frozenset[str]
    entries: tuple[DenyEntry, ...] = ()

    def denies_audience(self, audience_id: int | None) -> bool:
        return audience_id is not None and audience_id in self.audience_ids

    def denies_content(self, content_id: str | None) -> bool:
        return content_id is not None and content_id in self.content_ids


def load_deny_list(
    conf_dir: Path,
    audience: Mapping[int, AudienceNode] | None = None,
    content: Mapping[str, ContentNode] | None = None,
) -> DenyList:
    """Read ``conf_dir/mappings/special_categories.csv`` and expand each root to its whole subtree.

    Every row must name an existing node *by its exact taxonomy name*, so a typo or an id that moved
    in a new taxonomy release fails loudly instead of silently denying nothing.

    >>> from pipelines.config import CONF_DIR
    >>> deny = load_deny_list(CONF_DIR)
    >>> 530 in deny.audience_ids, "459" in deny.content_ids   # Elections, Christianity
    (True, True)
    """
    audience = audience if audience is not None else load_audience_taxonomy(conf_dir / AUDIENCE_TAXONOMY_FILE)
    content = content if content is not None else load_content_taxonomy(conf_dir / CONTENT_TAXONOMY_FILE)
    path = conf_dir / DENY_LIST_FILE
    rows = _read_csv(path, ("taxonomy", "node_id", "name", "reason"))
    problems: list[str] = []
    entries: list[DenyEntry] = []
    audience_ids: set[int] = set()
    content_ids: set[str] = set()
    for line_no, row in rows:
        entry = DenyEntry(row["taxonomy"], row["node_id"], row["name"], row["reason"], row.get("scope") or "subtree")
        where = f"{path.name}:{line_no}"
        if entry.scope not in DENY_SCOPES:
            problems.append(f"{where}: scope must be one of {DENY_SCOPES}, got {entry.scope!r}")
            continue
        if not entry.reason:
            problems.append(f"{where}: a reason is required")
        nodes: Mapping = audience if entry.taxonomy == "audience" else content if entry.taxonomy == "content" else {}
        if entry.taxonomy not in ("audience", "content"):
            problems.append(f"{where}: taxonomy must be 'audience' or 'content', got {entry.taxonomy!r}")
            continue
        key: int | str = entry.node_id
        if entry.taxonomy == "audience":
            try:
                key = int(entry.node_id)
            except ValueError:
                problems.append(f"{where}: audience node id must be an integer, got {entry.node_id!r}")
                continue
        node = nodes.get(key)
        if node is None:
            problems.append(f"{where}: {entry.taxonomy} node {entry.node_id} does not exist")
            continue
        if node.name != entry.name:
            problems.append(f"{where}: {entry.taxonomy} node {entry.node_id} is {node.name!r}, not {entry.name!r}")
            continue
        ids = subtree(nodes, key) if entry.scope == "subtree" else frozenset([key])
        (audience_ids if entry.taxonomy == "audience" else content_ids).update(ids)  # type: ignore[arg-type]
        entries.append(entry)
    if problems:
        raise ReferenceDataError(f"{len(problems)} problem(s) in {path}:\n  - " + "\n  - ".join(problems))
    return DenyList(frozenset(audience_ids), frozenset(content_ids), tuple(entries))


# --------------------------------------------------------------------------------------------------
# Interest mappings
# --------------------------------------------------------------------------------------------------


def subgenre_key(subgenre: str) -> str:
    """Normalised key of a free-text sub-genre: whitespace collapsed, trimmed, lower-cased.

    Spark equivalent: ``F.lower(F.trim(F.regexp_replace(col, r"\\s+", " ")))``.

    >>> subgenre_key("  Formula   1 ")
    'formula 1'
    """
    return " ".join(subgenre.split()).lower()


@dataclass(frozen=True)
class GenreMapping:
    """A CTV genre (``tv_viewing.genre``) -> Audience Interest node; ``audience_id`` None = ignored."""

    ctv_genre: str
    content_id: str | None
    audience_id: int | None
    interest: str
    mapping_version: str


@dataclass(frozen=True)
class SubgenreMapping:
    """A free-text TV sub-genre (``tv_viewing.subgenre``) -> Audience Interest node."""

    subgenre: str
    content_id: str | None
    audience_id: int | None
    interest: str
    mapping_version: str

    @property
    def key(self) -> str:
        return subgenre_key(self.subgenre)


@dataclass(frozen=True)
class ContentMapping:
    """A Content Taxonomy 3.1 category (web pages, loyalty events) -> Audience Interest node."""

    content_id: str
    audience_id: int | None
    interest: str
    match: str
    mapping_version: str


@dataclass(frozen=True)
class ProductMapping:
    """A purchase (category, tier) that justifies an interest ("premium smartphone: technology fan")."""

    product_category: str
    product_tier: str
    audience_id: int
    interest: str
    mapping_version: str




@dataclass(frozen=True)
class Mappings:
    """All interest mappings with the version of each table (``versions["ctv_genre"] == "1.0.0"``).

    The ``*_rows`` methods return plain tuples of the active rows (those with an audience id) so
    Spark code can build tiny broadcast DataFrames from them.
    """

    genres: tuple[GenreMapping, ...]
    subgenres: tuple[SubgenreMapping, ...]
    content: tuple[ContentMapping, ...]
    products: tuple[ProductMapping, ...]
    versions: dict[str, str] = field(default_factory=dict)

    def genre_rows(self) -> list[tuple[str, int, str]]:
        """``(ctv_genre, audience_id, interest)`` for every genre that yields an interest."""
        return [(m.ctv_genre, m.audience_id, m.interest) for m in self.genres if m.audience_id is not None]

    def subgenre_rows(self) -> list[tuple[str, int, str]]:
        """``(subgenre_key, audience_id, interest)``; join on the normalised key (see :func:`subgenre_key`)."""
        return [(m.key, m.audience_id, m.interest) for m in self.subgenres if m.audience_id is not None]

    def content_rows(self) -> list[tuple[str, int, str]]:
        """``(content_id, audience_id, interest)``."""
        return [(m.content_id, m.audience_id, m.interest) for m in self.content if m.audience_id is not None]

    def product_rows(self) -> list[tuple[str, str, int, str]]:
        """``(product_category, product_tier, audience_id, interest)``."""
        return [(m.product_category, m.product_tier, m.audience_id, m.interest) for m in self.products]

    @property
    def interest_labels(self) -> dict[int, str]:
        """``{audience_id: readable label}`` over all tables (validation guarantees one label per id)."""
        labels: dict[int, str] = {}
        for rows in (self.genres, self.subgenres, self.content, self.products):
            for m in rows:
                if m.audience_id is not None:
                    labels.setdefault(m.audience_id, m.interest)
        return labels


def _read_csv(path: Path, required: Iterable[str]) -> list[tuple[int, dict[str, str]]]:
    """``(line number, row)`` pairs of a headed CSV, values stripped; checks the required columns."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise ReferenceDataError(f"{path}: missing column(s) {', '.join(missing)}")
            return [
                (reader.line_num, {k: (v or "").strip() for k, v in row.items() if k is not None})
                for row in reader
                if any((v or "").strip() for v in row.values() if isinstance(v, str))
            ]
    except FileNotFoundError:
        raise ReferenceDataError(f"reference file not found: {path}") from None


def _optional_int(value: str, where: str) -> int | None:
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise MappingError(f"{where}: audience_id must be an integer, got {value!r}") from None


def _single_version(versions: set[str], path: Path) -> str:
    if len(versions) != 1 or not next(iter(versions)):
        raise MappingError(f"{path}: every row must carry the same non-empty mapping_version, found {sorted(versions)}")
    return next(iter(versions))


def read_mappings(conf_dir: Path) -> Mappings:
    """Parse the four mapping tables without checking them against the taxonomies (see :func:`load_mappings`)."""
    base = conf_dir / MAPPINGS_DIR
    versions: dict[str, str] = {}

    path = base / MAPPING_FILES["ctv_genre"]
    genres = tuple(
        GenreMapping(r["ctv_genre"], r["content_id"] or None,
                     _optional_int(r["audience_id"], f"{path.name}:{n}"), r["interest"], r["mapping_version"])
        for n, r in _read_csv(path, ("ctv_genre", "content_id", "audience_id", "interest", "mapping_version"))
    )
    versions["ctv_genre"] = _single_version({m.mapping_version for m in genres}, path)

    path = base / MAPPING_FILES["subgenre"]
    subgenres = tuple(
        SubgenreMapping(r["subgenre"], r["content_id"] or None,
                        _optional_int(r["audience_id"], f"{path.name}:{n}"), r["interest"], r["mapping_version"])
        for n, r in _read_csv(path, ("subgenre", "content_id", "audience_id", "interest", "mapping_version"))
    )
    versions["subgenre"] = _single_version({m.mapping_version for m in subgenres}, path)

    path = base / MAPPING_FILES["content"]
    content = tuple(
        ContentMapping(r["content_id"], _optional_int(r["audience_id"], f"{path.name}:{n}"), r["interest"],
                       r.get("match", ""), r["mapping_version"])
        for n, r in _read_csv(path, ("content_id", "audience_id", "interest", "mapping_version"))
    )
    versions["content"] = _single_version({m.mapping_version for m in content}, path)

    path = base / MAPPING_FILES["product"]
    products = []
    for n, r in _read_csv(path, ("product_category", "product_tier", "audience_id", "interest", "mapping_version")):
        audience_id = _optional_int(r["audience_id"], f"{path.name}:{n}")
        if audience_id is None:
            raise MappingError(f"{path.name}:{n}: list only purchases that justify an interest (audience_id is empty)")
        products.append(ProductMapping(r["product_category"], r["product_tier"], audience_id, r["interest"],
                                       r["mapping_version"]))
    versions["product"] = _single_version({m.mapping_version for m in products}, path)

    return Mappings(genres, subgenres, content, tuple(products), versions)


def _duplicates(keys: Iterable[object]) -> list[object]:
    seen: set[object] = set()
    dup: list[object] = []
    for key in keys:
        if key in seen and key not in dup:
            dup.append(key)
        seen.add(key)
    return dup


def validate_mappings(
    mappings: Mappings,
    audience: Mapping[int, AudienceNode],
    content: Mapping[str, ContentNode],
    deny: DenyList,
    ctv_genres: Iterable[str] | None = None,
) -> list[str]:
    """Every problem in ``mappings``, as readable messages (empty list = valid).

    Checks: unknown content / audience ids; targets that are not *Interest* nodes; targets or sources
    on the deny-list; duplicate keys; product vocabulary; missing labels; one label per audience id
    across all tables; one version per table; and, when ``ctv_genres`` is given, one row per genre.
    """
    problems: list[str] = []

    def check_target(table: str, key: str, audience_id: int | None, interest: str, content_id: str | None) -> None:
        where = f"{table} {key!r}"
        if content_id is not None and content_id not in content:
            problems.append(f"{where}: content id {content_id} is not in Content Taxonomy 3.1")
        if audience_id is None:
            return
        node = audience.get(audience_id)
        if node is None:
            problems.append(f"{where}: audience id {audience_id} is not in Audience Taxonomy 1.1")
            return
        if not node.is_interest:
            problems.append(f"{where}: audience id {audience_id} ({node.condensed_name}) is not an Interest node")
        if deny.denies_audience(audience_id):
            problems.append(f"{where}: audience id {audience_id} ({node.name}) is a special category (deny-list)")
        if deny.denies_content(content_id):
            problems.append(f"{where}: content id {content_id} is a special category and may not yield an interest")
        if not interest:
            problems.append(f"{where}: interest label is empty")

    for m in mappings.genres:
        check_target("ctv_genre", m.ctv_genre, m.audience_id, m.interest, m.content_id)
    for m in mappings.subgenres:
        check_target("subgenre", m.subgenre, m.audience_id, m.interest, m.content_id)
    for m in mappings.content:
        check_target("content", m.content_id, m.audience_id, m.interest, m.content_id)
    for m in mappings.products:
        key = f"{m.product_category}/{m.product_tier}"
        if m.product_category not in PRODUCT_CATEGORIES:
            problems.append(f"product {key!r}: unknown product_category "
                            f"(expected one of {', '.join(PRODUCT_CATEGORIES)})")
        if m.product_tier not in PRODUCT_TIERS:
            problems.append(f"product {key!r}: unknown product_tier (expected one of {', '.join(PRODUCT_TIERS)})")
        check_target("product", key, m.audience_id, m.interest, None)

    for table, keys in (
        ("ctv_genre", [m.ctv_genre for m in mappings.genres]),
        ("subgenre", [m.key for m in mappings.subgenres]),
        ("content", [m.content_id for m in mappings.content]),
        ("product", [f"{m.product_category}/{m.product_tier}" for m in mappings.products]),
    ):
        problems.extend(f"{table} {key!r}: duplicate key" for key in _duplicates(keys))

    if ctv_genres is not None:
        expected = set(ctv_genres)
        present = {m.ctv_genre for m in mappings.genres}
        problems.extend(f"ctv_genre {g!r}: genre of the IAB CTV list has no row" for g in sorted(expected - present))
        problems.extend(f"ctv_genre {g!r}: not a genre of the IAB CTV list" for g in sorted(present - expected))

    labels: dict[int, set[str]] = defaultdict(set)
    for table, rows in (("ctv_genre", mappings.genres), ("subgenre", mappings.subgenres),
                        ("content", mappings.content), ("product", mappings.products)):
        versions = {m.mapping_version for m in rows}
        if rows and versions != {mappings.versions.get(table)}:
            problems.append(f"{table}: rows carry version(s) {sorted(versions)}, table version is "
                            f"{mappings.versions.get(table)!r}")
        for m in rows:
            if m.audience_id is not None and m.interest:
                labels[m.audience_id].add(m.interest)
    for audience_id, names in sorted(labels.items()):
        if len(names) > 1:
            problems.append(f"audience id {audience_id}: one label per interest expected, found {sorted(names)}")
    return problems


def load_mappings(conf_dir: Path) -> Mappings:
    """Read and validate ``conf_dir/mappings/*.csv``; raise :class:`MappingError` listing every problem.

    >>> from pipelines.config import CONF_DIR
    >>> m = load_mappings(CONF_DIR)
    >>> sorted(m.versions)
    ['content', 'ctv_genre', 'product', 'subgenre']
    """
    audience = load_audience_taxonomy(conf_dir / AUDIENCE_TAXONOMY_FILE)
    content = load_content_taxonomy(conf_dir / CONTENT_TAXONOMY_FILE)
    deny = load_deny_list(conf_dir, audience, content)
    mappings = read_mappings(conf_dir)
    problems = validate_mappings(mappings, audience, content, deny, load_ctv_genres(conf_dir / CTV_GENRE_FILE))
    if problems:
        raise MappingError(f"{len(problems)} problem(s) in {conf_dir / MAPPINGS_DIR}:\n  - " + "\n  - ".join(problems))
    return mappings
