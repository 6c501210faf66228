"""The ``alliance`` command line. Thin: it parses arguments, calls the core and prints."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from alliance import __version__
from alliance import instruments as bank
from alliance.study.io import read_csv_text

app = typer.Typer(
    name="alliance",
    help="Therapeutic alliance measurement and analysis for psychedelic-assisted therapy trials.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
instruments_app = typer.Typer(help="The instrument bank: list instruments, show one.", invoke_without_command=True)
app.add_typer(instruments_app, name="instruments")

console = Console()
errors = Console(stderr=True)


def _fail(message: str, code: int = 1) -> None:
    errors.print(f"[bold red]error:[/] {message}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(code)


@app.callback()
def main(version: bool = typer.Option(False, "--version", help="Print the version and exit.")) -> None:
    """alliance: therapeutic alliance in psychedelic-assisted therapy."""
    if version:
        console.print(f"alliance {__version__}")
        raise typer.Exit()


@instruments_app.callback()
def instruments_list(ctx: typer.Context) -> None:
    """List the instruments in the bank with their items, scales and wording licence."""
    if ctx.invoked_subcommand is not None:
        return
    table = Table(title="Instrument bank", show_lines=False)
    for column in ("id", "name", "rater", "items", "answers", "scales", "wording"):
        table.add_column(column)
    for inst in bank.list_instruments():
        lows = {i.min for i in inst.items}
        highs = {i.max for i in inst.items}
        answers = f"{min(lows):g}–{max(highs):g}" + (" VAS" if any(i.step is None for i in inst.items) else "")
        table.add_row(inst.id, inst.short_name, inst.rater, str(len(inst.items)), answers,
                      ", ".join(s.id for s in inst.scales),
                      "included" if inst.licence.wording_included else "not included (licensed)")
    console.print(table)


@instruments_app.command("show")
def instruments_show(instrument_id: str = typer.Argument(..., help="Instrument id, e.g. wai_sr.")) -> None:
    """Show one instrument: citation, licence, items and scoring rules."""
    try:
        inst = bank.get(instrument_id)
    except bank.UnknownInstrumentError as exc:
        _fail(str(exc))
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


def _score_file(instrument_id: str, path: Path) -> pd.DataFrame:
    try:
        inst = bank.get(instrument_id)
    except bank.UnknownInstrumentError as exc:
        _fail(str(exc))
    try:
        data = read_csv_text(path)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        _fail(f"{path}: cannot read as CSV: {exc}")
    try:
        scores = bank.score(inst, data, source=str(path), first_row=2)
    except bank.ScoringError as exc:
        _fail(str(exc))
    kept = [c for c in data.columns if not (c.startswith(f"{inst.id}_") and c[len(inst.id) + 1:].isdigit())]
    return pd.concat([data[kept], scores], axis=1)


def _print_frame(frame: pd.DataFrame, title: str) -> None:
    table = Table(title=title)
    for column in frame.columns:
        table.add_column(str(column), justify="right" if pd.api.types.is_numeric_dtype(frame[column]) else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*["" if pd.isna(v) else (f"{v:.2f}".rstrip("0").rstrip(".") if isinstance(v, float) else str(v))
                        for v in row])
    console.print(table)


@app.command()
def score(
    instrument_id: str = typer.Argument(..., help="Instrument id, e.g. wai_sr (see `alliance instruments`)."),
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV with one row per administration."),
    out: Path | None = typer.Option(None, "-o", "--out", help="Write the scores to this CSV instead of printing."),
) -> None:
    """Score a CSV of item answers (columns <instrument>_<n>); other columns are kept."""
    result = _score_file(instrument_id, file)
    if out is None:
        _print_frame(result, f"{instrument_id} scores — {file}")
    else:
        result.to_csv(out, index=False)
        console.print(f"wrote {len(result)} rows to {out}")


@app.command()
def demo() -> None:
    """Score the bundled example administrations and print the scores."""
    from importlib import resources

    examples = resources.files("alliance") / "data" / "examples"
    for name in ("wai_sr", "grid_hamd17"):
        with resources.as_file(examples / f"{name}.csv") as path:
            _print_frame(_score_file(name, path), f"{name} — bundled example ({path.name})")


if __name__ == "__main__":  # pragma: no cover
    app()
