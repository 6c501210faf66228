"""The ``alliance`` command line. Thin: it parses arguments, calls the core and prints."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from alliance import __version__

# Every command imports what it needs inside its function: `alliance --help` (and each group's
# --help) loads typer and rich only, not pandas, numpy, matplotlib or Django (tests/test_cli.py).

app = typer.Typer(
    name="alliance",
    help="Therapeutic alliance measurement and analysis for psychedelic-assisted therapy trials.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
instruments_app = typer.Typer(help="The instrument bank: list instruments, show one.", invoke_without_command=True)
app.add_typer(instruments_app, name="instruments")
protocol_app = typer.Typer(help="Study protocols: arms, timepoints, instruments, doses.", no_args_is_help=True)
app.add_typer(protocol_app, name="protocol")

# Tables are wide; when the output is a file or a pipe, do not wrap them at 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)
errors = Console(stderr=True)


def _fail(message: str, code: int = 1) -> None:
    from rich.markup import escape

    # The message is data (it quotes the user's values): brackets in it are not rich markup.
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(code)


def _print_version(value: bool) -> None:
    if value:
        console.print(f"alliance {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                      help="Print the version and exit."),
         instruments_dir: Path | None = typer.Option(
             None, "--instruments-dir", envvar="ALLIANCE_INSTRUMENTS_DIR",
             help="A folder of the site's own instrument files (<id>.yaml, docs/instruments.md), added to "
                  "the bank for this command (a protocol's instruments_dir: adds its own).")) -> None:
    """alliance: therapeutic alliance in psychedelic-assisted therapy."""
    if instruments_dir is not None:
        from alliance import instruments

        try:
            instruments.add_instruments_dir(instruments_dir)
        except instruments.InstrumentDefinitionError as exc:
            _fail(f"--instruments-dir {instruments_dir}: {exc}")


@instruments_app.callback()
def instruments_list(ctx: typer.Context) -> None:
    """List the instruments in the bank with their items, scales and wording licence."""
    if ctx.invoked_subcommand is not None:
        return
    from alliance import instruments
    from alliance.report.console import print_instrument_bank

    print_instrument_bank(console, instruments.list_instruments())


@instruments_app.command("show")
def instruments_show(instrument_id: str = typer.Argument(..., help="Instrument id, e.g. wai_sr.")) -> None:
    """Show one instrument: citation, licence, items and scoring rules."""
    from alliance import instruments
    from alliance.report.console import print_instrument

    try:
        inst = instruments.get(instrument_id)
    except instruments.UnknownInstrumentError as exc:
        _fail(str(exc))
    print_instrument(console, inst)


def _score_file(instrument_id: str, path: Path):
    """The CSV's rows with their scores: the columns other than the instrument's items, then the scores."""
    import pandas as pd

    from alliance import instruments
    from alliance.study import StudyDataError
    from alliance.study.io import read_csv_text

    try:
        inst = instruments.get(instrument_id)
    except instruments.UnknownInstrumentError as exc:
        _fail(str(exc))
    try:
        data = read_csv_text(path)
    except StudyDataError as exc:  # not UTF-8, a column twice, a row cut short: with file and row
        _fail(str(exc))
    except (OSError, pd.errors.ParserError) as exc:
        _fail(f"{path}: cannot read as CSV: {exc}")
    try:
        scores = instruments.score(inst, data, source=str(path), first_row=2)
    except instruments.ScoringError as exc:
        _fail(str(exc))
    kept = [c for c in data.columns if not (c.startswith(f"{inst.id}_") and c[len(inst.id) + 1:].isdigit())]
    return pd.concat([data[kept], scores], axis=1)


@app.command()
def score(
    instrument_id: str = typer.Argument(..., help="Instrument id, e.g. wai_sr (see `alliance instruments`)."),
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV with one row per administration."),
    out: Path | None = typer.Option(None, "-o", "--out", help="Write the scores to this CSV instead of printing."),
) -> None:
    """Score a CSV of item answers (columns <instrument>_<n>); other columns are kept."""
    result = _score_file(instrument_id, file)
    if out is None:
        from alliance.report.console import print_tables
        from alliance.report.summary import frame_summary

        print_tables(console, [frame_summary(result, f"{instrument_id} scores — {file}")])
    else:
        result.to_csv(out, index=False)
        console.print(f"wrote {len(result)} rows to {out}")


@app.command()
def simulate(
    n: int = typer.Option(24, "--n", min=2, help="Participants to enrol."),
    seed: int = typer.Option(1, "--seed", help="Random seed: the same seed gives the same trial."),
    out: Path = typer.Option(..., "--out", file_okay=False, help="Directory to write the tidy contract files to."),
    protocol_file: Path | None = typer.Option(None, "--protocol", exists=True, dir_okay=False,
                                              help="Protocol YAML (default: the Levin 2024 protocol)."),
    scenario_file: Path | None = typer.Option(None, "--scenario", exists=True, dir_okay=False,
                                              help="Scenario YAML overriding the calibrated Levin 2024 scenario."),
) -> None:
    """Simulate a trial calibrated to Levin et al. (2024) and write it as tidy contract files."""
    from alliance import protocol as protocols
    from alliance import simulate as synthetic
    from alliance import study as study_data
    from alliance.protocol.yaml_input import read_yaml_file

    try:
        protocol = protocols.load_protocol(protocol_file) if protocol_file else protocols.default_protocol()
        scenario = synthetic.levin2024_scenario()
        if scenario_file is not None:
            scenario = scenario.with_overrides(read_yaml_file(scenario_file) or {})
        trial = synthetic.simulate_trial(protocol, n=n, seed=seed, scenario=scenario)
    except (study_data.StudyDataError, synthetic.CalibrationError) as exc:
        _fail(str(exc))
    study_data.save(trial, out)
    console.print(f"simulated {n} participants ({len(trial.responses):,} item answers, seed {seed}) → {out}")


def _analyze_and_report(trial, out: Path, input_hashes: dict[str, str] | None, seed: int | None,
                        sampling=None) -> dict:
    from alliance.analysis import run_analysis
    from alliance.protocol import ProtocolError
    from alliance.report import write_report
    from alliance.report.console import print_tables
    from alliance.report.summary import results_summary

    try:
        results = run_analysis(trial, seed=seed, input_hashes=input_hashes)
    except ProtocolError as exc:
        _fail(str(exc))
    print_tables(console, results_summary(results))
    return write_report(trial, results, out, sampling=sampling)


def _study_from(directory: Path | None, study_name: str | None):
    """The study of a tidy directory or of the database (``--study NAME``); exactly one must be given."""
    from alliance import study as study_data

    if (directory is None) == (study_name is None):
        _fail("give either a study directory or --study NAME")
    if directory is not None:
        try:
            return study_data.load(directory)
        except study_data.StudyDataError as exc:
            _fail(str(exc))
    storage = _storage()
    try:
        return storage.export_study(study_name)
    except (LookupError, storage.StorageError) as exc:
        _fail(str(exc))


@app.command()
def analyze(
    directory: Path | None = typer.Argument(None, exists=True, file_okay=False,
                                            help="Study directory in the tidy contract (docs/data.md)."),
    study_name: str | None = typer.Option(None, "--study", help="Analyze a study stored in the database instead."),
    out: Path = typer.Option(..., "--out", file_okay=False, help="Directory for results.json, report.html, report.pdf."),
    seed: int | None = typer.Option(None, "--seed", help="Bootstrap seed (default: the plan's seed)."),
) -> None:
    """Run the study's analysis plan; write results.json, report.html and report.pdf."""
    from alliance import study as study_data

    trial = _study_from(directory, study_name)
    hashes = study_data.io.file_hashes(directory) if directory is not None else None
    _print_deviations(trial)
    paths = _analyze_and_report(trial, out, hashes, seed)
    console.print(f"wrote {paths['results']}, {paths['html']} and {paths['pdf']}")


