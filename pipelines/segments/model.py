"""Segment definitions: parse ``segments/*.yaml`` into frozen dataclasses, keeping line numbers.

A definition file holds one YAML mapping (format: ``segments/README.md``, JSON Schema:
``segments/schema.json``). Parsing never raises on bad input: it returns the problems it found as
:class:`Problem` values (``file:line: severity: message``), so ``audience segments validate`` can
report every problem of every file in one go. Line numbers come from the YAML composer's node marks.

Example::

    >>> text = '''
    ... name: football_fans
    ... description: Regular football viewers.
    ... owner: sports-sales
    ... channels: [tv]
    ... purpose: tv_personalised_ads
    ... min_audience: 100
    ... rule:
    ...   interest: {iab_audience_id: 663, min_score: 1.5}
    ... '''
    >>> parsed = parse_text(text, Path("football_fans.yaml"))
    >>> parsed.problems, parsed.definition.rule.attribute, parsed.definition.rule.line
    ([], 'interest', 9)
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Union

import yaml

from pipelines.config import PROJECT_ROOT

#: JSON Schema of a definition file (documentation for editors, and the first validation step).
SCHEMA_FILE = PROJECT_ROOT / "segments" / "schema.json"

CHANNELS = ("tv", "web")
REFRESH_CADENCES = ("daily", "weekly")
DEFAULT_PROVIDER = "Proximus"
COMBINATORS = ("all", "any", "not")

Path_ = tuple[Union[str, int], ...]


@dataclass(frozen=True, order=True)
class Problem:
    """One finding: an ``error`` fails validation, a ``warning`` does not."""

    path: str
    line: int
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.severity}: {self.message}"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


# --- rule tree ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """A leaf: one catalogue attribute and its specification as written (``{"min": 25, "max": 34}``...)."""

    attribute: str
    spec: Any
    line: int


@dataclass(frozen=True)
class AllOf:
    """Every child must hold."""

    children: tuple["Node", ...]
    line: int


@dataclass(frozen=True)
class AnyOf:
    """At least one child must hold."""

    children: tuple["Node", ...]
    line: int


@dataclass(frozen=True)
class Not:
    """The child must not hold (a person with an unknown value is *not* excluded: see README)."""

    child: "Node"
    line: int


Node = Union[Condition, AllOf, AnyOf, Not]


def conditions(node: Node) -> Iterable[Condition]:
    """Every leaf of a rule tree, depth first, in file order."""
    if isinstance(node, Condition):
        yield node
    elif isinstance(node, Not):
        yield from conditions(node.child)
    else:
        for child in node.children:
            yield from conditions(child)


# --- definition -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentDefinition:
    """One parsed segment file. ``lines`` maps a field name to the line it is written on."""

    path: str
    name: str
    description: str
    owner: str
    channels: tuple[str, ...]
    purposes: tuple[str, ...]
    rule: Node
    min_audience: int
    iab_audience_ids: tuple[int, ...] = ()
    refresh: str = "daily"
    title: str = ""
    provider: str = DEFAULT_PROVIDER
    definition_hash: str = ""
    lines: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)

    def line_of(self, field_name: str) -> int:
        """Line of a top-level field (line 1 when the field is absent)."""
        return self.lines.get(field_name, 1)

    @property
    def display_name(self) -> str:
        return self.title or self.name.replace("_", " ").capitalize()


@dataclass(frozen=True)
class ParseResult:
    """A file's definition (None when it could not be built) and the problems found while parsing."""

    path: str
    definition: SegmentDefinition | None
    problems: list[Problem]


@lru_cache(maxsize=4)
def load_schema(path: Path = SCHEMA_FILE) -> dict[str, Any]:
    """The JSON Schema of a definition file."""
    return json.loads(path.read_text(encoding="utf-8"))


def definition_hash(data: Mapping[str, Any]) -> str:
    """Stable hash of a definition's content (comments and key order do not count)."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --- YAML with line numbers -----------------------------------------------------------------------


class _Located:
    """Plain data built from a YAML node tree, with ``lines[path] = 1-based line`` of every value."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[Path_, int] = {}
        self.key_lines: dict[Path_, int] = {}
        self.problems: list[Problem] = []

    def plain(self, node: yaml.Node, loader: yaml.SafeLoader, path: Path_ = ()) -> Any:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            loader.flatten_mapping(node)  # YAML merge keys (<<)
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = loader.construct_object(key_node, deep=True)
                key_line = key_node.start_mark.line + 1
                if not isinstance(key, str):
                    # `no:` or `1:` are not names; YAML 1.1 turns them into booleans or numbers.
                    self.problems.append(Problem(self.file, key_line, f"key {key!r} must be a string (quote it)"))
                    key = str(key)
                if key in out:
                    self.problems.append(Problem(self.file, key_line, f"duplicate key {key!r}"))
                self.key_lines[path + (key,)] = key_line
                out[key] = self.plain(value_node, loader, path + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.plain(item, loader, path + (i,)) for i, item in enumerate(node.value)]
        return loader.construct_object(node, deep=True)

    def line(self, path: Path_) -> int:
        """Line of the value at ``path``, else of its nearest existing parent."""
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)


