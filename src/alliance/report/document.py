"""The content of the report, independent of its format: sections of headings, text, tables, figures.

:func:`build_document` decides *what* the report says; :mod:`.html` and :mod:`.pdf` only decide how
it looks. So the HTML and the PDF cannot drift apart: they print the same blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from alliance.analysis import analysed_study, completeness, descriptives
from alliance.protocol import Measure

from . import figures, narrative, tables
from .flow import flow_counts, flow_diagram
from .labels import Labels

__all__ = ["Document", "FigureBlock", "Section", "TableBlock", "build_document"]


@dataclass
class TableBlock:
    """A table: a caption, a DataFrame of formatted text, and an optional note under it."""

    caption: str
    frame: pd.DataFrame
    note: str = ""


@dataclass
class FigureBlock:
    """A figure: a stable id (file name), a caption and the matplotlib figure."""

    id: str
    caption: str
    figure: Figure


@dataclass
class Section:
    """A titled part of the report: a list of paragraphs (str), tables and figures in order."""

    id: str
    title: str
    blocks: list[Any] = field(default_factory=list)


@dataclass
class Document:
    """The whole report."""

    title: str
    subtitle: str
    sections: list[Section]
    provenance: list[tuple[str, str]]

    @property
    def figures(self) -> list[FigureBlock]:
        return [block for section in self.sections for block in section.blocks if isinstance(block, FigureBlock)]


def _by_analysis(entries) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        groups.setdefault(entry.get("analysis", ""), []).append(entry)
    return groups


def _plan_types(results) -> dict[str, str]:
    return {a["id"]: a["type"] for a in results.provenance["plan"]["plan"]["analyses"]}


def _family_note(results, family: str | None) -> str:
    families = results.provenance.get("families", {})
    if not family or family not in families:
        return "p unadjusted (no family)."
    info = families[family]
    method = tables.ADJUSTED.get(info["method"], info["method"])
    return f"Adjusted p: {method} within the family \u201c{family}\u201d ({info['m']} tests)."


def _skipped_note(entries) -> str:
    skipped = [e for e in entries if "skipped" in e]
    return f" {len(skipped)} not computed (reason in the row)." if skipped else ""


def _role_caption(entries) -> str:
    roles = {e.get("role") for e in entries}
    return " (confirmatory)" if roles == {"confirmatory"} else " (exploratory)" if roles == {"exploratory"} else ""


def build_document(study, results, sampling=None) -> Document:
    """Assemble the report's sections from a study and its results.

    Parameters
    ----------
    study : alliance.study.Study
    results : alliance.analysis.Results
    sampling : alliance.simulate.sampling.SamplingIntervals, optional
        For a synthetic study: the "published vs this sample vs trials of this size" table.

    Returns
    -------
    Document
        Sections in order: participants, descriptives, alliance change, alliance and the acute
        experience, depression outcomes, correlations with outcomes, partial correlations,
        mediation, reliability, notes (skipped analyses, dropped measures, warnings).
    """
    protocol = study.protocol
    labels = Labels(protocol)
    roles = results.provenance["plan"]["roles"]
    arm_labels = {arm.id: getattr(arm, "label", arm.id) for arm in protocol.arms}
    types = _plan_types(results)
    participants = study.participants
    counts = participants["arm"].astype(str).value_counts()
    arm_text = ", ".join(f"{arm_labels.get(a, a)} n = {counts.get(a, 0)}" for a in [a.id for a in protocol.arms]
                         if counts.get(a, 0)) or "no arms"
    sections: list[Section] = []

    # -- summary of findings: the confirmatory tests in sentences, then side by side ---------------
    section = Section("summary", "Summary of findings")
    section.blocks.extend(narrative.findings_paragraphs(results, labels))
    confirmatory = tables.confirmatory_table(results, labels)
    if not confirmatory.empty:
        section.blocks.append(TableBlock(
            "Confirmatory tests: complete cases, full-information ML and multiple imputation",
            confirmatory,
            "Complete cases: every participant with both scores (the paper's analysis), Pearson r with its t-test, "
            "Holm within the test's family. FIML: maximum likelihood from every participant with any measure of "
            "the analysis (Wald z, as lavaan). Multiple imputation: chained equations, Rubin's rules. Both assume "
            f"data missing at random. A correlation from fewer than {narrative.MIN_N_FINDING} participants is not "
            "interpreted."))
    if sampling is not None:
        section.blocks.append(
            f"This is a synthetic trial drawn from a population calibrated to the published results. A trial of "
            f"{sampling.n} participants drawn from that population varies this much: the table gives, for each "
            f"published finding, the range that 90% of {sampling.trials:,} simulated trials of the same size "
            f"({sampling.attrition:.0%} lost to follow-up) fall in, and how often such a trial finds p < .05.")
        section.blocks.append(TableBlock(
            "Published, this sample, and what a trial of this size gives",
            tables.sampling_table(sampling, results, labels),
            "Published: Levin et al. (2024), abstract (d for the change is compared with dz). 90% of trials: the "
            "5th to 95th percentile of the statistic over the simulated trials (alliance.simulate.sampling)."))
    sections.append(section)

    # -- participants ----------------------------------------------------------------------------
    # Descriptives and figures show what the analyses used: excluded deviations left out. The
    # flow counts who was assessed, excluded or not.
    analysed = analysed_study(study, getattr(results, "deviations", ()))
    flow = completeness(study)
    section = Section("participants", "Participants and completeness")
    section.blocks.append(
        f"{len(participants)} participants enrolled ({arm_text}). Each row of the table gives the participants "
        "with at least one answer at the timepoint, out of those enrolled."
    )
    counts = flow_counts(study, results)
    section.blocks.append(FigureBlock(
        "consort", "Flow of participants (CONSORT 2010 style), by arm: allocated, dosed, assessed at the primary "
        "outcome timepoint and at the last follow-up, and analysed for the primary association. In brackets: "
        "participants allocated to the arm who are not at that stage.", flow_diagram(counts)))
    section.blocks.append(FigureBlock("participant_flow", "Participant flow: assessed at each timepoint, by arm.",
                                      figures.participant_flow(study)))
    section.blocks.append(TableBlock("Participants assessed per timepoint", tables.flow_table(flow, labels, arm_labels)))
    deviations = list(getattr(results, "deviations", ()))
    if deviations:
        excluded = {(d["participant_id"], d["timepoint"], d["instrument"]) for d in deviations
                    if d["action"] == "excluded"}
        section.blocks.append(
            f"Protocol deviations: {len(deviations)} (administrations taken off the protocol's schedule). "
            f"{len(excluded)} administration{'' if len(excluded) == 1 else 's'} excluded from every analysis as "
            "the protocol's deviations section says (a pre-dose assessment taken after the first dose is never "
            "counted as pre-dose); the others are analysed as scheduled. Participants and dates are listed in "
            "results.json (deviations).")
        section.blocks.append(TableBlock("Protocol deviations", tables.deviations_table(deviations, labels)))
    else:
        section.blocks.append("No protocol deviations: every dated administration was within its window, in "
                              "order, and no pre-dose assessment was taken after a dose.")
    sections.append(section)

    # -- descriptives ----------------------------------------------------------------------------
    alliance_names = [str(Measure(roles["alliance"]["instrument"], s)) for s in roles["alliance"]["scales"]]
    acute_names = [str(Measure.parse(m).without_timepoint()) for m in roles["acute"]["measures"]]
    described = descriptives(analysed, alliance_names + acute_names + [roles["outcome"]["measure"]])
    sections.append(Section("descriptives", "Descriptive statistics", [
        "Scores of the analysed measures at each timepoint (SD with n \u2212 1; derived timepoints such as the "
        "peak of the dosing sessions after the sessions they come from).",
        TableBlock("Descriptive statistics per measure and timepoint", tables.descriptives_table(described, labels)),
    ]))

    # -- alliance change ---------------------------------------------------------------------------
    section = Section("alliance_change", "Change in alliance")
    section.blocks.append(FigureBlock("alliance_trajectories",
                                      "Alliance at each timepoint: participants (grey) and mean with 95% CI.",
                                      figures.alliance_trajectories(analysed, results)))
    for analysis, entries in _by_analysis(results.alliance_change).items():
        if len(entries) == 1 and "scale" not in entries[0]:
            section.blocks.append(f"{analysis}: not computed \u2013 {entries[0]['skipped']}")
            continue
        section.blocks.append(TableBlock(
            "Paired comparisons of alliance (mean difference = later \u2212 earlier)" + _role_caption(entries),
            tables.alliance_change_table(entries, labels, results),
            "Paired t-test with Cohen's dz (mean difference / SD of differences) and dav (mean difference / "
            "mean of the two SDs); Wilcoxon signed-rank p beside it. "
            + _family_note(results, entries[0].get("family")) + _skipped_note(entries)))
    for entry in results.mixed_models:
        if types.get(entry.get("analysis")) == "alliance_mixed_model":
            section.blocks.append(_mixed_model_block(entry, labels, arm_labels))
    sections.append(section)

    # -- correlations ------------------------------------------------------------------------------
    groups = _by_analysis(results.correlations)
    acute_section = Section("alliance_acute", "Alliance and the acute experience")
    outcome_section = Section("correlations_outcome", "Correlations with depression outcomes")
    for analysis, entries in groups.items():
        target = acute_section if all(e.get("y") in roles["acute"]["measures"] for e in entries if "y" in e) \
            else outcome_section
        if len(entries) == 1 and "x" not in entries[0]:
            target.blocks.append(f"{analysis}: not computed \u2013 {entries[0]['skipped']}")
            continue
        method = entries[0].get("method", "pearson").capitalize()
        target.blocks.append(TableBlock(
            f"{method} correlations: {analysis.replace('_', ' ')}{_role_caption(entries)}",
            tables.correlation_table(entries, labels, results),
            "Pairwise-complete data (n per row); 95% CI by Fisher's z. "
            + _family_note(results, entries[0].get("family")) + _skipped_note(entries)))
    outcome_section.blocks.insert(0, FigureBlock(
        "alliance_outcome_scatter", "Alliance against depression at each follow-up, with the least-squares line.",
        figures.alliance_outcome_scatter(analysed, results)))
    outcome_section.blocks.insert(1, FigureBlock(
        "correlation_heatmap", "Correlations of alliance and acute measures with acute and outcome measures.",
        figures.correlation_heatmap(results, labels)))
    sections += [acute_section]

    # -- outcomes ---------------------------------------------------------------------------------
    section = Section("outcomes", "Depression outcomes")
    section.blocks.append(FigureBlock("outcome_trajectories",
                                      f"{labels.scale(roles['outcome']['measure'])} by arm: mean with 95% CI.",
                                      figures.outcome_trajectories(analysed, results)))
    for entry in results.mixed_models:
        if types.get(entry.get("analysis")) == "outcome_mixed_model":
            section.blocks.append(_mixed_model_block(entry, labels, arm_labels))
    if results.outcomes:
        section.blocks.append(TableBlock(
            "Response (\u2265 50% reduction from baseline) and remission per follow-up",
            tables.outcomes_table(results.outcomes, labels, arm_labels),
            "Response: n responding / n with a baseline and a follow-up score; remission: n remitted / n with "
            "a follow-up score; rules from the instrument definition."))
    if results.reliable_change:
        section.blocks.append(TableBlock(
            "Reliable change from baseline (Jacobson & Truax 1991) per follow-up",
            tables.reliable_change_table(results.reliable_change, labels, arm_labels),
            tables.reliable_change_note(results.reliable_change)))
    sections += [section, outcome_section]

    # -- partial correlations ------------------------------------------------------------------------
    section = Section("partial_correlations", "Partial correlations controlling for baseline depression")
    for analysis, entries in _by_analysis(results.partial_correlations).items():
        if len(entries) == 1 and "x" not in entries[0]:
            section.blocks.append(f"{analysis}: not computed \u2013 {entries[0]['skipped']}")
            continue
        covariates = ", ".join(labels.measure(c) for c in entries[0].get("covariates", []))
        section.blocks.append(TableBlock(
            f"Partial correlations: {analysis.replace('_', ' ')} (controlling for {covariates}; exploratory)",
            tables.correlation_table(entries, labels, results, partial=True),
            "Participants complete on x, y and the covariates; t test on n \u2212 2 \u2212 k df. "
            + _family_note(results, entries[0].get("family")) + _skipped_note(entries)))
    sections.append(section)

    # -- mediation ------------------------------------------------------------------------------------
    section = Section("mediation", "Mediation: alliance \u2192 acute experience \u2192 depression")
    if results.mediation:
        computed = [e for e in results.mediation if "x" in e]
        if computed:
            section.blocks.append(TableBlock(
                "Simple mediation models (unstandardized OLS paths; exploratory)",
                tables.mediation_table(computed, labels, results),
                "a: X \u2192 M; b: M \u2192 Y given X; c\u2032: direct effect; c: total effect; ab: indirect "
                f"effect with a {computed[0].get('ci_method', 'percentile')} bootstrap CI "
                f"({computed[0].get('n_boot', '')} resamples, seed {computed[0].get('seed', '')}). "
                + _family_note(results, computed[0].get("family"))))
        for index, entry in enumerate(computed):
            section.blocks.append(FigureBlock(
                f"mediation_{index + 1}",
                f"Path diagram: {labels.measure(entry['x'])} \u2192 {labels.measure(entry['m'])} \u2192 "
                f"{labels.measure(entry['y'])}.", figures.mediation_diagram(entry, labels)))
        for entry in results.mediation:
            if "x" not in entry:
                section.blocks.append(f"{entry['analysis']}: not computed \u2013 {entry['skipped']}")
    sections.append(section)

    # -- facilitator effects -------------------------------------------------------------------------
    if results.facilitator_effects:
        computed = [e for e in results.facilitator_effects if "skipped" not in e]
        section = Section("facilitators", "Facilitator effects (exploratory)")
        section.blocks.append(
            "Each participant worked with two facilitators, so the facilitator term is a multiple membership: "
            "a participant's facilitator effect is the mean of their facilitators' effects. The intraclass "
            "correlations say how much of alliance and of depression lies between facilitators; the association "
            "is the alliance slope with that term; within and between split alliance into the participant's "
            "difference from their facilitators' mean and that mean. Levin et al. (2024) could not estimate "
            "these; with this sample they are weak, and every singular fit is shown as one.")
        section.blocks.append(TableBlock(
            "Facilitator ICCs and the alliance → depression association with a facilitator term",
            tables.facilitator_table(results.facilitator_effects, labels, results),
            "REML mixed models (lme4's formulation), Satterthwaite df; the alternative with the first-listed "
            "facilitator only is in results.json. " + _family_note(results, results.facilitator_effects[0].get("family"))
            + _skipped_note(results.facilitator_effects)))
        for note in dict.fromkeys(n for e in computed for n in e.get("notes", [])):
            section.blocks.append(note)
        if computed:
            shown = max(computed, key=lambda e: e["n"])
            section.blocks.append(FigureBlock(
                "facilitator_effects",
                f"Facilitator effects on {labels.measure(shown['y'])} (conditional modes ± 1.96 conditional SD), "
                f"from the model with {labels.measure(shown['x'])}.", figures.facilitator_caterpillar(shown, labels)))
        sections.append(section)

    # -- participant-facilitator agreement ----------------------------------------------------------
    if results.alliance_agreement:
        computed = [e for e in results.alliance_agreement if "skipped" not in e]
        section = Section("agreement", "Participant and facilitator views of the alliance (exploratory)")
        section.blocks.append(
            "Each facilitator rated the alliance with each of their participants. The correlation and the "
            "mean difference compare the participant's score with the mean of their facilitators' scores "
            "(participants are the units); the limits of agreement hold 95% of participant-facilitator "
            "differences. The discrepancy coefficient is the association of the outcome with the difference "
            "(participant minus facilitators) at a given mean level of the alliance (y ~ level + difference). "
            "Across psychotherapy studies clients and therapists agree at about r = .36 (Tryon et al. 2007).")
        section.blocks.append(TableBlock(
            "Agreement between participant- and facilitator-rated alliance",
            tables.agreement_table(results.alliance_agreement, labels, results),
            "Pearson r with Fisher-z CI; paired t test of the difference; least-squares regression for the "
            "discrepancy (unadjusted p). " + _family_note(results, results.alliance_agreement[0].get("family"))
            + _skipped_note(results.alliance_agreement)))
        for note in dict.fromkeys(n for e in computed for n in e.get("notes", [])):
            section.blocks.append(note)
        sections.append(section)

    # -- reliability ----------------------------------------------------------------------------------
    if results.reliability:
        sections.append(Section("reliability", "Reliability in this sample", [TableBlock(
            "Internal consistency of each scale at each timepoint",
            tables.reliability_table(results.reliability, labels),
            "Cronbach's \u03b1 (pairwise-complete item covariances) with Feldt's 95% CI, and McDonald's "
            "\u03c9 total of a one-factor ML model on pairwise correlations, as psych::alpha and psych::omega "
            "report them.")]))

    # -- safety ---------------------------------------------------------------------------------------
    safety = list(getattr(results, "safety", ()))
    if safety:
        section = Section("safety", "Safety: adverse events")
        skipped = [e for e in safety if e.get("kind") == "by_arm" and "skipped" in e]
        if skipped:
            section.blocks.append(f"No adverse events are reported here: {skipped[0]['skipped']}.")
        else:
            section.blocks.append(TableBlock(
                "Adverse events by arm", tables.safety_by_arm_table(safety, arm_labels),
                "Participants with at least one event (percent of the arm), and the number of events. Grades: "
                "CTCAE v5.0; relatedness to the study treatment as the investigators recorded it."))
            listing = tables.serious_event_table(safety, arm_labels)
            if len(listing):
                section.blocks.append(TableBlock("Serious adverse events", listing,
                                                 "Seriousness criteria of ICH E2A."))
            else:
                section.blocks.append("No serious adverse event was recorded.")
            vitals = tables.vital_signs_table(safety, arm_labels)
            if len(vitals):
                section.blocks.append(TableBlock(
                    "Vital signs on the dosing days", vitals,
                    "Each participant's highest reading of the session; mean (SD) and the largest over participants. "
                    "Thresholds: the protocol's safety section (default: warning 160/100 mmHg or 120 bpm, urgent "
                    "180/120 mmHg, the ACC/AHA 2017 hypertensive crisis)."))
            cssrs = tables.cssrs_worst_table(safety, arm_labels)
            if len(cssrs):
                section.blocks.append(TableBlock(
                    "Suicidal ideation and behaviour (C-SSRS), worst ever recorded", cssrs,
                    "Participants by the most severe ideation type answered yes at any assessment (Posner et al. "
                    "2011); behaviour: an actual, interrupted or aborted attempt or preparatory acts."))
            for entry in safety:
                if entry.get("kind") == "alliance_vs_harm":
                    section.blocks.append(narrative.alliance_vs_harm_sentence(entry, labels))
        sections.append(section)

    # -- notes ------------------------------------------------------------------------------------------
    notes = Section("notes", "Notes: what was not computed, and why")
    dropped_all = results.provenance["plan"].get("dropped", [])
    # an analysis left out as a whole is told once, with its reason; otherwise each reference left out
    not_run = {d["analysis"]: d["reason"].removeprefix("analysis skipped: ") for d in dropped_all
               if d["reason"].startswith("analysis skipped: ")}
    for analysis, reason in not_run.items():
        notes.blocks.append(_sentence(f"Analysis \u201c{analysis}\u201d was not run: {reason}"))
    for dropped in dropped_all:
        if dropped["analysis"] not in not_run:
            notes.blocks.append(_sentence(f"Analysis \u201c{dropped['analysis']}\u201d left out "
                                          f"{dropped['reference']}: {dropped['reason']}"))
    for name in ("alliance_change", "correlations", "partial_correlations", "mediation", "mixed_models",
                 "reliability"):
        for entry in getattr(results, name):
            where = entry.get("measure") or entry.get("x") or entry.get("scale") or entry.get("instrument")
            place = f"\u201c{entry.get('analysis')}\u201d" + (f" ({labels.measure(where)})" if where else "")
            for warning in entry.get("warnings", []):
                notes.blocks.append(_sentence(f"In {place}, the computation warned: {warning}"))
            for note in entry.get("notes", []):
                notes.blocks.append(_sentence(f"In {place}: {note}"))
    for entry in results.reliability:
        if "omega_skipped" in entry:
            scale = labels.measure(f"{entry['instrument']}.{entry['scale']}@{entry['timepoint']}")
            notes.blocks.append(_sentence(f"McDonald's \u03c9 was not computed for {scale}: {entry['omega_skipped']}"))
    for name in ("alliance_change", "correlations", "partial_correlations", "mediation", "mixed_models",
                 "outcomes", "reliable_change", "reliability"):
        skipped = [entry for entry in getattr(results, name) if "skipped" in entry
                   and entry.get("analysis") not in not_run]
        if skipped:
            reasons = sorted({entry["skipped"] for entry in skipped})
            notes.blocks.append(_sentence(
                f"{len(skipped)} of {len(getattr(results, name))} {name.replace('_', ' ')} entries were not "
                "computed: " + "; ".join(reasons)))
    if not notes.blocks:
        notes.blocks.append("Every planned analysis was computed.")
    sections.append(notes)

    provenance = results.provenance
    footer = [
        ("alliance", str(provenance.get("version"))),
        ("created (UTC)", str(provenance.get("created_utc"))),
        ("protocol", f"{provenance.get('protocol_id')} sha256 {str(provenance.get('protocol_sha256'))[:16]}\u2026"),
        ("seed", str(provenance.get("seed"))),
        ("p adjustment", str(provenance.get("p_adjust"))),
    ]
    for name, digest in sorted(provenance.get("inputs", {}).items()):
        footer.append((name, f"sha256 {digest[:16]}\u2026"))
    return Document(
        title=f"Therapeutic alliance analysis: {getattr(protocol, 'name', protocol.id)}",
        subtitle=f"{len(participants)} participants; results.json has every number in full precision.",
        sections=sections,
        provenance=footer,
    )


def _mixed_model_block(entry: dict[str, Any], labels: Labels, arm_labels: dict[str, str]) -> TableBlock:
    note = (f"Linear mixed model {entry['formula']} (REML; Satterthwaite df), n = {entry.get('n_obs')} "
            f"observations of {entry.get('n_groups')} participants; reference: "
            + ", ".join(f"{k} = {labels.timepoint(v) if k == 'timepoint' else v}"
                        for k, v in entry.get("reference", {}).items()) + ".")
    if entry.get("converged") is False:
        note += " The model did not converge."
    if entry.get("singular"):
        note += " Singular fit (a variance at zero)."
    if entry.get("notes"):
        note += " " + " ".join(entry["notes"])
    return TableBlock(f"Mixed model of {labels.scale(entry['measure'])} over time",
                      tables.mixed_model_table(entry, labels, arm_labels), note)


def _sentence(text: str) -> str:
    """A note as a sentence: a capital first letter and a full stop (notes are assembled from parts)."""
    text = " ".join(str(text).split())
    if text and text[0].islower():
        text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
