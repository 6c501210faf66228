"""Instrument definitions: the YAML schema as frozen dataclasses, and its checks.

The schema is documented in ``docs/instruments.md``. A definition is checked completely when it is
read, so that a typo in a YAML file (an item named in a scale but never declared, a declared range
that the items cannot produce, overlapping bands) is found when the package loads, not when a
participant's score comes out wrong.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any


class InstrumentDefinitionError(ValueError):
    """A YAML instrument definition does not follow the schema."""


RATERS = ("participant", "clinician", "facilitator")
METHODS = ("sum", "mean", "max_of_groups", "highest_endorsed")
GROUP_REQUIRES = ("all", "any")


@dataclass(frozen=True)
class Item:
    """One questionnaire item.

    ``step`` is 1 for whole-number answers and ``None`` for visual-analogue items that take any
    value in ``[min, max]``.
    """

    id: str
    min: float
    max: float
    step: float | None = 1
    reverse: bool = False
    text: str | None = None
    anchors: dict[float, str] = field(default_factory=dict)
    # The symptom or topic the item rates ("Depressed mood"): a heading, not the item's wording,
    # so instruments whose wording is licensed can still show it.
    name: str | None = None

    @property
    def number(self) -> int:
        """The item's position in the published order (1-based)."""
        return int(self.id.rsplit("_", 1)[1])

    def allowed(self) -> str:
        """Describe the allowed answers, for error messages and forms."""
        low, high = _fmt(self.min), _fmt(self.max)
        if self.step is None:
            return f"any number from {low} to {high}"
        if self.step == 1:
            return f"whole numbers {low}–{high}"
        return f"{low}–{high} in steps of {_fmt(self.step)}"


@dataclass(frozen=True)
class Group:
    """A domain of a ``max_of_groups`` scale: it scores as the highest of its items."""

    id: str
    items: tuple[str, ...]


@dataclass(frozen=True)
class MissingRule:
    """How many items (or groups) of a scale may be missing before the score is missing."""

    max_missing: int = 0
    prorate: bool = False
    group_requires: str = "all"
    source: str = ""


@dataclass(frozen=True)
class Band:
    """A severity label for scores at or above ``min`` (and below the next band's ``min``)."""

    min: float
    label: str


@dataclass(frozen=True)
class Scale:
    """A score computed from items.

    ``method`` is ``sum``, ``mean``, ``max_of_groups`` (each group scores as its highest item, the
    scale as the sum of groups) or ``highest_endorsed``: the position k (1-based, in ``items``
    order) of the last item answered yes (its maximum), 0 when none is, e.g. the C-SSRS ideation
    severity (Posner et al. 2011), whose items 1-5 are ideation types of increasing severity.
    """

    id: str
    label: str
    method: str
    items: tuple[str, ...]
    range: tuple[float, float]
    missing: MissingRule
    source: str
    groups: tuple[Group, ...] = ()
    percent_of_max: bool = False
    bands: tuple[Band, ...] = ()
    bands_source: str = ""

    @property
    def all_items(self) -> tuple[str, ...]:
        """The items the scale reads: ``items``, or for ``max_of_groups`` those of its groups."""
        return tuple(self.items) or tuple(i for group in self.groups for i in group.items)


@dataclass(frozen=True)
class Condition:
    """One condition of a criterion: a scale at or above a percent of its maximum, or a raw score."""

    scale: str
    percent_at_least: float | None = None
    at_least: float | None = None


@dataclass(frozen=True)
class Criterion:
    """A true/false result that holds when every condition holds."""

    id: str
    label: str
    all_of: tuple[Condition, ...]
    source: str


@dataclass(frozen=True)
class Flag:
    """An answer or a score at or above ``at_least`` that needs clinical attention (e.g. suicidality).

    Exactly one of ``item`` (an item answer) and ``scale`` (a scale score, e.g. a 0/1 scale that
    combines several items, as the C-SSRS ``urgent_risk``) is set.
    """

    id: str
    label: str
    item: str | None
    at_least: float
    source: str
    scale: str | None = None


@dataclass(frozen=True)
class OutcomeRule:
    """Response (percent reduction from baseline) or remission (score at most a value)."""

    scale: str
    source: str
    reduction_from_baseline_percent: float | None = None
    at_most: float | None = None


@dataclass(frozen=True)
class Licence:
    """The terms under which the item wording may be shared."""

    wording: str
    wording_included: bool
    source: str = ""


