"""The CONSORT-style flow: counts from the study's own records, and the drawing shows them."""

from __future__ import annotations

from alliance.report.flow import flow_counts, flow_diagram


def test_counts_follow_the_records(levin_study, levin_results):
    counts = flow_counts(levin_study, levin_results)
    participants = levin_study.participants
    assert counts.enrolled == len(participants)
    allocated = dict(counts.stages[0][1])
    assert allocated == participants["arm"].astype(str).value_counts().to_dict()
    stages = dict(counts.stages)
    arm_of = participants.set_index("participant_id")["arm"].astype(str)
    answered = levin_study.responses.dropna(subset=["value"])
    for session, timepoint in ((1, "session1"), (2, "session2")):
        # this study has no dosing_sessions.csv: a dosing day with an answer counts
        assert levin_study.dosing_sessions is None or levin_study.dosing_sessions.empty
        dosed = answered.loc[answered["timepoint"] == timepoint, "participant_id"].drop_duplicates().map(arm_of)
        assert stages[f"Dosing session {session}"] == {arm: int((dosed == arm).sum()) for arm in allocated}
    # the analysed stage adds up to the n of the primary confirmatory correlation
    primary = next(e for e in levin_results.correlations if e.get("role") == "confirmatory" and "tipping_point" in e)
    assert sum(counts.analysed.values()) == primary["n"]


def test_dosing_records_count_when_the_study_has_them():
    from alliance.protocol import default_protocol
    from alliance.simulate import simulate_trial

    study = simulate_trial(default_protocol(), n=30, seed=3)
    assert study.dosing_sessions is not None and len(study.dosing_sessions)
    counts = flow_counts(study)
    recorded = study.dosing_sessions
    for session in (1, 2):
        ids = set(recorded.loc[recorded["session"].astype(int) == session, "participant_id"].astype(str))
        assert sum(dict(counts.stages)[f"Dosing session {session}"].values()) == len(ids)
    assert counts.analysed == {}  # no results: no analysed stage


def test_the_diagram_shows_every_count(levin_study, levin_results):
    counts = flow_counts(levin_study, levin_results)
    texts = " ".join(t.get_text() for t in flow_diagram(counts).axes[0].texts)
    assert f"Enrolled: {counts.enrolled}" in texts
    for stage, per_arm in counts.stages[1:]:
        for n in per_arm.values():
            assert f"{stage}: {n}" in texts
    for n in counts.analysed.values():
        assert f"Analysed (primary): {n}" in texts
