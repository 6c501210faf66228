"""The DSMB report: the blinded version tells nothing of the arms, the unblinded one counts each arm as pandas does."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from alliance.protocol import default_protocol
from alliance.report.document import TableBlock
from alliance.report.dsmb import (
    MARKS,
    data_cutoff,
    dsmb_document,
    dsmb_facts,
    safety_results,
    write_dsmb_report,
)
from alliance.report.render import render_html, rendered_blocks
from alliance.simulate import simulate_trial
from alliance.study.adverse_events import normalize_adverse_events

GENERATED = "2026-01-01T00:00:00+00:00"


def _with_serious_events(study):
    """The synthetic trial's adverse events, three of them made serious: one hospitalisation, one ongoing, one death."""
    events = study.adverse_events.astype("string").copy()
    hospital, ongoing, death = events.index[[0, 7, 20]]
    events.loc[hospital, ["serious", "seriousness", "severity", "outcome"]] = ["yes", "hospitalisation", "3",
                                                                               "recovered"]
    events.loc[ongoing, ["serious", "seriousness", "severity", "outcome", "resolved_on"]] = [
        "yes", "important_medical_event", "3", "not_recovered", pd.NA]
    events.loc[death, ["serious", "seriousness", "severity", "outcome", "relatedness"]] = ["yes", "death", "5", "fatal",
                                                                                          "unlikely"]
    events.loc[events.index[3], "relatedness"] = pd.NA  # one event whose relatedness was not recorded
    study.adverse_events = normalize_adverse_events(events)
    study.validate()
    return study


@pytest.fixture(scope="module")
def study():
    return _with_serious_events(simulate_trial(default_protocol(), n=30, seed=4))


@pytest.fixture(scope="module")
def safety(study):
    return safety_results(study, created_utc=GENERATED)