@dataclass(frozen=True)
class Instrument:
    """A questionnaire or rating scale, declared in ``instruments/<id>.yaml``."""

    id: str
    name: str
    short_name: str
    version: str
    construct: str
    rater: str
    citation: str
    doi: str
    licence: Licence
    items: tuple[Item, ...]
    scales: tuple[Scale, ...]
    criteria: tuple[Criterion, ...] = ()
    flags: tuple[Flag, ...] = ()
    outcomes: dict[str, OutcomeRule] = field(default_factory=dict)
    timeframe: str | None = None
    instructions: str | None = None

    @property
    def item_ids(self) -> tuple[str, ...]:
        return tuple(item.id for item in self.items)

    def item(self, item_id: str) -> Item:
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(f"{self.id} has no item {item_id!r}; items are {self.items[0].id}…{self.items[-1].id}")

    def scale(self, scale_id: str) -> Scale:
        for scale in self.scales:
            if scale.id == scale_id:
                return scale
        raise KeyError(f"{self.id} has no scale {scale_id!r}; scales are {', '.join(s.id for s in self.scales)}")

    @property
    def output_columns(self) -> tuple[str, ...]:
        """The columns :func:`alliance.instruments.score` returns, in order."""
        columns: list[str] = []
        for scale in self.scales:
            columns.append(scale.id)
            if scale.percent_of_max:
                columns.append(f"{scale.id}_pct")
            if scale.bands:
                columns.append(f"{scale.id}_band")
        columns += [c.id for c in self.criteria]
        columns += [f.id for f in self.flags]
        return tuple(columns)

    def with_wording(self, wording: dict[str, str]) -> Instrument:
        """Return a copy with item wording from a site's licensed wording.

        Parameters
        ----------
        wording : dict
            Item id → item text, for some or all items.

        Returns
        -------
        Instrument
            The same definition with ``text`` filled in for the given items.
        """
        unknown = sorted(set(wording) - set(self.item_ids))
        if unknown:
            raise InstrumentDefinitionError(
                f"wording for {self.id} names unknown items {unknown}; items are {', '.join(self.item_ids)}"
            )
        items = tuple(replace(item, text=wording.get(item.id, item.text)) for item in self.items)
        return replace(self, items=items)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# Reading a definition from its parsed YAML mapping
# --------------------------------------------------------------------------------------------

_TOP_KEYS = {
    "id", "name", "short_name", "version", "construct", "rater", "timeframe", "citation", "doi",
    "licence", "instructions", "item_defaults", "items", "scales", "criteria", "flags", "outcomes",
}
_ITEM_KEYS = {"id", "text", "name", "reverse", "min", "max", "step", "anchors"}
_SCALE_KEYS = {"id", "label", "method", "items", "groups", "range", "percent_of_max", "missing", "bands", "source"}


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