@app.command()
def dsmb(
    source: Path | None = typer.Argument(None, exists=True,
                                         help="Study directory (tidy contract) or a results.json of alliance analyze."),
    study_name: str | None = typer.Option(None, "--study", help="A study stored in the database instead."),
    out: Path = typer.Option(..., "--out", file_okay=False,
                             help="Directory for dsmb-blinded.pdf and .html (dsmb-unblinded.* with --unblinded)."),
    blinded: bool = typer.Option(True, "--blinded/--unblinded",
                                 help="Open-session report, arms pooled (default), or closed-session report by arm."),
    cutoff: str | None = typer.Option(None, "--cutoff", help="Data cut-off, YYYY-MM-DD (default: latest date in the data)."),
) -> None:
    """Write the DSMB safety report: blinded (open session) or unblinded (closed session; docs/analysis.md)."""
    import datetime
    import json

    from alliance.report.dsmb import write_dsmb_report

    if cutoff is not None:
        try:
            cutoff = datetime.date.fromisoformat(cutoff).isoformat()
        except ValueError:
            _fail(f"--cutoff {cutoff!r}: give a date as YYYY-MM-DD", code=2)
    if source is not None and source.is_file():
        from alliance.analysis import Results

        if study_name is not None:
            _fail("give either a study directory, a results.json or --study NAME")
        try:
            safety = Results.from_dict(json.loads(source.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError) as exc:
            _fail(f"{source}: not a results.json of alliance analyze ({exc})")
        trial = None
    else:
        trial, safety = _study_from(source, study_name), None
    from alliance.protocol import ProtocolError

    try:
        paths = write_dsmb_report(trial, out, safety=safety, blinded=blinded, cutoff=cutoff, study_name=study_name)
    except ProtocolError as exc:
        _fail(str(exc))
    version = "blinded, open session" if blinded else "UNBLINDED, closed session: confidential to the DSMB"
    console.print(f"wrote {paths['pdf']} and {paths['html']} ({version})", highlight=False)


@app.command()
def pool(
    results_files: list[Path] = typer.Argument(None, dir_okay=False,
                                               help="results.json files of alliance analyze runs (trials or sites)."),
    published: Path | None = typer.Option(None, "--published", dir_okay=False,
                                          help="CSV of published correlations: study, x, y, r, n (optional note)."),
    out: Path = typer.Option(Path("pooled"), "--out", file_okay=False,
                             help="Directory for pooled.json, pooled.csv, forest_*.png (default: ./pooled)."),
    method: str = typer.Option("REML", "--method", help="Between-study variance: REML (default), DL or FE."),
    test: str = typer.Option("knha", "--test", help="knha (Knapp-Hartung, default: few studies) or z."),
) -> None:
    """Pool the confirmatory correlations of several analyze runs (and published studies) by meta-analysis.

    Tests are matched by their measures (x ~ y); each is pooled on Fisher's z with a random-effects
    model equal to metafor's rma (docs/pooling.md), and drawn as a forest plot.
    """
    import csv
    import json

    from alliance.analysis.pooling import PoolingError, pool_results, read_published, read_results
    from alliance.report.forest import forest_plot

    if method not in ("REML", "DL", "FE"):
        _fail(f"--method {method!r}: give REML, DL or FE", code=2)
    if test not in ("knha", "z"):
        _fail(f"--test {test!r}: give knha or z", code=2)
    if not results_files and published is None:
        _fail("give at least one results.json or --published CSV", code=2)
    try:
        sources = [(str(path), read_results(path)) for path in results_files or []]
        rows = read_published(published) if published is not None else []
        tests, notes = pool_results(sources, rows, method=method, test=test)
    except PoolingError as exc:
        _fail(str(exc), code=2)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pooled.json").write_text(json.dumps({"method": method, "test": test, "notes": notes,
                                                 "tests": [t.to_dict() for t in tests]}, indent=2,
                                                allow_nan=False, default=float) + "\n", encoding="utf-8")
    table = Table(title=f"Pooled correlations ({method}, {'Knapp-Hartung' if test == 'knha' else 'z'})")
    for column in ("test", "k", "n", "r", "95% CI", "tau\u00b2", "I\u00b2"):
        table.add_column(column)
    with (out / "pooled.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["x", "y", "k", "n_total", "r", "ci_low", "ci_high", "pi_low", "pi_high", "p", "tau2", "i2",
                         "q", "q_p", "studies"])
        for index, pooled_test in enumerate(tests, start=1):
            pooled = pooled_test.pooled
            names = "; ".join(s["study"] for s in pooled_test.studies)
            if pooled is None:
                writer.writerow([pooled_test.x, pooled_test.y, len(pooled_test.studies), "", "", "", "", "", "", "",
                                 "", "", "", "", names])
                table.add_row(f"{pooled_test.x} ~ {pooled_test.y}", str(len(pooled_test.studies)), "", "not pooled",
                              "", "", "")
                continue
            meta = pooled["meta"]
            writer.writerow([pooled_test.x, pooled_test.y, pooled["k"], pooled["n_total"], pooled["r"], pooled["ci_low"],
                             pooled["ci_high"], pooled["pi_low"], pooled["pi_high"], pooled["p"], meta["tau2"],
                             meta["i2"], meta["q"], meta["q_p"], names])
            table.add_row(f"{pooled_test.x} ~ {pooled_test.y}", str(pooled["k"]), str(pooled["n_total"]),
                          f"{pooled['r']:.2f}", f"[{pooled['ci_low']:.2f}, {pooled['ci_high']:.2f}]",
                          f"{meta['tau2']:.3f}", f"{meta['i2']:.0f}%")
            forest_plot(pooled_test).savefig(out / f"forest_{index}.png", dpi=150)
    console.print(table)
    for note in notes:
        console.print(f"note: {note}", highlight=False, markup=False)
    console.print(f"wrote {out / 'pooled.json'}, {out / 'pooled.csv'} and the forest plots", highlight=False)