def _text(document) -> str:
    """The rendered HTML as a reader sees it: tags (and the figures' base64 data) removed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", render_html(rendered_blocks(document))))


def _tables(document) -> dict[str, pd.DataFrame]:
    """The tables by caption, no-break spaces (which keep a count on one line in the PDF) read as spaces."""
    return {block.caption: block.frame.map(lambda cell: str(cell).replace("\u00a0", " "))
            .rename(columns=lambda column: str(column).replace("\u00a0", " "))
            for section in document.sections for block in section.blocks if isinstance(block, TableBlock)}


def test_the_blinded_report_names_no_arm_and_no_arm_size(study, safety):
    text = _text(dsmb_document(study, safety, blinded=True, generated_at=GENERATED))
    for arm in study.protocol.arms:
        assert arm.label not in text
        assert not re.search(rf"\b{arm.id}\b", text, flags=re.IGNORECASE)
    sizes = study.participants["arm"].value_counts()
    assert set(sizes) == {16, 14}  # the arms' sizes differ from each other and from the total
    for size in sizes:
        assert f"n = {size}" not in text
    assert "Total (n = 30)" in text and "Arm" not in text.split("Serious adverse events, by onset")[1][:60]


def test_the_blinded_report_is_the_same_whatever_the_arms(study, safety):
    """Re-assigning the arms at random changes nothing in the open report: nothing in it depends on them."""
    before = render_html(rendered_blocks(dsmb_document(study, safety, blinded=True, generated_at=GENERATED)))
    shuffled = simulate_trial(default_protocol(), n=30, seed=4)
    shuffled = _with_serious_events(shuffled)
    participants = shuffled.participants.copy()
    participants["arm"] = np.random.default_rng(5).permutation(participants["arm"].to_numpy())
    shuffled.participants = participants
    after = render_html(rendered_blocks(dsmb_document(shuffled, blinded=True, generated_at=GENERATED)))
    assert after == before
    unblinded = [render_html(rendered_blocks(dsmb_document(s, blinded=False, generated_at=GENERATED)))
                 for s in (study, shuffled)]
    assert unblinded[0] != unblinded[1]  # the closed report does change


def test_the_unblinded_counts_of_each_arm_are_those_of_the_adverse_events(study, safety):
    document = dsmb_document(study, safety, blinded=False, generated_at=GENERATED)
    found = _tables(document)
    grades = found["Adverse events by severity grade, by arm"].set_index("")
    related = found["Adverse events by relatedness to the study treatment, by arm"].set_index("")
    events = study.adverse_events
    arm_of = study.participants.set_index("participant_id")["arm"]
    labels = {a.id: a.label for a in study.protocol.arms}
    for arm, label in [*labels.items(), ("all", "Total")]:
        members = arm_of.index if arm == "all" else arm_of.index[arm_of == arm]
        mine = events[events["participant_id"].isin(members)]
        n = len(members)
        column = f"{label} (n = {n})"

        def cell(rows, n=n):
            return f"{rows['participant_id'].nunique()} ({100 * rows['participant_id'].nunique() / n:.0f}%)"

        assert grades.loc["Participants with \u2265 1 adverse event", column] == f"{cell(mine)}; {len(mine)} events"
        for grade in range(1, 6):
            rows = mine[mine["severity"] == grade]
            assert grades.loc[grades.index[grade], column] == f"{cell(rows)}; {len(rows)} events"
        serious = mine[mine["serious"].fillna(False)]
        assert grades.loc["Participants with \u2265 1 serious adverse event", column] == \
            f"{cell(serious)}; {len(serious)} events"
        for term in ("not_related", "unlikely", "possible", "probable", "definite"):
            rows = mine[mine["relatedness"] == term]
            plural = "" if len(rows) == 1 else "s"
            assert related.loc[term.replace("_", " "), column] == f"{cell(rows)}; {len(rows)} event{plural}"
        rows = mine[mine["relatedness"].isna()]
        assert related.loc["not recorded", column].startswith(cell(rows))
    text = _text(document)
    assert all(label in text for label in labels.values())


def test_the_listing_has_a_row_per_serious_event_and_the_arm_only_when_unblinded(study, safety):
    serious = study.adverse_events[study.adverse_events["serious"].fillna(False)].sort_values("onset")
    blinded = _tables(dsmb_document(study, safety, blinded=True, generated_at=GENERATED))
    unblinded = _tables(dsmb_document(study, safety, blinded=False, generated_at=GENERATED))
    listing = blinded["Serious adverse events, by onset"]
    assert len(listing) == len(serious) == 3 and "Arm" not in listing.columns
    assert sorted(listing["Participant"]) == sorted(serious["participant_id"])
    closed = unblinded["Serious adverse events, by onset, with the arm"]
    labels = {a.id: a.label for a in study.protocol.arms}
    arm_of = study.participants.set_index("participant_id")["arm"]
    assert closed["Arm"].tolist() == [labels[arm_of[p]] for p in closed["Participant"]]
    deaths = blinded["Fatal adverse events"]
    assert deaths["Grade"].tolist() == ["5"] and deaths["Outcome"].tolist() == ["fatal"]


def test_the_cutoff_is_the_latest_date_in_the_data(study, safety):
    dated = [study.participants["enrolled_on"], study.responses["administered_at"], study.dosing_sessions["date"],
             study.adverse_events["onset"], study.adverse_events["resolved_on"], study.vital_signs["measured_at"]]
    latest = max(column.dropna().astype(str).str[:10].max() for column in dated)  # ISO dates sort as text
    assert data_cutoff(study).isoformat() == latest
    facts = dsmb_facts(study, safety, generated_at=GENERATED)
    assert (facts.cutoff, facts.cutoff_source) == (latest, "latest date in the data")
    assert facts.serious_events == 3 and facts.deaths == 1 and facts.participants == 30
    text = _text(dsmb_document(study, safety, generated_at=GENERATED))
    assert f"Data cut-off {latest}" in text
    # an earlier cut-off is printed as given, and the records after it are counted in a note
    earlier = dsmb_document(study, safety, cutoff="2000-01-01", generated_at=GENERATED)
    notes = next(s for s in earlier.sections if s.id == "notes").blocks
    assert any(n.startswith("Records dated after the cut-off are included") for n in notes)
    assert "Data cut-off 2000-01-01" in earlier.subtitle


def test_every_heading_and_page_is_marked(study, safety, tmp_path):
    for blinded, mark in ((True, MARKS["blinded"]), (False, MARKS["unblinded"])):
        document = dsmb_document(study, safety, blinded=blinded, generated_at=GENERATED)
        assert all(mark in section.title for section in document.sections)
        assert document.provenance[0] == ("Version", mark)  # first in the PDF's page footer
        paths = write_dsmb_report(study, tmp_path, safety=safety, blinded=blinded, generated_at=GENERATED)
        assert paths["pdf"].name == f"dsmb-{'blinded' if blinded else 'unblinded'}.pdf"
        assert paths["html"].read_text(encoding="utf-8").count(mark) >= len(document.sections)
        if shutil.which("pdftotext"):
            pages = subprocess.run(["pdftotext", "-layout", str(paths["pdf"]), "-"], capture_output=True, text=True,
                                   check=True).stdout.split("\f")
            pages = [p for p in pages if p.strip()]
            assert len(pages) >= 2 and all(mark in " ".join(p.split()) for p in pages)


def test_the_notes_name_the_doubtful_data(study, safety):
    notes = next(s for s in dsmb_document(study, safety, blinded=True, generated_at=GENERATED).sections
                 if s.id == "notes").blocks
    assert any(n.startswith("Relatedness is not recorded for 1 of") for n in notes)
    assert any(n.startswith("1 serious adverse event is not resolved") for n in notes)
    tiny = simulate_trial(default_protocol(), n=6, seed=2)
    notes = next(s for s in dsmb_document(tiny, blinded=False, generated_at=GENERATED).sections
                 if s.id == "notes").blocks
    assert any(n.startswith("Only 6 participants") for n in notes)
    assert sum("participants: a difference between the arms" in n for n in notes) == 2  # each arm < 10


def test_from_the_results_alone(study, safety):
    document = dsmb_document(None, safety, blinded=False, generated_at=GENERATED)
    assert _tables(document)["Participants allocated"]["Total"].tolist() == ["30"]
    assert document.subtitle.startswith(MARKS["unblinded"] + ". Data cut-off 2026-01-01")
    text = _text(dsmb_document(None, safety, blinded=True, generated_at=GENERATED))
    assert "delayed" not in text.lower() and "n = 16" not in text