class _Reader:
    """Reads one definition, raising errors that name the file and the key path."""

    def __init__(self, origin: str):
        self.origin = origin

    def fail(self, where: str, message: str) -> None:
        raise InstrumentDefinitionError(f"{self.origin}: {where}: {message}")

    def keys(self, mapping: Any, allowed: set[str], where: str, required: tuple[str, ...] = ()) -> dict:
        if not isinstance(mapping, dict):
            self.fail(where, f"expected a mapping, found {type(mapping).__name__}")
        unknown = sorted(set(mapping) - allowed)
        if unknown:
            self.fail(where, f"unknown keys {unknown}; allowed keys are {sorted(allowed)}")
        for key in required:
            if mapping.get(key) in (None, ""):
                self.fail(where, f"'{key}' is required")
        return mapping

    def number(self, value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(where, f"expected a number, found {value!r}")
        return float(value)


def parse_instrument(raw: dict, origin: str = "<definition>") -> Instrument:
    """Build and check an :class:`Instrument` from a parsed YAML mapping.

    Parameters
    ----------
    raw : dict
        The mapping read from the YAML file.
    origin : str
        The file name, used in error messages.

    Returns
    -------
    Instrument
        The checked definition.

    Raises
    ------
    InstrumentDefinitionError
        When the mapping does not follow the schema in ``docs/instruments.md``.
    """
    r = _Reader(origin)
    r.keys(raw, _TOP_KEYS, "top level",
           ("id", "name", "version", "rater", "citation", "doi", "licence", "items", "scales"))
    instrument_id = str(raw["id"])
    if not re.fullmatch(r"[a-z][a-z0-9_]*", instrument_id):
        r.fail("id", f"{instrument_id!r} must be lower-case letters, digits and underscores")
    if raw["rater"] not in RATERS:
        r.fail("rater", f"{raw['rater']!r} is not one of {', '.join(RATERS)}")

    lic = r.keys(raw["licence"], {"wording", "wording_included", "source"}, "licence", ("wording",))
    if not isinstance(lic.get("wording_included"), bool):
        r.fail("licence.wording_included", "must be true or false")
    licence = Licence(str(lic["wording"]).strip(), lic["wording_included"], str(lic.get("source") or ""))

    defaults = r.keys(raw.get("item_defaults") or {}, _ITEM_KEYS - {"id", "text", "name"}, "item_defaults")
    items = _parse_items(r, instrument_id, raw["items"], defaults, licence)
    if raw.get("instructions") and not licence.wording_included:
        r.fail("instructions", "instruction text is given but licence.wording_included is false")
    item_by_id = {item.id: item for item in items}

    scales = tuple(_parse_scale(r, s, i, item_by_id) for i, s in enumerate(_list(r, raw["scales"], "scales")))
    _unique(r, [s.id for s in scales], "scales")
    scale_by_id = {s.id: s for s in scales}

    criteria = []
    for i, c in enumerate(_optional_list(r, raw.get("criteria"), "criteria")):
        where = f"criteria[{i}]"
        r.keys(c, {"id", "label", "all_of", "source"}, where, ("id", "all_of", "source"))
        conditions = []
        for j, cond in enumerate(_list(r, c["all_of"], f"{where}.all_of")):
            cw = f"{where}.all_of[{j}]"
            r.keys(cond, {"scale", "percent_at_least", "at_least"}, cw, ("scale",))
            if cond["scale"] not in scale_by_id:
                r.fail(cw, f"unknown scale {cond['scale']!r}")
            if ("percent_at_least" in cond) == ("at_least" in cond):
                r.fail(cw, "give exactly one of 'percent_at_least' and 'at_least'")
            if "percent_at_least" in cond and not scale_by_id[cond["scale"]].percent_of_max:
                r.fail(cw, f"scale {cond['scale']!r} has no percent_of_max")
            conditions.append(Condition(
                cond["scale"],
                r.number(cond["percent_at_least"], cw) if "percent_at_least" in cond else None,
                r.number(cond["at_least"], cw) if "at_least" in cond else None,
            ))
        criteria.append(Criterion(str(c["id"]), str(c.get("label") or c["id"]), tuple(conditions), str(c["source"])))

    flags = []
    for i, f in enumerate(_optional_list(r, raw.get("flags"), "flags")):
        where = f"flags[{i}]"
        r.keys(f, {"id", "label", "item", "scale", "at_least", "source"}, where, ("id", "at_least", "source"))
        if ("item" in f) == ("scale" in f):
            r.fail(where, "give exactly one of 'item' (an answer) and 'scale' (a score)")
        if "item" in f and f["item"] not in item_by_id:
            r.fail(where, f"unknown item {f['item']!r}")
        if "scale" in f and f["scale"] not in scale_by_id:
            r.fail(where, f"unknown scale {f['scale']!r}; scales are {', '.join(scale_by_id)}")
        flags.append(Flag(str(f["id"]), str(f.get("label") or f["id"]), f.get("item"),
                          r.number(f["at_least"], where), str(f["source"]), scale=f.get("scale")))

    outcomes = {}
    for name, rule in (raw.get("outcomes") or {}).items():
        where = f"outcomes.{name}"
        r.keys(rule, {"scale", "reduction_from_baseline_percent", "at_most", "source"}, where, ("scale", "source"))
        if rule["scale"] not in scale_by_id:
            r.fail(where, f"unknown scale {rule['scale']!r}")
        if ("reduction_from_baseline_percent" in rule) == ("at_most" in rule):
            r.fail(where, "give exactly one of 'reduction_from_baseline_percent' and 'at_most'")
        outcomes[name] = OutcomeRule(
            rule["scale"], str(rule["source"]),
            rule.get("reduction_from_baseline_percent"), rule.get("at_most"),
        )

    outputs = [s.id for s in scales] + [c.id for c in criteria] + [f.id for f in flags]
    _unique(r, outputs, "scale, criterion and flag ids")
    return Instrument(
        id=instrument_id,
        name=str(raw["name"]),
        short_name=str(raw.get("short_name") or raw["name"]),
        version=str(raw["version"]),
        construct=str(raw.get("construct") or ""),
        rater=raw["rater"],
        citation=" ".join(str(raw["citation"]).split()),
        doi=str(raw["doi"]),
        licence=licence,
        items=items,
        scales=scales,
        criteria=tuple(criteria),
        flags=tuple(flags),
        outcomes=outcomes,
        timeframe=raw.get("timeframe"),
        instructions=raw.get("instructions"),
    )


def _list(r: _Reader, value: Any, where: str) -> list:
    if not isinstance(value, list) or not value:
        r.fail(where, "expected a non-empty list")
    return value


def _optional_list(r: _Reader, value: Any, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        r.fail(where, "expected a list")
    return value


def _unique(r: _Reader, ids: list[str], where: str) -> None:
    seen = set()
    for i in ids:
        if i in seen:
            r.fail(where, f"id {i!r} appears twice")
        seen.add(i)


def _parse_items(r: _Reader, instrument_id: str, raw_items: Any, defaults: dict, licence: Licence) -> tuple[Item, ...]:
    items = []
    for n, raw in enumerate(_list(r, raw_items, "items"), start=1):
        where = f"items[{n - 1}]"
        r.keys(raw, _ITEM_KEYS, where, ("id",))
        expected = f"{instrument_id}_{n}"
        if raw["id"] != expected:
            r.fail(where, f"item id {raw['id']!r} should be {expected!r} (items are numbered from 1 in order)")
        merged = {**defaults, **raw}
        for key in ("min", "max"):
            if key not in merged:
                r.fail(where, f"'{key}' is missing (give it on the item or in item_defaults)")
        low, high = r.number(merged["min"], where), r.number(merged["max"], where)
        if not low < high:
            r.fail(where, f"min {low:g} must be below max {high:g}")
        step = merged.get("step", 1)
        if step is not None:
            step = r.number(step, where)
            if step <= 0 or not float((high - low) / step).is_integer():
                r.fail(where, f"step {step:g} must be positive and divide the range {low:g}–{high:g}")
        text = raw.get("text")
        if text and not licence.wording_included:
            r.fail(where, "item text is given but licence.wording_included is false")
        anchors_raw = merged.get("anchors") or {}
        if not isinstance(anchors_raw, dict):
            r.fail(where, "anchors must map answer values to labels")
        anchors = {}
        for value, label in anchors_raw.items():
            v = r.number(value, f"{where}.anchors")
            if not low <= v <= high:
                r.fail(f"{where}.anchors", f"anchor value {v:g} is outside {low:g}–{high:g}")
            anchors[v] = str(label)
        reverse = merged.get("reverse", False)
        if not isinstance(reverse, bool):
            r.fail(where, "reverse must be true or false")
        name = raw.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > 80 or "\n" in name):
            r.fail(where, f"name {name!r} must be a short heading: one line, 1–80 characters")
        items.append(Item(raw["id"], low, high, step, reverse, text, dict(sorted(anchors.items())),
                          name=name.strip() if isinstance(name, str) else None))
    return tuple(items)


def _parse_scale(r: _Reader, raw: Any, index: int, item_by_id: dict[str, Item]) -> Scale:
    where = f"scales[{index}]"
    r.keys(raw, _SCALE_KEYS, where, ("id", "method", "range", "missing", "source"))
    where = f"scales[{index}] ({raw['id']})"
    method = raw["method"]
    if method not in METHODS:
        r.fail(where, f"method {method!r} is not one of {', '.join(METHODS)}")
    groups: tuple[Group, ...] = ()
    if method == "max_of_groups":
        if "items" in raw:
            r.fail(where, "a max_of_groups scale lists 'groups', not 'items'")
        parsed = []
        for j, g in enumerate(_list(r, raw.get("groups"), f"{where}.groups")):
            r.keys(g, {"id", "items"}, f"{where}.groups[{j}]", ("id", "items"))
            parsed.append(Group(str(g["id"]), tuple(_list(r, g["items"], f"{where}.groups[{j}].items"))))
        groups = tuple(parsed)
        _unique(r, [g.id for g in groups], f"{where}.groups")
        item_ids = tuple(i for g in groups for i in g.items)
    else:
        if "groups" in raw:
            r.fail(where, f"'groups' is only for max_of_groups scales, not {method}")
        item_ids = tuple(_list(r, raw.get("items"), f"{where}.items"))
    for item_id in item_ids:
        if item_id not in item_by_id:
            r.fail(where, f"unknown item {item_id!r}")
    _unique(r, list(item_ids), f"{where}.items")
    if method == "highest_endorsed":
        # "endorsed" is the item's top answer; on an item with answers between no and yes it would
        # be ambiguous (is 2 of 0-3 endorsed?), so such items are refused.
        for item_id in item_ids:
            item = item_by_id[item_id]
            if item.step is None or item.max - item.min != item.step:
                r.fail(where, f"highest_endorsed needs two-answer (no/yes) items; {item_id} allows {item.allowed()}")

    miss = r.keys(raw["missing"], {"max_missing", "prorate", "group_requires", "source"}, f"{where}.missing",
                  ("source",))
    units = len(groups) if groups else len(item_ids)
    max_missing = miss.get("max_missing", 0)
    if not isinstance(max_missing, int) or isinstance(max_missing, bool) or not 0 <= max_missing < units:
        r.fail(f"{where}.missing", f"max_missing must be a whole number from 0 to {units - 1}")
    prorate = miss.get("prorate", False)
    if prorate and method == "mean":
        r.fail(f"{where}.missing", "prorate applies to sums (a mean is already per answered item)")
    if prorate and method == "highest_endorsed":
        r.fail(f"{where}.missing", "prorate applies to sums, not to highest_endorsed (a position, not a sum)")
    if method not in ("mean", "highest_endorsed") and max_missing > 0 and not prorate:
        r.fail(f"{where}.missing", "a sum with missing items allowed must prorate, or its range would shift")
    group_requires = miss.get("group_requires", "all")
    if group_requires not in GROUP_REQUIRES:
        r.fail(f"{where}.missing", f"group_requires must be one of {', '.join(GROUP_REQUIRES)}")
    missing = MissingRule(max_missing, bool(prorate), group_requires, str(miss["source"]))

    implied = _implied_range(method, item_ids, groups, item_by_id)
    declared = raw["range"]
    if (not isinstance(declared, list) or len(declared) != 2
            or any(not math.isclose(r.number(d, f"{where}.range"), v) for d, v in zip(declared, implied, strict=True))):
        r.fail(f"{where}.range", f"declared {declared} but the items and method give [{_fmt(implied[0])}, {_fmt(implied[1])}]")

    bands: tuple[Band, ...] = ()
    bands_source = ""
    if raw.get("bands"):
        b = r.keys(raw["bands"], {"levels", "source"}, f"{where}.bands", ("levels", "source"))
        levels = []
        for j, level in enumerate(_list(r, b["levels"], f"{where}.bands.levels")):
            r.keys(level, {"min", "label"}, f"{where}.bands.levels[{j}]", ("label",))
            levels.append(Band(r.number(level.get("min"), f"{where}.bands.levels[{j}]"), str(level["label"])))
        if levels[0].min != implied[0]:
            r.fail(f"{where}.bands", f"the first band must start at the scale minimum {_fmt(implied[0])}")
        if any(b2.min <= b1.min for b1, b2 in zip(levels, levels[1:], strict=False)):
            r.fail(f"{where}.bands", "band minimums must increase")
        if levels[-1].min > implied[1]:
            r.fail(f"{where}.bands", f"band {levels[-1].label!r} starts above the scale maximum")
        bands, bands_source = tuple(levels), str(b["source"])

    return Scale(
        id=str(raw["id"]),
        label=str(raw.get("label") or raw["id"]),
        method=method,
        items=item_ids,
        range=implied,
        missing=missing,
        source=str(raw["source"]),
        groups=groups,
        percent_of_max=bool(raw.get("percent_of_max", False)),
        bands=bands,
        bands_source=bands_source,
    )


def _implied_range(method: str, item_ids: tuple[str, ...], groups: tuple[Group, ...],
                   item_by_id: dict[str, Item]) -> tuple[float, float]:
    if method == "highest_endorsed":
        # the position (1-based) of the last item answered at its maximum; 0 when none is
        return (0.0, float(len(item_ids)))
    if method == "mean":
        lows = {item_by_id[i].min for i in item_ids}
        highs = {item_by_id[i].max for i in item_ids}
        # A mean of items on different scales has no single meaning; keep to one response scale.
        if len(lows) > 1 or len(highs) > 1:
            raise InstrumentDefinitionError(f"a mean scale needs items on one response scale: {item_ids}")
        return (lows.pop(), highs.pop())
    if method == "sum":
        return (sum(item_by_id[i].min for i in item_ids), sum(item_by_id[i].max for i in item_ids))
    low = sum(max(item_by_id[i].min for i in g.items) for g in groups)
    high = sum(max(item_by_id[i].max for i in g.items) for g in groups)
    return (low, high)