def _compose(text: str, file: str) -> tuple[Any, _Located]:
    located = _Located(file)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            located.problems.append(Problem(file, 1, "empty file: a segment definition is a YAML mapping"))
            return None, located
        return located.plain(node, loader), located
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        located.problems.append(Problem(file, line, f"not valid YAML: {exc.problem or exc.context}"))
        return None, located
    except yaml.YAMLError as exc:
        located.problems.append(Problem(file, 1, f"not valid YAML: {exc}"))
        return None, located
    finally:
        loader.dispose()


# --- schema ---------------------------------------------------------------------------------------


def _schema_problems(data: Any, located: _Located) -> list[Problem]:
    """JSON Schema errors outside ``rule`` (the rule parser below reports those more precisely)."""
    from jsonschema import Draft202012Validator

    problems = []
    validator = Draft202012Validator(load_schema())
    for err in validator.iter_errors(data):
        path = tuple(err.absolute_path)
        if path and path[0] == "rule":
            continue
        if err.validator == "required" or path == ("owner",):
            missing = "owner" if path == ("owner",) else err.message.split("'")[1]
            message = f"missing {missing}" + (": every segment needs an owning team or person" if missing == "owner" else "")
            problems.append(Problem(located.file, located.line(path), message))
        elif err.validator == "additionalProperties" and not path:
            problems.append(Problem(located.file, 1, f"unknown field: {err.message}"))
        else:
            where = ".".join(str(p) for p in path) or "document"
            problems.append(Problem(located.file, located.line(path), f"{where}: {err.message}"))
    return sorted(problems)


# --- rule -----------------------------------------------------------------------------------------


def _parse_rule(value: Any, path: Path_, located: _Located) -> Node | None:
    line = located.line(path)
    if not isinstance(value, dict) or len(value) != 1:
        located.problems.append(Problem(
            located.file, line,
            "a rule is a mapping with exactly one key: all, any, not or a catalogue attribute"))
        return None
    ((key, spec),) = value.items()
    if key in ("all", "any"):
        if not isinstance(spec, list) or not spec:
            located.problems.append(Problem(located.file, line, f"`{key}` takes a non-empty list of rules"))
            return None
        children = [_parse_rule(child, path + (key, i), located) for i, child in enumerate(spec)]
        if any(child is None for child in children):
            return None
        return (AllOf if key == "all" else AnyOf)(tuple(children), line)  # type: ignore[arg-type]
    if key == "not":
        child = _parse_rule(spec, path + ("not",), located)
        return None if child is None else Not(child, line)
    return Condition(key, spec, line)


def parse_rule_text(text: str, path: str = "<rule>") -> tuple[Node | None, list[Problem]]:
    """Parse a rule written on its own (``"all: [{gender: [F]}, {age: {min: 25}}]"``): tests, notebooks.

    >>> parse_rule_text("not: {gender: [F]}")
    (Not(child=Condition(attribute='gender', spec=['F'], line=1), line=1), [])
    """
    data, located = _compose(text, path)
    rule = _parse_rule(data, (), located) if data is not None else None
    return rule, located.problems


def _purposes(value: Any) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def parse_text(text: str, path: Path | str) -> ParseResult:
    """Parse one definition; the definition is None when the file has errors that prevent building it."""
    file = str(path)
    data, located = _compose(text, file)
    if data is None:
        return ParseResult(file, None, located.problems)
    if not isinstance(data, dict):
        located.problems.append(Problem(file, 1, "a segment definition is a YAML mapping of fields"))
        return ParseResult(file, None, located.problems)
    schema_problems = _schema_problems(data, located)
    rule = _parse_rule(data["rule"], ("rule",), located) if "rule" in data else None
    problems = located.problems + schema_problems
    if any(p.is_error for p in problems) or rule is None:
        return ParseResult(file, None, problems)
    lines = {key: located.key_lines.get((key,), located.line((key,))) for key in data}
    definition = SegmentDefinition(
        path=file,
        name=data["name"],
        description=data["description"].strip(),
        owner=data["owner"].strip(),
        channels=tuple(data["channels"]),
        purposes=_purposes(data["purpose"]),
        rule=rule,
        min_audience=int(data["min_audience"]),
        iab_audience_ids=tuple(data.get("iab_audience_ids", ())),
        refresh=data.get("refresh", "daily"),
        title=data.get("title", ""),
        provider=data.get("provider", DEFAULT_PROVIDER),
        definition_hash=definition_hash(data),
        lines=lines,
    )
    return ParseResult(file, definition, problems)


def parse_file(path: Path) -> ParseResult:
    """Parse one definition file (see :func:`parse_text`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return ParseResult(str(path), None, [Problem(str(path), 1, f"cannot read: {exc}")])
    return parse_text(text, path)


def discover(paths: Iterable[Path]) -> list[Path]:
    """Definition files: each file as given, and the ``*.yaml``/``*.yml`` files directly in each folder."""
    found: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            found += sorted(p for p in path.iterdir()
                            if p.suffix in (".yaml", ".yml") and p.is_file() and not p.name.startswith((".", "_")))
        else:
            found.append(path)
    return found
