"""The headline numbers of an analysis or a power run, as small tables of APA-formatted text.

What ``alliance analyze``, ``alliance demo`` and ``alliance power`` print on the terminal; the
report (:mod:`.document`) has everything. Each function here is pure: it takes a result and returns
:class:`SummaryTable` values (a title, columns, rows of strings and a note) that know nothing of the
terminal; :mod:`.console` draws them with rich.

=========================  =================================================================
function                   rows
=========================  =================================================================
:func:`results_summary`    one table per section of :class:`alliance.analysis.Results` that has
                           a summary (:data:`SUMMARY_SECTIONS`), in the results' section order:
                           every paired alliance comparison, the correlations of the primary
                           alliance scale, every mediation model
:func:`power_summary`      the tests (T1, T2, …) with their simulated effects, and power by
                           n × attrition with the smallest n reaching the target power
:func:`frame_summary`      any DataFrame (e.g. scores), one row per row
=========================  =================================================================

Which correlations are headline numbers is read from the results, not from family names: the
plan's roles name the alliance instrument and its scales, the first scale being the primary
alliance measure (the WAI-SR total in the Levin 2024 plan); correlations of the other alliance
scales are the exploratory subscale families, counted in the table's note and left to the report.

Numbers follow :mod:`.apa` (no leading zero for r and p, ``< .001``, typographic minus, en dash
for a missing value). A test that was not computed keeps its row, with ``skipped: <reason>``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from alliance.protocol import Measure, MeasureNameError
from alliance.protocol.power import PowerTest

from . import apa
from .tables import ADJUSTED

__all__ = ["SUMMARY_SECTIONS", "Column", "SummaryTable", "frame_summary", "power_summary", "results_summary"]


@dataclass(frozen=True)
class Column:
    """A column of a summary table: its heading and whether it holds numbers (right-aligned)."""

    heading: str
    numeric: bool = False


@dataclass(frozen=True)
class SummaryTable:
    """A table of formatted text, ready to draw.

    Attributes
    ----------
    id : str
        What the table shows: a results section (``correlations``) or ``power_tests`` / ``power``.
    title : str
    columns : tuple of Column
    rows : tuple of tuple of str
        One string per column in every row.
    note : str
        Said under the table (what was left out of it, and where it is); empty when nothing is.
    strong : frozenset of (int, int)
        (row, column) of the cells to emphasise (a power that reaches the target).
    footer : int
        The last ``footer`` rows summarise the rows above them (drawn apart, e.g. in italics).
    """

    id: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""
    strong: frozenset[tuple[int, int]] = frozenset()
    footer: int = 0

    @property
    def headings(self) -> tuple[str, ...]:
        return tuple(column.heading for column in self.columns)


def _columns(text: Sequence[str], numeric: Sequence[str]) -> tuple[Column, ...]:
    return tuple(Column(heading, heading in numeric) for heading in text)


def _adjusted_heading(results) -> str:
    method = results.provenance.get("p_adjust", "holm")
    return f"p ({ADJUSTED.get(method, method)})"


def _skipped_row(entry: Mapping[str, Any], identity: Sequence[str], width: int) -> tuple[str, ...]:
    """An entry that was not computed: its identifying cells, its n, the reason, then blanks."""
    cells = (*identity, str(entry.get("n", "")), f"skipped: {entry['skipped']}")
    return cells + ("",) * (width - len(cells))


# -- one table per results section ------------------------------------------------------------------

def _confirmatory(entries) -> tuple[list, int]:
    """The confirmatory entries when the results carry roles (all entries otherwise), and how many were left out."""
    if not any("role" in e for e in entries):
        return list(entries), 0
    kept = [e for e in entries if e.get("role") == "confirmatory"]
    return kept, len(entries) - len(kept)


def _exploratory_note(count: int) -> str:
    return f"{count} exploratory test{'s' if count != 1 else ''} in the report." if count else ""


def _alliance_change(results, entries) -> SummaryTable:
    entries, exploratory = _confirmatory(entries)
    numeric = ("n", "mean diff", "t", "df", "p", _adjusted_heading(results), "dz")
    columns = _columns(("scale", "from \u2192 to", *numeric), numeric=numeric)
    rows = []
    for entry in entries:
        if "scale" not in entry:  # the whole analysis was skipped
            rows.append(_skipped_row(entry, (entry.get("analysis", ""), ""), len(columns)))
            continue
        identity = (entry["scale"], f"{entry['from']} \u2192 {entry['to']}")
        if "skipped" in entry:
            rows.append(_skipped_row(entry, identity, len(columns)))
            continue
        rows.append((*identity, str(entry["n"]), apa.number(entry["mean_diff"]), apa.number(entry["t"]),
                     apa.number(entry["df"], 0), apa.p_value(entry["p"]), apa.p_value(entry.get("p_adjusted")),
                     apa.number(entry["cohen_dz"])))
    title = "Alliance change (paired t-test; confirmatory)" if exploratory else "Alliance change (paired t-test)"
    return SummaryTable("alliance_change", title, columns, tuple(rows), _exploratory_note(exploratory))


def _secondary_alliance_scales(results) -> tuple[str | None, tuple[str, ...]]:
    """The alliance instrument of the plan's roles and its scales after the first (the primary one)."""
    alliance = results.provenance.get("plan", {}).get("roles", {}).get("alliance") or {}
    scales = tuple(alliance.get("scales") or ())
    return alliance.get("instrument"), scales[1:]


