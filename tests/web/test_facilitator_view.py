"""The per-facilitator view (issue 14, item 5): monitor:facilitators and monitor:facilitator.

The study is ``levin2024`` (tests/web/webapp.py) re-imported with WAI-SR totals set by hand, so
that every median and quartile below is worked out here. Facilitators (tests/web/conftest.py,
``make_study``): P002 F2;F3, P003 F3;F1, P004 F1;F2, P006 F3;F1, P001 and P005 none. So F1 has
P003, P004 and P006; F2 has P002 and P004.

WAI-SR total (12 items 1-5, a sum: 12-60); P004 has no WAI-SR after session 1:

=============  ====  ====  ====  ====  ====  ====
timepoint      P001  P002  P003  P004  P005  P006
=============  ====  ====  ====  ====  ====  ====
prep             30    42    36    48    24    54
post_session1    40    20    50     –    30    60
week1            12    25    33    44    59    60
=============  ====  ====  ====  ====  ====  ====

Quartiles by linear interpolation (R's type 7): the p-quantile of x₁ ≤ … ≤ xₙ is
x_⌊h⌋ + (h − ⌊h⌋)(x_⌊h⌋₊₁ − x_⌊h⌋), h = (n − 1)p + 1.

- prep, the study: 24 30 36 42 48 54; median (36 + 42) / 2 = 39; Q1: h = 2.25, 30 + 0.25 × 6 = 31.5;
  Q3: h = 4.75, 42 + 0.75 × 6 = 46.5. F1: 36 48 54, median 48 (above 46.5); F2: 42 48, median 45.
- post_session1, the study: 20 30 40 50 60; median 40; Q1: h = 2, 30; Q3: h = 4, 50.
  F1: 50 60 (P004 has none), median 55 (above 50); F2: 20 (below 30).
- week1, the study: 12 25 33 44 59 60; median (33 + 44) / 2 = 38.5; Q1: h = 2.25, 25 + 0.25 × 8 = 27;
  Q3: h = 4.75, 44 + 0.75 × 15 = 55.25. F1: 33 44 60, median 44.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from alliance.analysis import Results
from alliance.analysis.facilitators import facilitator_effects
from alliance.study import Study, sort_responses
from alliance.web.capture import models as m
from alliance.web.capture.storage import import_study
from alliance.web.monitor.charts import Spread
from alliance.web.monitor.facilitators import spread
from alliance.web.monitor.models import AnalysisRun

from .conftest import make_study
from .test_no_writes_on_get import Writes
from .webapp import STUDY

pytestmark = pytest.mark.django_db
NB = "\u00a0=\u00a0"   # "n = 6" with non-breaking spaces, as the pages write it

TOTALS = {
    "prep": {"P001": 30, "P002": 42, "P003": 36, "P004": 48, "P005": 24, "P006": 54},
    "post_session1": {"P001": 40, "P002": 20, "P003": 50, "P005": 30, "P006": 60},
    "week1": {"P001": 12, "P002": 25, "P003": 33, "P004": 44, "P005": 59, "P006": 60},
}


def _items(total: int) -> list[float]:
    """Twelve answers 1-5 that sum to ``total``: each item 1, then raised by up to 4 from the first."""
    values, left = [1.0] * 12, total - 12
    for k in range(12):
        step = min(4, left)
        values[k] += step
        left -= step
    assert sum(values) == total
    return values


def study_with_totals(n_participants: int = 6, totals: dict | None = None) -> Study:
    """:func:`make_study` with the WAI-SR answers replaced so that each total is ``totals[timepoint][pid]``
    (a participant missing from a timepoint has no WAI-SR there)."""
    plain = make_study(n_participants)
    totals = totals or TOTALS
    responses = plain.responses
    wai = responses["instrument"] == "wai_sr"
    kept = responses[~wai | responses.apply(lambda r: r["participant_id"] in totals.get(r["timepoint"], {}), axis=1)]
    kept = kept.copy()
    for (pid, timepoint), block in kept[kept["instrument"] == "wai_sr"].groupby(["participant_id", "timepoint"]):
        order = block["item"].map(lambda item: int(item.rsplit("_", 1)[1]))
        answers = _items(totals[timepoint][pid])
        kept.loc[block.index, "value"] = [answers[k - 1] for k in order]
    pids = plain.participants["participant_id"].tolist()
    study = Study(plain.protocol, plain.participants, sort_responses(kept, plain.protocol, pids), plain.dosing_sessions)
    study.validate()
    return study


@pytest.fixture
def small_study(web_study, accounts):
    import_study(study_with_totals(), STUDY, actor="test:setup", allow_deletions=True)
    return web_study


def _client(accounts, role):
    client = Client()
    if role is not None:
        client.force_login(accounts[role])
    return client


def _list_url() -> str:
    return reverse("monitor:facilitators", kwargs={"study": STUDY})


def _page_url(facilitator: str) -> str:
    return reverse("monitor:facilitator", kwargs={"study": STUDY, "facilitator": facilitator})


# -- the numbers -----------------------------------------------------------------------------------

def test_spread_is_the_median_and_type_7_quartiles():
    assert spread([24, 30, 36, 42, 48, 54]) == Spread(median=39.0, q1=31.5, q3=46.5, n=6)
    assert spread([60, 20, 50, 40, 30, float("nan")]) == Spread(median=40.0, q1=30.0, q3=50.0, n=5)
    assert spread([7]) == Spread(median=7.0, q1=7.0, q3=7.0, n=1)
    assert spread([]) is None


def test_the_list_shows_each_facilitators_median_against_the_study(small_study, accounts):
    response = _client(accounts, "investigator").get(_list_url())
    assert response.status_code == 200
    context = response.context
    assert [t.id for t in context["timepoints"]] == ["prep", "post_session1", "week1"]
    assert [c["spread"] for c in context["study_cells"]] == [
        Spread(39.0, 31.5, 46.5, 6), Spread(40.0, 30.0, 50.0, 5), Spread(38.5, 27.0, 55.25, 6)]
    assert context["n_study"] == 6
    rows = {row["facilitator"].facilitator_id: row for row in context["rows"]}
    assert sorted(rows) == ["F1", "F2", "F3"]
    assert [rows[f]["n_participants"] for f in ("F1", "F2", "F3")] == [3, 2, 3]
    assert [(c["median"], c["n"], c["position"]) for c in rows["F1"]["cells"]] == [
        ("48", 3, "above the upper quartile"), ("55", 2, "above the upper quartile"), ("44", 3, "within the quartiles")]
    assert [(c["median"], c["n"], c["position"]) for c in rows["F2"]["cells"]] == [
        ("45", 2, "within the quartiles"), ("20", 1, "below the lower quartile"), ("34.5", 2, "within the quartiles")]
    html = response.content.decode()
    assert f"39 [31.5–46.5], n{NB}6" in html and f"38.5 [27–55.25], n{NB}6" in html
    assert f'href="{_page_url("F2")}"' in html
    assert "WAI-SR total" in html


def test_the_facilitator_page_shows_their_participants_against_the_study(small_study, accounts):
    response = _client(accounts, "admin").get(_page_url("F1"))
    assert response.status_code == 200
    context = response.context
    participants = context["participants"]
    assert [p["participant_id"] for p in participants] == ["P003", "P004", "P006"]
    assert [p["cells"] for p in participants] == [["36", "50", "33"], ["48", "–", "44"], ["54", "60", "60"]]
    assert [p["symbol"] for p in participants] == ["●", "■", "▲"]
    assert [c["text"] for c in context["own_cells"]] == [f"48 (n{NB}3)", f"55 (n{NB}2)", f"44 (n{NB}3)"]
    assert [c["text"] for c in context["study_cells"]] == [
        f"39 [31.5–46.5], n{NB}6", f"40 [30–50], n{NB}5", f"38.5 [27–55.25], n{NB}6"]
    html = response.content.decode()
    for pid in ("P003", "P004", "P006"):   # each links to their dashboard
        assert f'href="{reverse("monitor:participant", kwargs={"study": STUDY, "participant": pid})}"' in html
    assert "P002" not in html   # F2's and F3's other participants are in the distribution, not named
    svg = str(context["chart"].svg)
    # one box per alliance timepoint (with its numbers), dosing sessions as bands
    assert svg.count("study: median and quartiles, Final preparation session: median 39, quartiles 31.5 to 46.5, "
                     "n = 6") == 2   # the box and its median line
    assert "dosing session: Dosing session 1" in svg
    # a marker shape per participant: P003 a circle, P004 a square, P006 a triangle
    assert '<title>P003, Final preparation session: 36</title></circle>' in svg
    assert '<title>P004, Final preparation session: 48</title></rect>' in svg
    assert '<title>P006, Final preparation session: 54</title></polygon>' in svg
    assert "P004, Integration after session 1" not in svg


def test_an_unknown_facilitator_is_404(small_study, accounts):
    assert _client(accounts, "admin").get(_page_url("F9")).status_code == 404


# -- who sees what ---------------------------------------------------------------------------------

def test_a_facilitator_sees_only_their_own(small_study, accounts):
    client = _client(accounts, "facilitator")          # F1
    listing = client.get(_list_url())
    assert [row["facilitator"].facilitator_id for row in listing.context["rows"]] == ["F1"]
    assert [c["spread"].median for c in listing.context["study_cells"]] == [39.0, 40.0, 38.5]   # the aggregate
    assert _page_url("F2") not in listing.content.decode()
    assert client.get(_page_url("F1")).status_code == 200
    assert client.get(_page_url("F2")).status_code == 404
    assert client.get(_page_url("F3")).status_code == 404
    other = _client(accounts, "facilitator2")          # F2
    assert other.get(_page_url("F1")).status_code == 404
    assert other.get(_page_url("F2")).context["participants"][0]["participant_id"] == "P002"


@pytest.mark.parametrize("role", ["admin", "investigator", "monitor"])
def test_whole_study_roles_see_every_facilitator(small_study, accounts, role):
    client = _client(accounts, role)
    assert len(client.get(_list_url()).context["rows"]) == 3
    for facilitator in ("F1", "F2", "F3"):
        assert client.get(_page_url(facilitator)).status_code == 200


def test_outsiders_and_anonymous_users_get_nothing(small_study, accounts):
    assert _client(accounts, "outsider").get(_page_url("F1")).status_code == 403
    response = _client(accounts, None).get(_page_url("F1"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("accounts:login"))


def test_the_study_dashboard_links_to_the_facilitators(small_study, accounts):
    html = _client(accounts, "monitor").get(reverse("monitor:study", kwargs={"study": STUDY})).content.decode()
    assert f'href="{_list_url()}"' in html


@pytest.mark.parametrize("role", ["admin", "investigator", "facilitator", "facilitator2", "monitor"])
def test_get_never_writes(small_study, accounts, role):
    client = _client(accounts, role)
    own = "F2" if role == "facilitator2" else "F1"
    writes = Writes()
    with connection.execute_wrapper(writes):
        assert client.get(_list_url()).status_code == 200
        assert client.get(_page_url(own)).status_code == 200
    assert writes.statements == []


# -- the facilitator-effects analysis --------------------------------------------------------------

def _run(study, tmp_path, settings, content: str | None):
    settings.DATA_DIR = tmp_path
    folder = tmp_path / "run-1"
    folder.mkdir()
    if content is not None:
        (folder / "results.json").write_text(content, encoding="utf-8")
    return AnalysisRun.objects.create(study=study, status=AnalysisRun.Status.DONE, output_dir=str(folder),
                                      n_participants=6, seconds=1.0, finished_at=timezone.now())


NOTE = ("fewer than 30 participants or 10 facilitators: facilitator-level estimates rest on very little and their "
        "intervals are wide; read them as a description, not a test")
ENTRY = {
    "analysis": "facilitator_effects", "family": "facilitator_effects", "x": "wai_sr.total@week1",
    "y": "grid_hamd17.total@week4", "n": 4, "n_facilitators": 3,
    "participants_per_facilitator": {"min": 2, "median": 3.0, "max": 3}, "membership": "multiple",
    "icc_x": {"n": 4, "var_facilitator": 3.0, "var_residual": 22.0, "icc": 0.12, "singular": False, "notes": []},
    "icc_y": {"n": 4, "var_facilitator": 3.0, "var_residual": 7.0, "icc": 0.3, "singular": False, "notes": []},
    "association": {"singular": False, "x": {"term": "x", "estimate": -0.2, "se": 0.1, "df": 2.0, "t": -2.0,
                                             "p": 0.18}},
    "effects": [{"facilitator": "F1", "condval": -1.5, "condsd": 0.8, "n": 3},
                {"facilitator": "F2", "condval": 0.25, "condsd": 0.9, "n": 2}],
    "notes": [NOTE], "p": 0.18, "p_adjusted": 0.18,
}


def test_without_an_analysis_the_page_says_how_to_run_it(small_study, accounts):
    html = _client(accounts, "investigator").get(_page_url("F1")).content.decode()
    assert "No analysis has been run from the web app yet" in html
    assert "Run the analysis" in html and f'href="{reverse("monitor:study", kwargs={"study": STUDY})}"' in html


def test_the_facilitators_row_of_the_facilitator_effects(small_study, accounts, tmp_path, settings):
    skipped = {"analysis": "facilitator_effects", "family": "facilitator_effects", "x": "wai_sr.total@week1",
               "y": "grid_hamd17.total@month12", "skipped": "1 facilitator(s) among the participants with both "
                                                         "scores; at least 2 needed"}
    results = Results(facilitator_effects=(ENTRY, skipped), provenance={"package": "alliance"})
    _run(small_study, tmp_path, settings, json.dumps(results.to_dict()))
    response = _client(accounts, "monitor").get(_page_url("F1"))
    effects = response.context["effects"]
    assert effects["state"] == "done"
    row, not_computed = effects["rows"]
    # −1.5 ± 1.96 × 0.8 = −3.068 to 0.068
    assert (row["effect"], row["sd"], row["interval"], row["n"]) == ("−1.50", "0.80", "[−3.07,\u00a00.07]", 3)
    assert (row["icc_alliance"], row["icc_outcome"], row["n_total"], row["n_facilitators"]) == (".12", ".30", 4, 3)
    assert row["alliance"].startswith("WAI-SR total") and row["outcome"].startswith("GRID-HAMD-17")
    assert not_computed["skipped"].startswith("1 facilitator(s)")
    assert effects["notes"] == ["Fewer than 30 participants or 10 facilitators: facilitator-level estimates rest on "
                                "very little and their intervals are wide; read them as a description, not a test."]
    html = response.content.decode()
    assert "−1.50" in html and "[−3.07,\u00a00.07]" in html and effects["notes"][0] in html
    assert "Not computed: 1 facilitator(s)" in html
    # F3 is not in the model's effects
    f3 = _client(accounts, "admin").get(_page_url("F3")).context["effects"]["rows"][0]
    assert f3["found"] is False
    assert "This facilitator is not in the model" in _client(accounts, "admin").get(_page_url("F3")).content.decode()


def test_a_facilitator_does_not_see_the_analysis(small_study, accounts, tmp_path, settings):
    _run(small_study, tmp_path, settings, json.dumps(Results(facilitator_effects=(ENTRY,),
                                                             provenance={}).to_dict()))
    response = _client(accounts, "facilitator").get(_page_url("F1"))
    assert "effects" not in response.context and "−1.50" not in response.content.decode()
    assert "which investigators read" in response.content.decode()


def test_the_real_analysis_output_is_shown(small_study, accounts, tmp_path, settings):
    """The page reads what :func:`alliance.analysis.facilitators.facilitator_effects` writes."""
    rng = np.random.default_rng(3)
    ids = [f"P{k:03d}" for k in range(1, 13)]
    lists = pd.Series([[f"F{k % 3 + 1}", f"F{(k + 1) % 3 + 1}"] for k in range(12)], index=ids)
    found = facilitator_effects(pd.Series(rng.normal(40, 8, 12), index=ids), pd.Series(rng.normal(10, 4, 12),
                                                                                        index=ids), lists)
    entry = {"analysis": "facilitator_effects", "family": "facilitator_effects", "x": "wai_sr.total@week1",
             "y": "grid_hamd17.total@week4", **found, "p": found["association"]["x"]["p"], "p_adjusted": None}
    _run(small_study, tmp_path, settings, json.dumps(Results(facilitator_effects=(entry,), provenance={}).to_dict()))
    row = _client(accounts, "investigator").get(_page_url("F2")).context["effects"]["rows"][0]
    mine = next(e for e in found["effects"] if e["facilitator"] == "F2")
    assert row["n"] == mine["n"] == 8
    assert row["effect"] == f"{mine['condval']:.2f}".replace("-", "−")
    assert row["icc_alliance"] == f"{found['icc_x']['icc']:.2f}".lstrip("0").replace("-", "−")


def test_a_run_without_facilitator_effects_or_unreadable(small_study, accounts, tmp_path, settings):
    run = _run(small_study, tmp_path, settings, json.dumps(Results().to_dict()))
    client = _client(accounts, "admin")
    page = client.get(_page_url("F1"))
    assert page.context["effects"]["state"] == "absent"
    assert "has no facilitator-effects results" in page.content.decode()
    (tmp_path / "run-1" / "results.json").write_text("{not json", encoding="utf-8")
    page = client.get(_page_url("F1"))
    assert page.context["effects"]["state"] == "problem"
    assert "cannot be read" in page.content.decode()
    assert run.pk


# -- queries ---------------------------------------------------------------------------------------

def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_number_of_queries_does_not_grow_with_participants(web_study, accounts, tmp_path, settings):
    _run(web_study, tmp_path, settings, json.dumps(Results(facilitator_effects=(ENTRY,), provenance={}).to_dict()))
    counts = []
    for n in (6, 18):
        pids = [f"P{k:03d}" for k in range(1, n + 1)]
        totals = {t: {pid: 12 + (k * 7 + len(t)) % 49 for k, pid in enumerate(pids)}
                  for t in ("prep", "post_session1", "week1")}
        import_study(study_with_totals(n, totals), STUDY, actor="test:setup", allow_deletions=True)
        assert m.Participant.objects.filter(study=web_study).count() == n
        client = _client(accounts, "investigator")
        counts.append((_queries(client, _list_url()), _queries(client, _page_url("F1"))))
    assert counts[0] == counts[1], counts
    assert max(counts[0]) <= 12, counts
