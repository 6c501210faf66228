"""Figures are pure and deterministic; write_report writes every file with every figure in it."""

from __future__ import annotations

import base64
import json
import re

from matplotlib.figure import Figure

from alliance.analysis import run_analysis
from alliance.report import build_document, figures, write_report
from alliance.report.labels import Labels
from alliance.report.render import figure_png
from tests.analysis.conftest import FIXED_TIME, make_study, protocol_variant


def test_figure_functions_return_figures(levin_study, levin_results):
    labels = Labels(levin_study.protocol)
    drawn = [
        figures.alliance_trajectories(levin_study, levin_results),
        figures.outcome_trajectories(levin_study, levin_results),
        figures.alliance_outcome_scatter(levin_study, levin_results),
        figures.correlation_heatmap(levin_results, labels),
        figures.mediation_diagram(levin_results.mediation[0], labels),
        figures.participant_flow(levin_study),
    ]
    for figure in drawn:
        assert isinstance(figure, Figure)
        assert figure.axes
    # alliance: one panel per WAI-SR scale
    assert [a.get_title() for a in drawn[0].axes if a.get_visible()] == [
        "WAI-SR total", "WAI-SR goal", "WAI-SR task", "WAI-SR bond"]
    # scatter: 2 alliance timepoints (first, last) × 5 follow-ups, r annotated from the results
    entry = levin_results.find("correlations", x="wai_sr.total@prep", y="grid_hamd17.total@week4")[0]
    texts = [t.get_text() for a in drawn[2].axes for t in a.texts]
    assert len([a for a in drawn[2].axes if a.get_visible()]) == 10
    assert any(text.startswith(f"r = {figures.apa.proportion(entry['r'])}") for text in texts)


def test_figures_are_deterministic(levin_study, levin_results):
    first = figure_png(figures.alliance_trajectories(levin_study, levin_results))
    second = figure_png(figures.alliance_trajectories(levin_study, levin_results))
    assert first == second
    assert first.startswith(b"\x89PNG")


def test_mediation_diagram_shows_the_paths(levin_results):
    entry = levin_results.mediation[0]
    texts = " ".join(t.get_text() for t in figures.mediation_diagram(entry).axes[0].texts)
    for key in ("a", "b"):
        assert f"{key} = {figures.apa.number(entry[key], 3)}" in texts
    assert "c\u2032 = " in texts and "indirect ab = " in texts and f"n = {entry['n']}" in texts


def test_write_report(tmp_path, levin_study, levin_results):
    paths = write_report(levin_study, levin_results, tmp_path / "out")
    assert {"results", "html", "pdf"} <= set(paths)
    document = build_document(levin_study, levin_results)
    figure_ids = [block.id for block in document.figures]
    assert {"consort", "participant_flow", "alliance_trajectories", "outcome_trajectories", "alliance_outcome_scatter",
            "correlation_heatmap", "mediation_1", "mediation_2", "mediation_3"} == set(figure_ids)

    html = paths["html"].read_text(encoding="utf-8")
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == len(figure_ids)
    for figure_id in figure_ids:
        assert f'id="figure-{figure_id}"' in html
        assert paths[f"figure:{figure_id}"].read_bytes() in [base64.b64decode(i) for i in images]
    assert "<link" not in html and "<script" not in html  # self-contained
    assert levin_results.provenance["protocol_sha256"][:16] in html
    assert "r [95% CI]" in html

    pdf = paths["pdf"].read_bytes()
    assert pdf.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf))
    assert pages >= 5

    saved = json.loads(paths["results"].read_text(encoding="utf-8"))
    assert saved == levin_results.to_dict()


def test_report_of_a_study_without_ebi_and_one_arm(tmp_path):
    protocol = protocol_variant(without_instrument="ebi", single_arm=True)
    study = make_study(protocol, n=8, seed=9, last_timepoint={"P01": "session1"})
    results = run_analysis(study, created_utc=FIXED_TIME)
    paths = write_report(study, results, tmp_path)
    html = paths["html"].read_text(encoding="utf-8")
    assert "ebi.score@peak" in html  # named in the notes as dropped
    assert paths["pdf"].read_bytes().startswith(b"%PDF")


def test_write_report_is_deterministic(tmp_path, levin_study, levin_results):
    first = write_report(levin_study, levin_results, tmp_path / "first", figures_png=False)
    second = write_report(levin_study, levin_results, tmp_path / "second", figures_png=False)
    for key in ("results", "html", "pdf"):
        assert first[key].read_bytes() == second[key].read_bytes(), key


def test_notes_are_sentences_and_a_skipped_analysis_is_told_once(levin_study, levin_results):
    document = build_document(levin_study, levin_results)
    (notes,) = [s for s in document.sections if s.id == "notes"]
    texts = [b for b in notes.blocks if isinstance(b, str)]
    assert texts and [t for t in texts if not ((t[0].isupper() or t[0].isdigit()) and t.endswith("."))] == []
    expectancy = [t for t in texts if "alliance_outcome_expectancy" in t]
    assert len(expectancy) == 1 and "was not run: covariates = expectancy: expectancy was not measured" in expectancy[0]
    assert not any("[" in t and "'" in t for t in texts)  # no raw Python lists