def _uses_scales(entry: Mapping[str, Any], instrument: str | None, scales: tuple[str, ...]) -> bool:
    for key in ("x", "y"):
        try:
            measure = Measure.parse(entry.get(key), timepoint="optional")
        except MeasureNameError:
            continue
        if measure.instrument == instrument and measure.scale in scales:
            return True
    return False


def _correlations(results, entries) -> SummaryTable:
    entries, exploratory = _confirmatory(entries)
    instrument, secondary = _secondary_alliance_scales(results)
    shown = [e for e in entries if not _uses_scales(e, instrument, secondary)]
    left_out = [e for e in entries if _uses_scales(e, instrument, secondary)]
    methods = ", ".join(dict.fromkeys(str(e["method"]).capitalize() for e in entries if "method" in e)) or "Pearson"
    method = results.provenance.get("p_adjust", "holm")
    title = f"Correlations ({methods}; {ADJUSTED.get(method, method)} within each family)"
    if exploratory:
        title = f"Confirmatory correlations ({methods}; {ADJUSTED.get(method, method)} within each family)"
    numeric = ("n", "r", "95% CI", "p", _adjusted_heading(results))
    columns = _columns(("x", "y", *numeric), numeric=numeric)
    rows = []
    for entry in shown:
        identity = (entry.get("x", entry.get("analysis", "")), entry.get("y", ""))
        if "skipped" in entry:
            rows.append(_skipped_row(entry, identity, len(columns)))
            continue
        rows.append((*identity, str(entry["n"]), apa.proportion(entry["r"]),
                     apa.ci(entry["ci_low"], entry["ci_high"], bounded=True), apa.p_value(entry["p"]),
                     apa.p_value(entry.get("p_adjusted"))))
    note = ""
    if left_out:
        families = ", ".join(dict.fromkeys(str(e.get("family") or e.get("analysis")) for e in left_out))
        count = f"{len(left_out)} correlation" + ("s" if len(left_out) != 1 else "")
        note = f"{count} of the other {instrument} scales ({', '.join(secondary)}; {families}) in the report."
    note = " ".join(part for part in (note, _exploratory_note(exploratory)) if part)
    return SummaryTable("correlations", title, columns, tuple(rows), note)


