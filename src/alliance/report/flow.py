"""The CONSORT-style participant-flow diagram: enrolment, allocation, dosing, follow-up, analysis, by arm.

:func:`flow_counts` counts, from the study's own records, the participants at each stage of the
CONSORT 2010 flow diagram (Schulz, Altman & Moher 2010) that a psilocybin trial has: enrolled,
allocated to each arm, given each dosing session, assessed at the primary outcome timepoint and at
the last follow-up, and analysed for the primary association; :func:`flow_diagram` draws them.

A participant counts as dosed at session *k* when ``dosing_sessions.csv`` records the session, or,
for a study without that file, when anything was answered at the protocol's dosing timepoint of
session *k*. "Assessed" means at least one answer at the timepoint (as in
:func:`alliance.analysis.completeness`); "analysed" means both measures of the primary
confirmatory correlation present, after the deviations the analysis excluded.

References
----------
Schulz KF, Altman DG, Moher D, for the CONSORT Group (2010). CONSORT 2010 Statement: updated
guidelines for reporting parallel group randomised trials. BMJ 340:c332.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from .figures import _figure, _styled
from .labels import Labels

__all__ = ["FlowCounts", "flow_counts", "flow_diagram"]

PARTICIPANT = "participant_id"


@dataclass(frozen=True)
class FlowCounts:
    """Participants at each stage, by arm.

    Attributes
    ----------
    enrolled : int
        All participants.
    arms : tuple of (str, str)
        Arm id and label, in protocol order.
    stages : tuple of (str, dict)
        Stage label and participants per arm id, top to bottom (allocation first).
    analysed : dict
        Arm id → participants in the primary association.
    analysed_what : str
        The primary association in words (e.g. "alliance at prep and GRID-HAMD at week 4").
    """

    enrolled: int
    arms: tuple[tuple[str, str], ...]
    stages: tuple[tuple[str, dict[str, int]], ...]
    analysed: dict[str, int] = field(default_factory=dict)
    analysed_what: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"enrolled": self.enrolled, "arms": [list(a) for a in self.arms],
                "stages": [{"stage": s, "participants": dict(c)} for s, c in self.stages],
                "analysed": dict(self.analysed), "analysed_what": self.analysed_what}


def _primary(results) -> dict[str, Any] | None:
    entries = [e for e in getattr(results, "correlations", ()) if e.get("role") == "confirmatory" and "r" in e]
    return next((e for e in entries if "tipping_point" in e), entries[0] if entries else None)


def flow_counts(study, results=None) -> FlowCounts:
    """Count the participants at each stage of the flow, by arm.

    Parameters
    ----------
    study : alliance.study.Study
    results : alliance.analysis.Results, optional
        For the analysed stage (the primary confirmatory correlation) and the excluded deviations.

    Returns
    -------
    FlowCounts
    """
    from alliance.analysis import analysed_study
    from alliance.protocol import Measure

    protocol = study.protocol
    participants = study.participants.astype({PARTICIPANT: str})
    arm_of = participants.set_index(PARTICIPANT)["arm"].astype(str)
    arms = [(a.id, a.label or a.id) for a in protocol.arms if (arm_of == a.id).any()]
    arms += [(a, a) for a in sorted(set(arm_of) - {a for a, _ in arms})]

    def per_arm(ids) -> dict[str, int]:
        ids = set(ids)
        return {arm: int(sum(1 for p in arm_of.index[arm_of == arm] if p in ids)) for arm, _ in arms}

    responses = study.responses
    answered = responses.loc[responses["value"].notna(), ["timepoint", PARTICIPANT]].drop_duplicates().astype(str)
    assessed = {t: set(g) for t, g in answered.groupby("timepoint")[PARTICIPANT]}
    stages: list[tuple[str, dict[str, int]]] = [("Allocated", per_arm(arm_of.index))]
    dosing = getattr(study, "dosing_sessions", None)
    for timepoint in protocol.timepoints:
        if timepoint.dose is None:
            continue
        session = timepoint.dose.session
        if dosing is not None and len(dosing):
            ids = dosing.loc[dosing["session"].astype(int) == int(session), PARTICIPANT].astype(str)
        else:
            ids = assessed.get(timepoint.id, set())
        stages.append((f"Dosing session {session}", per_arm(ids)))

    primary = _primary(results) if results is not None else None
    labels = Labels(protocol)
    follow_ups = [t.id for t in protocol.timepoints if t.kind == "follow_up"]
    shown = []
    if primary is not None:
        shown.append(Measure.parse(primary["y"]).timepoint)
    if follow_ups:
        shown.append(follow_ups[-1])
    for timepoint_id in dict.fromkeys(t for t in shown if t in follow_ups):
        stages.append((f"Assessed at {labels.timepoint(timepoint_id)}", per_arm(assessed.get(timepoint_id, set()))))

    analysed: dict[str, int] = {}
    what = ""
    if primary is not None:
        wide = analysed_study(study, getattr(results, "deviations", ())).measures(wide=True)
        if PARTICIPANT in wide.columns:
            wide = wide.set_index(PARTICIPANT)
        wide.index = wide.index.astype(str)
        both = wide[[primary["x"], primary["y"]]].notna().all(axis=1) if {primary["x"], primary["y"]} <= set(
            wide.columns) else wide.index.to_series().map(lambda _: False)
        analysed = per_arm(wide.index[both])
        what = f"{labels.measure(primary['x'])} and {labels.measure(primary['y'])}"
    return FlowCounts(len(arm_of), tuple(arms), tuple(stages), analysed, what)


@_styled
def flow_diagram(counts: FlowCounts) -> Figure:
    """Draw the flow as boxes and arrows: one column per arm under the enrolment box.

    Each box after allocation gives the participants at that stage and, in brackets, those
    allocated to the arm who are not (not dosed, not assessed). The last row is the primary analysis.

    Returns
    -------
    matplotlib.figure.Figure
    """
    arms = counts.arms
    rows = len(counts.stages) + 1 + (1 if counts.analysed else 0)
    figure = _figure(7.0, 0.62 * rows + 0.7)
    axes = figure.subplots()
    axes.set_axis_off()
    width = 1.0 / max(len(arms), 1)
    height = 1.0 / rows

    def box(x_center, y_center, box_width, text, bold=False):
        axes.add_patch(FancyBboxPatch((x_center - box_width / 2, y_center - height * 0.34), box_width, height * 0.68,
                                      boxstyle="round,pad=0.004,rounding_size=0.01", linewidth=0.8,
                                      edgecolor="#33415c", facecolor="#eef2f7", transform=axes.transAxes))
        axes.text(x_center, y_center, text, ha="center", va="center", fontsize=7.6, transform=axes.transAxes,
                  fontweight="bold" if bold else "normal", wrap=True)

    def arrow(x, y_from, y_to):
        axes.annotate("", xy=(x, y_to + height * 0.34), xytext=(x, y_from - height * 0.34),
                      xycoords="axes fraction", arrowprops={"arrowstyle": "-|>", "lw": 0.8, "color": "#33415c"})

    top = 1 - height / 2
    box(0.5, top, 0.42, f"Enrolled: {counts.enrolled}", bold=True)
    previous: dict[str, int] | None = None
    allocated = counts.stages[0][1] if counts.stages else {}
    for row, (stage, per_arm) in enumerate(counts.stages, start=1):
        y = 1 - height * (row + 0.5)
        for index, (arm, label) in enumerate(arms):
            x = width * (index + 0.5)
            n = per_arm.get(arm, 0)
            if previous is None:
                text = f"{label}\nallocated: {n}"
            else:
                missing = allocated.get(arm, 0) - n
                verb = "not dosed" if stage.startswith("Dosing") else "not assessed"
                text = f"{stage}: {n}" + (f"\n({verb}: {missing})" if missing > 0 else "")
            box(x, y, width * 0.86, text, bold=previous is None)
            arrow(x, y + height if row > 1 else top, y) if row > 1 else axes.annotate(
                "", xy=(x, y + height * 0.34), xytext=(0.5, top - height * 0.34), xycoords="axes fraction",
                arrowprops={"arrowstyle": "-|>", "lw": 0.8, "color": "#33415c"})
        previous = per_arm
    if counts.analysed:
        y = 1 - height * (rows - 0.5)
        for index, (arm, _) in enumerate(arms):
            x = width * (index + 0.5)
            n = counts.analysed.get(arm, 0)
            missing = allocated.get(arm, 0) - n
            box(x, y, width * 0.86, f"Analysed (primary): {n}" + (f"\n(not analysed: {missing})" if missing > 0 else ""),
                bold=True)
            arrow(x, y + height, y)
        figure.supxlabel(f"Primary association: {counts.analysed_what} (both present).", fontsize=7,
                         color="#3d4451")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    return figure
