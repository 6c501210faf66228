"""What the command line draws on the terminal, with rich: summary tables, instruments, protocols.

The numbers and rows come from :mod:`.summary` (pure); this module only decides how they look.
``alliance.cli`` parses the arguments, calls the core, and hands the result to a function here.

==============================  ===========================================================
function                        draws
==============================  ===========================================================
:func:`rich_table`              one :class:`~.summary.SummaryTable`
:func:`print_tables`            several, one after the other
:func:`print_instrument_bank`   ``alliance instruments``: the instruments of the bank
:func:`print_instrument`        ``alliance instruments show ID``: citation, items, scales, rules
:func:`print_protocol`          ``alliance protocol show``: arms, timepoints, derived timepoints
:func:`print_quality`           ``alliance quality``: the data-quality findings and their counts
==============================  ===========================================================
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:  # the instrument and protocol views need no summary (nor pandas, via .summary)
    from .summary import SummaryTable

__all__ = ["print_instrument", "print_instrument_bank", "print_protocol", "print_quality", "print_tables",
           "rich_table"]


def rich_table(summary: SummaryTable) -> Table:
    """A rich Table of a summary table: numeric columns right-aligned, emphasised cells bold, the
    footer rows in italics, the note as the caption. Cells are plain text (never read as markup)."""
    table = Table(title=summary.title, caption=summary.note or None)
    for column in summary.columns:
        table.add_column(column.heading, justify="right" if column.numeric else "left")
    first_footer = len(summary.rows) - summary.footer
    for i, row in enumerate(summary.rows):
        cells = [Text(cell, style="bold" if (i, j) in summary.strong else "") for j, cell in enumerate(row)]
        table.add_row(*cells, style="italic" if i >= first_footer else None)
    return table


def print_tables(console: Console, tables: Iterable[SummaryTable]) -> None:
    """Print each summary table in turn."""
    for summary in tables:
        console.print(rich_table(summary))


def print_instrument_bank(console: Console, instruments) -> None:
    """The instruments with their items, answer range, scales and whether their wording is included."""
    table = Table(title="Instrument bank", show_lines=False)
    for column in ("id", "name", "rater", "items", "answers", "scales", "wording"):
        table.add_column(column)
    for inst in instruments:
        lows = {i.min for i in inst.items}
        highs = {i.max for i in inst.items}
        answers = f"{min(lows):g}–{max(highs):g}" + (" VAS" if any(i.step is None for i in inst.items) else "")
        table.add_row(inst.id, inst.short_name, inst.rater, str(len(inst.items)), answers,
                      ", ".join(s.id for s in inst.scales),
                      "included" if inst.licence.wording_included else "not included (licensed)")
    console.print(table)


def print_instrument(console: Console, inst) -> None:
    """One instrument: citation, licence, items, scales, criteria, flags and outcome rules."""
    console.print(f"[bold]{inst.name}[/] ({inst.id}, version {inst.version}) — rated by the {inst.rater}")
    console.print(f"{inst.citation} doi:{inst.doi}", highlight=False)
    console.print(f"Wording: {'included' if inst.licence.wording_included else 'not included'} — "
                  f"{inst.licence.wording}", highlight=False)
    items = Table(title="Items")
    for column in ("item", "answers", "reverse", "anchors", "text"):
        items.add_column(column)
    for item in inst.items:
        anchors = "; ".join(f"{v:g}={label}" for v, label in item.anchors.items())
        items.add_row(item.id, item.allowed(), "yes" if item.reverse else "", anchors, item.text or "")
    console.print(items)
    scales = Table(title="Scales")
    for column in ("scale", "method", "items", "range", "missing rule", "bands", "source"):
        scales.add_column(column)
    for s in inst.scales:
        parts = [f"{g.id}: max({', '.join(g.items)})" for g in s.groups] if s.groups else list(s.items)
        rule = f"≤ {s.missing.max_missing} missing" + (", prorated" if s.missing.prorate else "")
        bands = "; ".join(f"≥{b.min:g} {b.label}" for b in s.bands)
        scales.add_row(s.id, s.method, ", ".join(parts), f"{s.range[0]:g}–{s.range[1]:g}", rule, bands, s.source)
    console.print(scales)
    for c in inst.criteria:
        conditions = " and ".join(
            f"{cond.scale} ≥ {cond.percent_at_least:g}% of max" if cond.percent_at_least is not None
            else f"{cond.scale} ≥ {cond.at_least:g}" for cond in c.all_of)
        console.print(f"Criterion [bold]{c.id}[/]: {conditions} ({c.source})", highlight=False)
    for f in inst.flags:
        console.print(f"Flag [bold]{f.id}[/]: {f.item} ≥ {f.at_least:g} ({f.source})", highlight=False)
    for name, rule in inst.outcomes.items():
        what = (f"≥ {rule.reduction_from_baseline_percent:g}% reduction from baseline"
                if rule.reduction_from_baseline_percent is not None else f"≤ {rule.at_most:g}")
        console.print(f"Outcome [bold]{name}[/]: {rule.scale} {what} ({rule.source})", highlight=False)


def print_protocol(console: Console, protocol) -> None:
    """A protocol: arms, timepoints, derived timepoints, identifiers, and its sections in brief."""
    console.print(f"[bold]{protocol.name}[/] ({protocol.id}) — sha256 {protocol.sha256[:12]}", highlight=False)
    if protocol.citation:
        console.print(protocol.citation, highlight=False)
    arms = Table(title="Arms")
    for column in ("arm", "label", "treatment starts"):
        arms.add_column(column)
    for arm in protocol.arms:
        arms.add_row(arm.id, arm.label, f"day {arm.start_offset_days} after enrolment")
    console.print(arms)
    timepoints = Table(title="Timepoints")
    for column in ("order", "timepoint", "label", "kind", "phase", "when", "window (days)", "instruments", "dose"):
        timepoints.add_column(column)
    for t in protocol.timepoints:
        when = t.anchor if t.offset_days == 0 else f"{t.anchor} {t.offset_days:+d} d"
        window = f"−{t.window_days[0]} / +{t.window_days[1]}"
        timepoints.add_row(str(t.order), t.id, t.label, t.kind, protocol.phases[t.id].replace("_", "-"), when, window,
                           ", ".join(t.instruments), t.dose.describe() if t.dose else "")
    console.print(timepoints)
    policy = protocol.deviations
    console.print("Deviations (" + ("this file" if "deviations" in protocol.sections else "the defaults") + "): "
                  + "; ".join(f"{kind.replace('_', ' ')} {policy.action(kind)}d" for kind in policy.actions)
                  + ("; administered_at required" if policy.require_dates else ""), highlight=False)
    emailed = [t.id for t in protocol.timepoints if protocol.invitations.for_timepoint(t.id)]
    if emailed:
        console.print("Invitations by email (this file): " + "; ".join(
            f"{t} at window open" + "".join(f", +{d} d" for d in protocol.invitations.for_timepoint(t).reminders_days)
            for t in emailed) + f"; subject {protocol.invitations.subject!r}", highlight=False)
    else:
        console.print("Invitations by email: none (no invitations: section)", highlight=False)
    if protocol.quality.rules:
        quality = Table(title="Data-quality rules (this file; with the built-in rules, docs/quality.md)")
        for column in ("rule", "finds", "severity", "message"):
            quality.add_column(column)
        for rule in protocol.quality.rules:
            quality.add_row(Text(rule.id), Text(rule.describe()), rule.severity, Text(rule.message))
        console.print(quality)
    else:
        console.print("Data-quality rules: the built-in ones only (no quality: section; docs/quality.md)",
                      highlight=False)
    if protocol.derived:
        derived = Table(title="Derived timepoints")
        for column in ("timepoint", "label", "rule", "from", "instruments"):
            derived.add_column(column)
        for d in protocol.derived:
            derived.add_row(d.id, d.label, d.rule, ", ".join(d.from_timepoints), ", ".join(protocol.instruments_at(d.id)))
        console.print(derived)
    if protocol.identifiers:
        console.print(f"Identifier columns (dropped in de-identified exports): {', '.join(protocol.identifiers)}",
                      highlight=False)
    own = set(protocol.sections)

    def origin(section: str) -> str:
        return "this file" if section in own else "the default protocol"

    rules = Table(title=f"Alert rules (from {origin('alerts')})")
    for column in ("rule", "type", "severity", "label"):
        rules.add_column(column)
    for rule in protocol.alerts.rules:
        rules.add_row(rule.id, rule.type, rule.severity, rule.label)
    console.print(rules)
    plan = protocol.analysis
    console.print(f"Analysis plan (from {origin('analysis')}): {len(plan.analyses)} analyses, p adjusted by "
                  f"{plan.p_adjust} within each family, {plan.correlation_method} correlations, seed {plan.seed}; "
                  "see docs/analysis.md", highlight=False)
    console.print(f"Power tests (from {origin('power')}): {len(protocol.power.tests)}, alpha {protocol.power.alpha:g}",
                  highlight=False)


def print_quality(console: Console, report, title: str) -> None:
    """A data-quality report: one row per finding, most severe first, then the counts per rule.

    Severity is written out in words (never colour alone); cells are plain text, never markup.
    """
    table = Table(title=title)
    for heading in ("severity", "rule", "participant", "timepoint", "instrument", "field", "value", "message"):
        table.add_column(heading, overflow="fold")
    style = {"error": "bold red", "warning": "yellow", "info": ""}
    for f in report.findings:
        table.add_row(Text(f.severity.upper() if f.severity == "error" else f.severity, style=style[f.severity]),
                      *(Text(cell or "") for cell in (f.rule, f.participant_id, f.timepoint, f.instrument, f.field,
                                                      f.value, f.message)))
    if report.findings:
        console.print(table)
    counts = report.severity_counts
    found = ", ".join(f"{rule} {n}" for rule, n in report.counts.items() if n)
    console.print(f"{len(report.findings)} finding(s): {counts['error']} error(s), {counts['warning']} warning(s), "
                  f"{counts['info']} info" + (f" — {found}" if found else "") + f"; {len(report.rules)} rules checked",
                  highlight=False, markup=False)
    for note in report.not_checked:
        console.print(f"not checked: {note}", highlight=False, markup=False)