def _mediation(results, entries) -> SummaryTable:
    computed = [e for e in entries if "skipped" not in e]
    ci_method = next((e["ci_method"] for e in computed if "ci_method" in e), None)
    confidence = next((e["confidence"] for e in computed if "confidence" in e), 0.95)
    interval = f"{confidence:.0%} CI"
    title = f"Mediation (indirect effect a\u00d7b, {f'{ci_method} ' if ci_method else ''}bootstrap CI)"
    if computed and all(e.get("role") == "exploratory" for e in computed):
        title += "; exploratory"
    numeric = ("n", "a", "b", "c\u2032", "a\u00d7b", interval, "p", _adjusted_heading(results))
    columns = _columns(("x", "m", "y", *numeric), numeric=numeric)
    rows = []
    for entry in entries:
        identity = (entry.get("x", entry.get("analysis", "")), entry.get("m", ""), entry.get("y", ""))
        if "skipped" in entry:
            rows.append(_skipped_row(entry, identity, len(columns)))
            continue
        rows.append((*identity, str(entry["n"]), apa.number(entry["a"], 3), apa.number(entry["b"], 3),
                     apa.number(entry["c_prime"], 3), apa.number(entry["indirect"], 3),
                     apa.ci(entry["indirect_ci_low"], entry["indirect_ci_high"], decimals=3),
                     apa.p_value(entry["p_indirect"]), apa.p_value(entry.get("p_adjusted"))))
    return SummaryTable("mediation", title, columns, tuple(rows))


_SECTION_TABLES: dict[str, Callable[[Any, Sequence[Mapping[str, Any]]], SummaryTable]] = {
    "alliance_change": _alliance_change,
    "correlations": _correlations,
    "mediation": _mediation,
}
SUMMARY_SECTIONS = tuple(_SECTION_TABLES)
"""The results sections that have a summary table (drawn in the results' own order of sections)."""


def results_summary(results) -> tuple[SummaryTable, ...]:
    """The headline tables of an analysis: alliance change, primary correlations, mediation.

    Parameters
    ----------
    results : alliance.analysis.Results
        Its ``provenance`` gives ``p_adjust`` (default Holm) and ``plan.roles.alliance`` (to tell the
        primary alliance scale from the others; without it every correlation is shown).

    Returns
    -------
    tuple of SummaryTable
        One per section of :data:`SUMMARY_SECTIONS` that has entries, in the order of the results'
        sections (the fields of ``Results``, :data:`alliance.analysis.results.SECTIONS`). Columns:

        * ``alliance_change``: scale, from → to, n, mean diff, t, df, p, p (adjusted), dz;
        * ``correlations``: x, y, n, r, 95% CI (Fisher z), p, p (adjusted) — only correlations that
          do not involve an alliance scale other than the primary one (the first of the plan's
          alliance scales); the note counts those left out;
        * ``mediation``: x, m, y, n, a, b, c′, a×b, its bootstrap CI, p of a×b, p (adjusted).

        The adjusted-p heading names the plan's method (``p (Holm)``).

    Examples
    --------
    >>> from alliance.analysis import Results
    >>> change = {"scale": "wai_sr.total", "from": "prep", "to": "week1", "n": 23, "mean_diff": 1.734,
    ...           "t": 1.672, "df": 22.0, "p": 0.1087, "p_adjusted": 1.0, "cohen_dz": 0.3487}
    >>> [table.rows for table in results_summary(Results(alliance_change=(change,)))]
    [(('wai_sr.total', 'prep → week1', '23', '1.73', '1.67', '22', '.109', '> .999', '0.35'),)]
    """
    return tuple(_SECTION_TABLES[section.name](results, getattr(results, section.name))
                 for section in fields(results) if section.name in _SECTION_TABLES and getattr(results, section.name))


# -- power ----------------------------------------------------------------------------------------

def _field(result, name: str):
    return result[name] if isinstance(result, Mapping) else getattr(result, name)


def _significant(value: float, digits: int = 3) -> str:
    """``-0.07443`` → ``"−0.0744"``: a simulated effect to 3 significant digits, typographic minus."""
    return f"{value:.{digits}g}".replace("-", apa.MINUS)


def _bounded(value: float) -> str:
    """α without its leading zero: ``0.05`` → ``".05"``."""
    text = f"{value:g}"
    return text[1:] if text.startswith("0.") else text