@app.command()
def quality(
    directory: Path | None = typer.Argument(None, exists=True, file_okay=False,
                                            help="Study directory in the tidy contract (docs/data.md)."),
    study_name: str | None = typer.Option(None, "--study", help="Check a study stored in the database instead."),
    fmt: str = typer.Option("table", "--format", help="table (default), csv or json, written to standard output."),
) -> None:
    """Check the data-quality rules (built-in and the protocol's quality: section; docs/quality.md).

    Prints one row per finding (severity, rule, participant, timepoint, instrument, field, value,
    message) and a count line. Exit code 0 when there is no finding of severity error, 1 when
    there is at least one (or the data cannot be read).
    """
    from alliance.monitoring.quality import check_quality

    if fmt not in ("table", "csv", "json"):
        _fail(f"--format {fmt!r}: give table, csv or json")
    trial = _study_from(directory, study_name)
    title = f"Data quality of {directory}" if directory is not None else f"Data quality of study {study_name!r}"
    report = check_quality(trial)
    if fmt == "csv":
        report.to_frame().to_csv(sys.stdout, index=False)
    elif fmt == "json":
        import json

        sys.stdout.write(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n")
    else:
        from alliance.report.console import print_quality

        print_quality(console, report, title)
    if report.has_errors:
        raise typer.Exit(1)


def _print_deviations(trial) -> None:
    """Warnings about the data: participants without any answer, protocol deviations (the data are kept)."""
    from collections import Counter

    from alliance.monitoring.deviations import find_deviations

    empty = trial.participants_without_answers
    if empty:
        errors.print(f"warning: {len(empty)} participant(s) without any answer: {', '.join(empty[:10])}"
                     + (" …" if len(empty) > 10 else "") + " (enrolled, in no analysis)", highlight=False, markup=False)
    found = find_deviations(trial.protocol, trial.participants, trial.responses, trial.dosing_sessions)
    if not found:
        return
    policy = trial.protocol.deviations
    counts = Counter((d.kind, policy.action(d.kind)) for d in found)
    parts = [f"{n} {kind.replace('_', ' ')} ({'excluded from' if action == 'exclude' else 'included in'} the analysis)"
             for (kind, action), n in sorted(counts.items())]
    excluded = [d for d in found if policy.action(d.kind) == "exclude"]
    first = (excluded or found)[0]
    errors.print(f"warning: {len(found)} protocol deviation(s): " + "; ".join(parts)
                 + f". {'First excluded' if excluded else 'First'}: {first.participant_id} {first.timepoint} "
                 f"{first.instrument} {first.reason}. All are listed in results.json (deviations); the data are kept.",
                 highlight=False, markup=False)


@app.command()
def demo(
    out: Path = typer.Option(Path("out/demo"), "--out", file_okay=False, help="Where to write the demo study and report."),
    n: int = typer.Option(24, "--n", min=4, help="Participants in the synthetic trial (Levin 2024: 24)."),
    seed: int = typer.Option(2024, "--seed", help="Seed of the synthetic trial and the bootstrap."),
) -> None:
    """The whole system on a synthetic Levin-sized trial: simulate, store, analyze, report.

    Simulates a trial calibrated to Levin et al. (2024), writes it as tidy contract files, imports
    them into the database (SQLite unless DATABASE_URL says otherwise), exports the study back from
    the database, runs the analysis plan on it and writes results.json, report.html and report.pdf.
    """
    from alliance import simulate as synthetic
    from alliance import study as study_data
    from alliance.protocol import default_protocol
    from alliance.web import database_location

    data_dir, report_dir = out / "data", out / "report"
    trial = synthetic.simulate_trial(default_protocol(), n=n, seed=seed)
    study_data.save(trial, data_dir)
    console.print(f"1. simulated {n} participants calibrated to Levin et al. (2024) → {data_dir}")
    loaded = study_data.load(data_dir)
    storage = _storage()
    name = "levin2024-demo"
    try:
        summary = storage.import_study(loaded, name, actor="cli:demo")
    except storage.DeletionsNotAllowed as exc:  # a demo of another --n or --seed was stored before
        _fail(f"{exc}\nto replace the stored demo study: alliance import {data_dir} --study {name} --allow-deletions")
    console.print(f"2. stored as study {name!r} in {database_location()} "
                  f"({'unchanged' if summary.unchanged else f'{summary.audit_events:,} audit events'})", highlight=False)
    stored = storage.export_study(name)
    # what a trial of this size and dropout gives: the published findings over simulated trials
    from alliance.simulate.sampling import attrition_of, sampling_intervals

    sampling = sampling_intervals(stored.protocol, n=n, attrition=attrition_of(stored), seed=seed)
    console.print("3. analysis plan of Levin et al. (2024) and Murphy et al. (2022):")
    paths = _analyze_and_report(stored, report_dir, study_data.io.file_hashes(data_dir), seed, sampling=sampling)
    console.print(f"4. report: {paths['html'].resolve()}\n   PDF:    {paths['pdf'].resolve()}\n"
                  f"   results: {paths['results'].resolve()}", highlight=False)


@protocol_app.command("show")
def protocol_show(
    file: Path | None = typer.Argument(None, dir_okay=False,
                                       help="A protocol YAML file; the built-in Levin 2024 protocol when omitted."),
) -> None:
    """Show a protocol: arms, timepoints with their instruments and doses, derived timepoints."""
    from alliance import study
    from alliance.protocol import default_protocol, load_protocol
    from alliance.report.console import print_protocol

    try:
        protocol = load_protocol(file) if file is not None else default_protocol()
    except study.StudyDataError as exc:
        _fail(str(exc))
    print_protocol(console, protocol)


@app.command()
def power(
    n: str = typer.Option("20:200:20", "--n", help="Sample sizes: start:stop:step (stop included), one n, or a comma list."),
    attrition: str = typer.Option("0.1", "--attrition", help="Probability a participant is lost to follow-up; a comma list for several."),
    sims: int = typer.Option(2000, "--sims", min=1, help="Simulated trials per n × attrition."),
    seed: int = typer.Option(1, "--seed", min=0, help="Root seed: the same seed gives the same result on any executor."),
    out: Path = typer.Option(..., "--out", file_okay=False, help="Directory for power.json and power_curve.png (created)."),
    scenario_file: Path | None = typer.Option(None, "--scenario", exists=True, dir_okay=False,
                                              help="YAML of scenario overrides, optionally with a `power:` section "
                                                   "(tests, alpha, distribution, mediation_ci, n_boot)."),
    protocol_file: Path | None = typer.Option(None, "--protocol", exists=True, dir_okay=False,
                                              help="Protocol YAML (default: the Levin 2024 protocol)."),
    scheduler: str | None = typer.Option(None, "--scheduler", help="Address of a running Dask scheduler, e.g. tcp://host:8786."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Start a local Dask cluster with N worker processes."),
    processes: int | None = typer.Option(None, "--processes", min=1, help="Run on N local processes (no Dask)."),
) -> None:
    """Simulated power of the planned tests over sample sizes and attrition (calibrated Levin 2024 scenario)."""
    import time

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from alliance import study as study_data
    from alliance.protocol import default_protocol, load_protocol
    from alliance.protocol.yaml_input import read_yaml_file
    from alliance.report.console import print_tables
    from alliance.report.power_report import write_power_report
    from alliance.report.summary import power_summary
    from alliance.simulate import CalibrationError
    from alliance.simulate import executors as runners
    from alliance.simulate import power as power_analysis

    try:
        sizes = power_analysis.parse_n_range(n)
        try:
            rates = [float(a) for a in attrition.split(",") if a.strip()]
        except ValueError:
            _fail(f"--attrition {attrition!r}: give a probability such as 0.1, or a comma list such as 0,0.1,0.2")
        raw = read_yaml_file(scenario_file) if scenario_file is not None else None
        overrides, options = power_analysis.split_power_options(raw)
        protocol = load_protocol(protocol_file) if protocol_file else default_protocol()
        # The protocol's power: section, with the scenario file's power: options over it.
        options = {**protocol.power.options(), **options}
        with console.status("Preparing the calibrated score model …"):
            plan = power_analysis.PowerPlan.build(sizes, rates, sims, seed, overrides=overrides, protocol=protocol,
                                                  **options)
        executor = runners.make_executor(scheduler=scheduler, workers=workers, processes=processes)
    except (CalibrationError, study_data.StudyDataError, runners.ExecutorError) as exc:
        _fail(str(exc))
    started = time.perf_counter()
    try:
        with executor:
            estimate = plan.estimate_seconds(executor.workers)
            console.print(f"{len(plan.design.tests)} tests × {len(sizes)} n × {len(rates)} attrition × {sims} trials = "
                          f"{plan.total_trials * len(plan.design.tests):,} fits on {executor.description}; "
                          f"estimated time ≈ {estimate:.1f} s"
                          + ("" if isinstance(executor, runners.SerialExecutor) else " (plus worker start-up)"),
                          highlight=False)
            columns = (TextColumn("simulating"), BarColumn(), MofNCompleteColumn(), TextColumn("trials"),
                       TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())
            with Progress(*columns, console=console, transient=False) as bar:
                task = bar.add_task("power", total=plan.total_trials)
                result = plan.run(executor, progress=lambda done, total: bar.update(task, completed=done, total=total))
    except (OSError, TimeoutError) as exc:
        _fail(f"the executor failed ({executor.description}): {exc}")
    print_tables(console, power_summary(result))
    paths = write_power_report(result, out)
    console.print(f"done in {time.perf_counter() - started:.1f} s → {paths['json']}, {paths['figure']}",
                  highlight=False)


# -- storage: `alliance import` / `alliance export` (the database is set by DATABASE_URL) --------

_STORAGE_KINDS = ("study", "arms", "timepoints", "facilitators", "participants", "alerts", "enrolment_dates",
                  "dosing_sessions", "administrations", "responses")


def _storage(**settings):
    """Set Django up (migrating a new database) and return the storage module; fail clearly.

    ``settings`` go to :func:`alliance.web.django_setup` (``https``, ``allowed_hosts``); the
    storage module is imported only after Django is set up, as it needs.
    """
    from django.core.exceptions import ImproperlyConfigured
    from django.db import Error as DatabaseError

    from alliance.web import django_setup

    try:
        django_setup(**settings)
    except ImproperlyConfigured as exc:
        # A setting from the environment (DATABASE_URL, ALLIANCE_TIME_ZONE, ALLIANCE_SITE_URL, ...):
        # its own message names the variable and what is allowed.
        _fail(f"cannot start: {exc}")
    except (DatabaseError, OSError) as exc:
        _fail(f"cannot open the database: {exc}")
    from alliance.web.capture import storage

    return storage


@app.command("import")
def import_(
    directory: Path = typer.Argument(..., help="A study directory (tidy contract: participants.csv, responses.csv, …)."),
    study_name: str = typer.Option(..., "--study", help="The study's name in the database."),
    fmt: str = typer.Option("csv", "--format", help="csv (the tidy contract), wide, redcap or parquet."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the change the import would make; write nothing."),
    allow_deletions: bool = typer.Option(
        False, "--allow-deletions",
        help="Delete stored records the data no longer have (without it, such an import is refused)."),
) -> None:
    """Import a study directory into the database (one transaction, every change audited).

    An import that would delete stored records (participants, dosing sessions, administrations,
    answers the files no longer have) is refused unless --allow-deletions is given; --dry-run
    prints the change first.
    """
    from alliance.study import StudyDataError, formats

    try:
        study = formats.read_study(directory, fmt)
    except StudyDataError as exc:
        _fail(str(exc))
    _store_and_print(study, study_name, str(directory), actor="cli:import", dry_run=dry_run,
                     allow_deletions=allow_deletions)


@app.command()
def export(
    study_name: str = typer.Argument(..., help="The study's name in the database."),
    fmt: str = typer.Option("csv", "--format",
                            help="csv (the tidy contract files), wide, redcap, spss, stata or parquet."),
    out: Path = typer.Option(..., "--out", help="Directory to write (a .sav / .dta file for spss / stata)."),
    machine: bool = typer.Option(False, "--machine",
                                 help="CSV cells as stored, for programs: no ' before cells a spreadsheet "
                                      "would run as a formula (= + - @)."),
) -> None:
    """Export a stored study: the tidy contract files or another format."""
    from django.db import Error as DatabaseError

    from alliance.study import StudyDataError, formats

    if fmt not in formats.WRITE_FORMATS:
        _fail(f"unknown format {fmt!r}; formats are {', '.join(formats.WRITE_FORMATS)}")
    storage = _storage()
    try:
        study = storage.export_study(study_name)
    except storage.StorageError as exc:
        _fail(str(exc))
    except DatabaseError as exc:
        _fail(f"cannot read the database: {exc}")
    try:
        written = formats.write_study(study, out, fmt, spreadsheet=not machine)
    except StudyDataError as exc:
        _fail(str(exc))
    except ImportError as exc:
        _fail(f"--format {fmt} needs a package that is not installed: {exc}")
    except OSError as exc:
        _fail(f"cannot write {out}: {exc}")
    console.print(f"wrote study {study_name!r} ({len(study.participants):,} participants, "
                  f"{len(study.responses):,} responses) as {fmt} to {written}", highlight=False)


# -- the web app: `alliance createadmin`, `alliance serve` ------------------------------------------

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@app.command()
def createadmin(
    username: str = typer.Argument(..., help="The administrator's username."),
    email: str = typer.Option("", "--email", help="Their e-mail address (optional)."),
    password_file: Path | None = typer.Option(
        None, "--password-file", exists=True, dir_okay=False,
        help="Read the password from this file (its first line) instead of asking for it."),
) -> None:
    """Create an administrator of every study, for the web app's first log-in.

    The password is asked for twice without being shown, or read from --password-file; it must
    have at least 12 characters and not be a common one. It is stored as an Argon2id hash.
    """
    from django.core.exceptions import ValidationError

    from alliance.web import database_location

    _storage()
    if password_file is not None:
        lines = password_file.read_text(encoding="utf-8").splitlines()
        password = lines[0] if lines else ""
    elif not sys.stdin.isatty():
        _fail("there is no terminal to ask for the password on; use --password-file")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    from alliance.web.accounts.members import create_admin

    try:
        create_admin(username, password)
    except ValidationError as exc:
        _fail("the password is refused: " + " ".join(exc.messages))
    except ValueError as exc:
        _fail(str(exc))
    console.print(f"administrator {username!r} created in {database_location()}", highlight=False)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
    threads: int = typer.Option(8, "--threads", min=1, help="Requests handled at once."),
) -> None:
    """Run the web app (migrating the database on first run) with waitress; static files included.

    For one site on plain HTTP: cookies are not marked Secure unless ALLIANCE_HTTPS=true (set it
    when a TLS proxy sits in front). For several workers or PostgreSQL, see gunicorn in README.
    """
    # This server speaks plain HTTP and answers to the host it listens on; ALLIANCE_HTTPS and
    # ALLIANCE_ALLOWED_HOSTS, when set, still win (alliance.web.config.build_settings).
    named_host = host not in _LOOPBACK and host not in ("0.0.0.0", "::")
    _storage(https=False, allowed_hosts=["localhost", "127.0.0.1", host] if named_host else None)
    from django.conf import settings
    from django.core.wsgi import get_wsgi_application
    from waitress import serve as waitress_serve

    from alliance.web import database_location

    if host not in _LOOPBACK and not settings.HTTPS:
        errors.print(f"warning: serving plain HTTP on {host}: passwords would cross the network unencrypted; "
                     "put a TLS proxy in front and set ALLIANCE_HTTPS=true", highlight=False)
    application = get_wsgi_application()

    from alliance.web.monitor.scheduler import start_refresher

    shown = f"[{host}]" if ":" in host else host
    console.print(f"alliance web app on http://{shown}:{port}/ — {database_location()} (Ctrl+C to stop)",
                  highlight=False)
    # Overdue and missed assessments become alerts with time alone: stored by a background job
    # (pages never write), every 15 minutes. Several gunicorn workers use `alliance alerts refresh`.
    refresher = start_refresher()
    try:
        waitress_serve(application, host=host, port=port, threads=threads, ident="alliance")
    finally:
        refresher.stop()



# -- alerts: `alliance alerts refresh` -----------------------------------------------------------

alerts_app = typer.Typer(help="Alerts of the protocol's alert rules (docs/protocol.md).", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")


@alerts_app.command("refresh")
def alerts_refresh(
    study_name: str | None = typer.Option(None, "--study", help="One study (default: every study)."),
) -> None:
    """Evaluate every alert rule for every participant and store the new alerts (e.g. daily from cron).

    Assessments become overdue without anything happening; web pages never write, so these alerts
    are stored by a scheduled job: this command (cron, for gunicorn sites), or the background job
    of `alliance serve` (every 15 minutes). Submissions, dosing sessions and imports raise theirs
    at once.
    """
    storage = _storage()
    from alliance.web.monitor.alerting import refresh_alerts

    names = [study_name] if study_name else storage.list_studies()
    for name in names:
        try:
            row = storage.stored_study(name)
        except storage.UnknownStudyError as exc:
            _fail(str(exc))
        summary = refresh_alerts(row)
        console.print(f"{name}: {summary.raised} new alert(s), {summary.resolved} resolved, "
                      f"{summary.participants} participant(s)", highlight=False)


# -- invitations: `alliance invitations send` ----------------------------------------------------

invitations_app = typer.Typer(help="Invitation and reminder emails of the protocol (docs/capture.md).",
                              no_args_is_help=True)
app.add_typer(invitations_app, name="invitations")


@invitations_app.command("send")
def invitations_send(
    study_name: str | None = typer.Option(None, "--study", help="One study (default: every study)."),
) -> None:
    """Email the invitations and reminders due today, each at most once (e.g. hourly from cron).

    What is due comes from the protocol's `invitations:` section and each participant's windows.
    Needs ALLIANCE_SITE_URL (the links' address) and the ALLIANCE_EMAIL_* settings; `alliance
    serve` runs this itself every 15 minutes. Exit 1 when a message failed (it is tried again on
    the next run, up to 3 times).
    """
    _storage()
    from alliance.web.capture.invitations import InvitationsNotConfigured, send_due_every_study

    try:
        summaries = send_due_every_study(study_name=study_name)
    except (InvitationsNotConfigured, LookupError) as exc:
        _fail(exc.args[0])
    if not summaries:
        console.print("no study in the database: nothing to send", highlight=False)
    for summary in summaries:
        if not summary.enabled:
            console.print(f"{summary.study}: the protocol sends no invitations", highlight=False)
            continue
        reasons = "".join(f"; {n} {reason}" for reason, n in sorted(summary.reasons.items()))
        console.print(f"{summary.study}: {summary.sent} sent, {summary.failed} failed, {summary.skipped} skipped"
                      f"{reasons}", highlight=False)
    if any(s.failed for s in summaries):
        raise typer.Exit(1)


# -- audit: `alliance audit verify` --------------------------------------------------------------

audit_app = typer.Typer(help="The audit trail and its hash chains (docs/storage.md).", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(
    study_name: str | None = typer.Option(None, "--study", help="One study (default: every chain)."),
) -> None:
    """Re-compute the audit trail's hash chains and name the first broken event of each; exit 1 if one is.

    An edited event no longer matches its hash; an inserted, deleted or reordered one breaks the
    link of the event after it (docs/storage.md, "Audit trail integrity").
    """
    storage = _storage()
    from alliance.web.audit.verify import verify_chain

    row = None
    if study_name:
        try:
            row = storage.stored_study(study_name)
        except storage.UnknownStudyError as exc:
            _fail(str(exc))
    result = verify_chain(row)
    for check in result.chains:
        name = check.study or ("(events without a study)" if check.study_id is None
                               else f"(deleted study #{check.study_id})")
        before = f", {check.before_chain} written before the chain" if check.before_chain else ""
        if check.intact:
            console.print(f"{name}: intact, {check.checked} event(s) checked{before}; head {check.head or '-'}",
                          highlight=False)
        else:
            console.print(f"{name}: BROKEN at audit event {check.broken.id}: {check.broken.problem} "
                          f"({check.checked} of {check.events} event(s) checked{before})", highlight=False)
    if not result.intact:
        raise typer.Exit(1)


# -- REDCap: `alliance redcap suggest`, `alliance redcap pull` (docs/data.md, "REDCap") --------------
redcap_app = typer.Typer(help="REDCap projects: propose a mapping from a data dictionary, pull a project "
                              "through its API (docs/data.md).", no_args_is_help=True)
app.add_typer(redcap_app, name="redcap")


def _store_and_print(study, study_name: str, source: str, *, actor: str, dry_run: bool,
                     allow_deletions: bool) -> None:
    """Store a study as `alliance import` does (deletions refused unless allowed), and print the change."""
    from django.db import Error as DatabaseError

    from alliance.study import StudyDataError
    from alliance.web import database_location

    _print_deviations(study)
    storage = _storage()
    try:
        summary = storage.import_study(study, study_name, actor=actor, allow_deletions=allow_deletions,
                                       dry_run=dry_run)
    except (StudyDataError, storage.StorageError) as exc:
        _fail(str(exc) if "nothing was written" in str(exc) else f"{exc}\nnothing was written")
    except DatabaseError as exc:
        _fail(f"the database refused the import, nothing was written: {exc}")
    if summary.unchanged:
        console.print(f"study {study_name!r} is unchanged ({database_location()})", highlight=False)
        return
    title = (f"Dry run: importing {source} as study {study_name!r} would make these changes" if dry_run
             else f"Imported {source} as study {study_name!r}")
    table = Table(title=title)
    for column in ("", "created", "changed", "deleted"):
        table.add_column(column, justify="left" if not column else "right")
    for kind in _STORAGE_KINDS:
        counts = [getattr(summary, what).get(kind, 0) for what in ("created", "changed", "deleted")]
        if any(counts):
            table.add_row(kind.replace("_", " "), *(f"{c:,}" for c in counts))
    console.print(table)
    if dry_run:
        console.print(f"dry run: nothing was written ({summary.audit_events:,} audit events would be); "
                      f"{database_location()}", highlight=False)
        if summary.deletes and not allow_deletions:
            console.print("the import deletes stored records: run it with --allow-deletions", highlight=False)
        return
    console.print(f"{summary.audit_events:,} audit events written; stored in {database_location()}", highlight=False)


@redcap_app.command("suggest")
def redcap_suggest(
    dictionary: Path = typer.Argument(..., dir_okay=False, help="The project's data dictionary CSV (UI or API headers)."),
    protocol_file: Path | None = typer.Option(None, "--protocol", exists=True, dir_okay=False,
                                              help="Protocol YAML (default: the Levin 2024 protocol)."),
    events_file: Path | None = typer.Option(None, "--events", exists=True, dir_okay=False,
                                            help="REDCap's events export (events.csv: names, arms, day_offset)."),
    arms_file: Path | None = typer.Option(None, "--arms", exists=True, dir_okay=False,
                                          help="REDCap's arms export (arms.csv: arm_num, name)."),
    form_events_file: Path | None = typer.Option(None, "--form-events", exists=True, dir_okay=False,
                                                 help="REDCap's instrument-event mappings (instrument_event_mapping.csv)."),
    repeating_file: Path | None = typer.Option(None, "--repeating", exists=True, dir_okay=False,
                                               help="REDCap's repeating instruments and events (repeating_instruments.csv)."),
    out: Path | None = typer.Option(None, "--out", dir_okay=False,
                                    help="Where to write the mapping YAML (default: print it)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
) -> None:
    """Propose a mapping file for a REDCap project from its data dictionary (and events, arms).

    Every entry that is not an exact name match has a comment saying why it was chosen and how
    sure; what fits nothing is listed, commented out, under # UNMATCHED. The file starts with a
    suggested: line that the import refuses: review the entries, then delete that line.
    """
    from alliance.protocol import default_protocol, load_protocol
    from alliance.study import StudyDataError
    from alliance.study.formats.redcap import files as redcap_files
    from alliance.study.formats.redcap.suggest import suggest_mapping

    if out is not None and out.exists() and not force:
        _fail(f"{out} exists: a suggestion would overwrite it (--force to replace it)")
    try:
        protocol = load_protocol(protocol_file) if protocol_file else default_protocol()
        suggestion = suggest_mapping(
            redcap_files.read_dictionary(dictionary), protocol,
            events=redcap_files.read_events(events_file) if events_file else None,
            arms=redcap_files.read_arms(arms_file) if arms_file else None,
            form_events=redcap_files.read_form_events(form_events_file) if form_events_file else None,
            repeating=redcap_files.read_repeating(repeating_file) if repeating_file else None,
            source=dictionary.name)
    except StudyDataError as exc:  # ProtocolError is a StudyDataError
        _fail(str(exc))
    mapped = len(suggestion.entries) - len(suggestion.guessed)
    entries = len(suggestion.entries)
    summary = (f"{entries} {'entry' if entries == 1 else 'entries'} ({mapped} by exact name, "
               f"{len(suggestion.guessed)} guessed), "
               f"{len(suggestion.unmatched)} unmatched: {suggestion.review} need review")
    if len(suggestion.entries) <= 1 and suggestion.unmatched:
        summary += " (nothing matched the protocol: everything is under # UNMATCHED)"
    summary += "; then delete the suggested: line"
    if out is None:
        console.out(suggestion.text, end="", highlight=False)
        errors.print(summary, highlight=False, markup=False, soft_wrap=True)
        return
    out.write_text(suggestion.text, encoding="utf-8")
    console.print(f"wrote {out}: {summary}", highlight=False, markup=False, soft_wrap=True)


@redcap_app.command("pull")
def redcap_pull(
    url: str = typer.Option(..., "--url", help="The project's API URL, https://<server>/api/ (REDCap's API page)."),
    token_file: Path = typer.Option(..., "--token-file", exists=True, dir_okay=False,
                                    help="A file holding the project's API token alone, readable by its owner "
                                         "only (chmod 600)."),
    study_name: str = typer.Option(..., "--study", help="The study's name in the database."),
    mapping_file: Path | None = typer.Option(None, "--mapping", exists=True, dir_okay=False,
                                             help="The mapping YAML (docs/data.md, REDCap)."),
    protocol_file: Path | None = typer.Option(None, "--protocol", exists=True, dir_okay=False,
                                              help="Protocol YAML (default: the Levin 2024 protocol)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the change the import would make; write nothing."),
    allow_deletions: bool = typer.Option(
        False, "--allow-deletions",
        help="Delete stored records REDCap no longer has (without it, such a pull is refused)."),
    batch_size: int = typer.Option(100, "--batch-size", min=1, help="Records per request (default 100)."),
    timeout: float = typer.Option(120.0, "--timeout", min=0.1,
                                  help="Seconds a request may wait for REDCap's answer (default 120)."),
) -> None:
    """Export a REDCap project through its API and import it, as `alliance import` imports files.

    The token is read from --token-file and sent to REDCap only; it is never printed or stored.
    The records come in batches of whole records (--batch-size); the import is one transaction,
    every change audited, and deletions are refused unless --allow-deletions is given.
    """
    import tempfile
    from dataclasses import replace

    from alliance.protocol import default_protocol, load_protocol
    from alliance.protocol.yaml_input import read_yaml_file
    from alliance.study import StudyDataError
    from alliance.study.formats.redcap import RedcapFiles, parse_mapping
    from alliance.study.formats.redcap.api import check_url, export_project
    from alliance.study.formats.redcap.directory import read_export
    from alliance.study.formats.redcap.importing import study_from_export
    from alliance.web.redcap_transport import read_token_file, urllib_transport

    try:  # everything local first: nothing is asked of REDCap with a bad URL, token file or mapping
        check_url(url)
        token = read_token_file(token_file)
        protocol = load_protocol(protocol_file) if protocol_file else default_protocol()
        mapping_name = str(mapping_file) if mapping_file else "mapping"
        mapping = parse_mapping(read_yaml_file(mapping_file) if mapping_file else None, protocol, mapping_name)
    except StudyDataError as exc:  # ProtocolError and RedcapApiError are StudyDataErrors
        _fail(str(exc))
    try:
        exported = export_project(url, token, urllib_transport, batch_size=batch_size, timeout=timeout)
        # The answers, in the files read_export reads; a temporary directory only this user can
        # open, deleted once read (the records identify people).
        with tempfile.TemporaryDirectory(prefix="alliance-redcap-") as directory:
            exported.write(directory)
            export = read_export(directory)
        # Messages name the API's answers, not the deleted files.
        export = replace(export, files=RedcapFiles(f"{exported.url} content=metadata",
                                                   f"{exported.url} content=record", mapping_name))
        study = study_from_export(export, mapping, protocol)
    except StudyDataError as exc:
        _fail(str(exc))
    project = exported.project
    console.print(f"pulled {len(exported.records):,} records ({len(export.records):,} rows) of REDCap project "
                  f"{project.get('project_id', '?')} {project.get('project_title', '')!r} from {exported.url} in "
                  f"{len(exported.requests)} requests ({exported.record_requests} of records)", highlight=False)
    _store_and_print(study, study_name, exported.url, actor="cli:redcap pull", dry_run=dry_run,
                     allow_deletions=allow_deletions)


if __name__ == "__main__":  # pragma: no cover
    app()