def power_summary(result, target: float = 0.8) -> tuple[SummaryTable, SummaryTable]:
    """The tests (T1, T2, …) with their simulated effects, and power by n × attrition per test.

    Parameters
    ----------
    result : alliance.simulate.power.PowerResult or its ``to_dict()`` (``power.json`` read back)
    target : float, default 0.8
        The power to reach: cells at or above it are emphasised, and a footer row per attrition
        gives the smallest simulated n that reaches it (``—`` when none does).

    Returns
    -------
    (SummaryTable, SummaryTable)
        ``power_tests``: id, the test's label, ``effect measure = value`` (3 significant digits);
        ``power``: n, attrition, then the power of each test (APA, no leading zero), rows sorted by
        n then attrition, with the footer rows ``80% at n``.

    Examples
    --------
    >>> test = {"test": "correlation", "x": "a.s@t1", "y": "b.s@t2"}
    >>> entry = {**test, "n": 20, "attrition": 0.0, "effect": -0.45, "effect_measure": "r", "power": 0.9}
    >>> tests, power = power_summary({"sims": 10, "alpha": 0.05, "seed": 1, "tests": [test], "entries": [entry]})
    >>> tests.rows, power.rows
    ((('T1', 'correlation a.s@t1 ~ b.s@t2', 'r = −0.45'),), (('20', '0%', '.90'), ('80% at n', '0%', '20')))
    """
    specs = list(_field(result, "tests"))
    entries = list(_field(result, "entries"))
    ids = [f"T{k + 1}" for k in range(len(specs))]
    test_rows = []
    by_cell: dict[tuple, dict[str, float]] = {}
    for test_id, spec in zip(ids, specs, strict=True):
        rows = [e for e in entries if all(e.get(key) == value for key, value in spec.items())]
        effect = f"{rows[0]['effect_measure']} = {_significant(rows[0]['effect'])}" if rows else apa.MISSING
        test_rows.append((test_id, PowerTest.from_dict(spec).label, effect))
        for e in rows:
            by_cell.setdefault((e["n"], e["attrition"]), {})[test_id] = e["power"]
    tests = SummaryTable("power_tests", "Tests", _columns(("", "test", "effect"), numeric=()), tuple(test_rows))

    rows, strong = [], set()
    for (n, rate), values in sorted(by_cell.items()):
        cells = [str(n), f"{rate:.0%}"]
        for test_id in ids:
            value = values.get(test_id)
            if value is not None and value >= target:
                strong.add((len(rows), len(cells)))
            cells.append(apa.MISSING if value is None else apa.proportion(value))
        rows.append(tuple(cells))
    rates = sorted({rate for _, rate in by_cell})
    for rate in rates:
        reached = []
        for test_id in ids:
            ns = [n for (n, r), values in sorted(by_cell.items()) if r == rate and values.get(test_id, 0) >= target]
            reached.append(str(ns[0]) if ns else "\u2014")
        rows.append((f"{target:.0%} at n", f"{rate:.0%}", *reached))
    title = (f"Power ({_field(result, 'sims')} trials per cell, two-sided \u03b1 = {_bounded(_field(result, 'alpha'))}, "
             f"seed {_field(result, 'seed')})")
    power = SummaryTable("power", title, _columns(("n", "attrition", *ids), numeric=("n", "attrition", *ids)),
                         tuple(rows), strong=frozenset(strong), footer=len(rates))
    return tests, power


# -- any DataFrame ----------------------------------------------------------------------------------

def frame_summary(frame, title: str) -> SummaryTable:
    """A DataFrame as a summary table: numeric columns right-aligned, floats to at most 2 decimals.

    Missing values are empty cells; ``48.0`` is ``48`` and ``10.6667`` is ``10.67``.

    Parameters
    ----------
    frame : pandas.DataFrame
    title : str

    Returns
    -------
    SummaryTable
        ``id`` ``"frame"``, one column per column of the frame, one row per row.
    """
    import pandas as pd

    columns = tuple(Column(str(c), bool(pd.api.types.is_numeric_dtype(frame[c]))) for c in frame.columns)

    def cell(value) -> str:
        if pd.isna(value):
            return ""
        return f"{value:.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)

    rows = tuple(tuple(cell(v) for v in row) for row in frame.itertuples(index=False))
    return SummaryTable("frame", title, columns, rows)
