"""APA-style tables of the results: DataFrames of formatted text, one function per table.

Every function takes the results (and labels for readable names) and returns a DataFrame whose
columns are the table's headings and whose cells are strings formatted by :mod:`.apa`. The HTML and
PDF renderers print these frames as they are, so both documents show identical numbers.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from alliance import instruments
from alliance.protocol import Measure

from . import apa
from .labels import Labels
from .narrative import MIN_N_FINDING

__all__ = [
    "alliance_change_table",
    "correlation_table",
    "descriptives_table",
    "deviations_table",
    "facilitator_table",
    "agreement_table",
    "flow_table",
    "cssrs_worst_table",
    "safety_by_arm_table",
    "safety_relatedness_table",
    "serious_event_table",
    "vital_signs_table",
    "mediation_table",
    "mixed_model_table",
    "outcomes_table",
    "reliability_table",
    "reliable_change_note",
    "reliable_change_table",
]

ADJUSTED = {"holm": "Holm", "hochberg": "Hochberg", "bonferroni": "Bonferroni", "bh": "BH", "by": "BY"}


def _adjusted_heading(results) -> str:
    method = results.provenance.get("p_adjust", "holm")
    return f"p ({ADJUSTED.get(method, method)})"


def _skipped(entry: dict[str, Any]) -> str | None:
    return entry.get("skipped")


def descriptives_table(descriptives: pd.DataFrame, labels: Labels) -> pd.DataFrame:
    """Descriptives (:func:`alliance.analysis.descriptives`) with readable names and 2 decimals."""
    return pd.DataFrame({
        "Measure": [labels.scale(m) for m in descriptives["measure"]],
        "Timepoint": [labels.timepoint(t) for t in descriptives["timepoint"]],
        "n": descriptives["n"].astype(int).astype(str),
        "M": [apa.number(v) for v in descriptives["mean"]],
        "SD": [apa.number(v) for v in descriptives["sd"]],
        "Mdn": [apa.number(v) for v in descriptives["median"]],
        "Min": [apa.number(v) for v in descriptives["min"]],
        "Max": [apa.number(v) for v in descriptives["max"]],
    })


def flow_table(completeness: pd.DataFrame, labels: Labels, arm_labels: dict[str, str]) -> pd.DataFrame:
    """Assessed / enrolled (%) per timepoint (rows) and arm (columns)."""
    table = completeness.copy()
    table["cell"] = [f"{a}/{e} ({apa.number(p, 0)}%)" if e else apa.MISSING
                     for a, e, p in table[["assessed", "enrolled", "percent"]].itertuples(index=False)]
    wide = table.pivot(index="timepoint", columns="arm", values="cell")
    order = list(dict.fromkeys(table["timepoint"]))
    arms = list(dict.fromkeys(table["arm"]))
    wide = wide.reindex(index=order, columns=arms)
    kinds = table.drop_duplicates("timepoint").set_index("timepoint")["kind"]
    out = pd.DataFrame({"Timepoint": [labels.timepoint(t) for t in order],
                        "Kind": [str(kinds[t]).replace("_", " ") for t in order]})
    for arm in arms:
        out[arm_labels.get(arm, "All" if arm == "all" else arm)] = wide[arm].to_numpy()
    return out


_DEVIATION_WORDS = {"after_dosing": "after the first dose (pre-dose timepoint)", "out_of_window": "outside its window",
                    "out_of_order": "before an earlier timepoint", "undated": "without a date"}


def deviations_table(entries, labels: Labels) -> pd.DataFrame:
    """Protocol deviations counted per timepoint, instrument, kind and action (no ids, no dates).

    The report is read by monitors too: the per-administration list, with participant ids and
    dates, is in ``results.json`` (``deviations``).
    """
    rows: dict[tuple[str, str, str, str], int] = {}
    for entry in entries:
        key = (entry["timepoint"], entry["instrument"], entry["kind"], entry["action"])
        rows[key] = rows.get(key, 0) + 1
    return pd.DataFrame([{"Timepoint": labels.timepoint(t), "Instrument": instruments.get(i).short_name,
                          "Deviation": _DEVIATION_WORDS.get(k, k.replace("_", " ")),
                          "In the analysis": "excluded" if a == "excluded" else "included", "n": str(n)}
                         for (t, i, k, a), n in rows.items()],
                        columns=["Timepoint", "Instrument", "Deviation", "In the analysis", "n"])


def alliance_change_table(entries, labels: Labels, results) -> pd.DataFrame:
    """Paired comparisons of alliance: M diff [95% CI], t(df), p, adjusted p, d_z, d_av, Wilcoxon p."""
    rows = []
    for entry in entries:
        row = {
            "Scale": labels.scale(entry["scale"]),
            "Change": f"{labels.timepoint(entry['from'])} \u2192 {labels.timepoint(entry['to'])}",
            "n": str(entry.get("n", apa.MISSING)),
        }
        if _skipped(entry):
            row.update({"M diff [95% CI]": f"not computed: {entry['skipped']}"})
        else:
            row.update({
                "M diff [95% CI]": f"{apa.number(entry['mean_diff'])} {apa.ci(entry['ci_low'], entry['ci_high'])}",
                "t": apa.number(entry["t"]),
                "df": apa.number(entry["df"], 0),
                "p": apa.p_value(entry["p"]),
                _adjusted_heading(results): apa.p_value(entry.get("p_adjusted")),
                "dz": apa.number(entry["cohen_dz"]),
                "dav": apa.number(entry["cohen_dav"]),
                "Wilcoxon p": apa.p_value(entry.get("wilcoxon_p")),
            })
        rows.append(row)
    return pd.DataFrame(rows).fillna("")


def correlation_table(entries, labels: Labels, results, partial: bool = False) -> pd.DataFrame:
    """Correlations: X, Y, n, r [95% CI], p, adjusted p (partial: the covariates are in the caption)."""
    rows = []
    for entry in entries:
        row = {"X": labels.measure(entry["x"]), "Y": labels.measure(entry["y"]), "n": str(entry.get("n", ""))}
        if _skipped(entry):
            row["r [95% CI]"] = f"not computed: {entry['skipped']}"
        else:
            small = f" (n < {MIN_N_FINDING}: not interpreted)" if int(entry.get("n") or 0) < MIN_N_FINDING else ""
            row.update({
                ("partial r" if partial else "r") + " [95% CI]":
                    f"{apa.proportion(entry['r'])} {apa.ci(entry['ci_low'], entry['ci_high'], bounded=True)}{small}",
                "p": apa.p_value(entry["p"]),
                _adjusted_heading(results): apa.p_value(entry.get("p_adjusted")),
            })
        rows.append(row)
    frame = pd.DataFrame(rows)
    if partial and "partial r [95% CI]" in frame.columns and "r [95% CI]" in frame.columns:
        frame["partial r [95% CI]"] = frame["partial r [95% CI]"].fillna(frame.pop("r [95% CI]"))
    return frame.fillna("")


def confirmatory_table(results, labels: Labels) -> pd.DataFrame:
    """The confirmatory tests with complete-case, FIML and multiple-imputation estimates side by side."""
    rows = []
    for entry in results.alliance_change:
        if entry.get("role") != "confirmatory" or "scale" not in entry:
            continue
        rows.append({
            "Test": f"{labels.scale(entry['scale'])}: {labels.timepoint(entry['from'])} → {labels.timepoint(entry['to'])}",
            "n": str(entry.get("n", "")),
            "Complete cases": (f"dz = {apa.number(entry.get('cohen_dz'))}, {apa.p_with_symbol(entry.get('p'))}"
                               if not _skipped(entry) else f"not computed: {entry['skipped']}"),
            "Holm p": apa.p_value(entry.get("p_adjusted")),
            "FIML": "mixed model: exploratory", "Multiple imputation": "",
        })
    for entry in results.correlations:
        if entry.get("role") != "confirmatory" or "x" not in entry:
            continue
        row = {"Test": f"{labels.measure(entry['x'])} ~ {labels.measure(entry['y'])}", "n": str(entry.get("n", ""))}
        if _skipped(entry):
            row["Complete cases"] = f"not computed: {entry['skipped']}"
        else:
            small = f" (n < {MIN_N_FINDING})" if int(entry.get("n") or 0) < MIN_N_FINDING else ""
            row["Complete cases"] = f"r = {apa.proportion(entry['r'])}, {apa.p_with_symbol(entry['p'])}{small}"
            row["Holm p"] = apa.p_value(entry.get("p_adjusted"))
        for method, heading in (("fiml", "FIML"), ("mi", "Multiple imputation")):
            other = entry.get("missing_data", {}).get(method)
            if other is None:
                row[heading] = ""
            elif "r" not in other:
                row[heading] = f"not computed: {other.get('skipped', '')}"
            else:
                row[heading] = f"r = {apa.proportion(other['r'])}, {apa.p_with_symbol(other['p'])} (n = {other['n']})"
        rows.append(row)
    return pd.DataFrame(rows).fillna("")


def sampling_table(sampling, results, labels: Labels) -> pd.DataFrame:
    """Published value, this sample's value, and the 90% range over simulated trials of the same size."""
    rows = []
    for finding in sampling.findings:
        if finding["test"] == "paired":
            x, y = Measure.parse(finding["x"]), Measure.parse(finding["y"])
            matches = [e for e in results.alliance_change if e.get("scale") == str(x.without_timepoint())
                       and e.get("from") == x.timepoint and e.get("to") == y.timepoint]
            sample = matches[0].get("cohen_dz") if matches else None
            sample_p = matches[0].get("p") if matches else None
            name = "d"
        else:
            matches = [e for e in results.correlations if e.get("x") == finding["x"] and e.get("y") == finding["y"]]
            sample = matches[0].get("r") if matches else None
            sample_p = matches[0].get("p") if matches else None
            name = "r"
        formatter = apa.proportion if name == "r" else apa.number
        rows.append({
            "Finding": finding["label"],
            "Published": f"{name} = {formatter(finding['published'])}, p {finding['published_p'] if finding['published_p'].startswith('<') else '= ' + finding['published_p']}",
            "This sample": f"{name} = {formatter(sample)}, {apa.p_with_symbol(sample_p)}" if sample is not None else "not computed",
            "90% of trials of this size": f"{formatter(finding['low'])} to {formatter(finding['high'])}",
            "Share with p < .05": apa.proportion(finding["share_significant"]) if finding["share_significant"] is not None else "",
        })
    return pd.DataFrame(rows)


def mediation_table(entries, labels: Labels, results) -> pd.DataFrame:
    """Mediation models: paths a, b, c′, total c, indirect ab with bootstrap CI, p, adjusted p."""
    rows = []
    for entry in entries:
        row = {"Model (X \u2192 M \u2192 Y)": " \u2192 ".join(labels.measure(entry[k]) for k in ("x", "m", "y")),
               "n": str(entry.get("n", ""))}
        if _skipped(entry):
            row["a"] = f"not computed: {entry['skipped']}"
        else:
            row.update({
                "a": apa.number(entry["a"], 3), "b": apa.number(entry["b"], 3),
                "c\u2032": apa.number(entry["c_prime"], 3), "c": apa.number(entry["total"], 3),
                "ab [95% CI]": f"{apa.number(entry['indirect'], 3)} "
                               f"{apa.ci(entry['indirect_ci_low'], entry['indirect_ci_high'], decimals=3)}",
                "p": apa.p_value(entry["p_indirect"]),
                _adjusted_heading(results): apa.p_value(entry.get("p_adjusted")),
            })
        rows.append(row)
    return pd.DataFrame(rows).fillna("")


def _term(term: str, entry: dict[str, Any], labels: Labels, arm_labels: dict[str, str]) -> str:
    """R's term name → words: ``timepointweek4`` → ``4 weeks (vs Baseline)``, ``timepointweek4:armdelayed`` →
    ``4 weeks × Delayed`` (interactions name no reference: it is in the table note)."""
    reference = entry.get("reference", {})
    pieces = term.split(":")
    parts = []
    for part in pieces:
        timepoint = part.removeprefix("timepoint")
        arm = part.removeprefix("arm")
        if part.startswith("timepoint") and timepoint in entry.get("timepoints", []):
            versus = labels.timepoint(reference.get("timepoint", ""))
            parts.append(labels.timepoint(timepoint) + (f" (vs {versus})" if len(pieces) == 1 else ""))
        elif part.startswith("arm") and arm in arm_labels:
            versus = arm_labels.get(reference.get("arm"), reference.get("arm"))
            parts.append(arm_labels[arm] + (f" (vs {versus})" if len(pieces) == 1 else ""))
        else:
            parts.append(part)
    return " \u00d7 ".join(parts)


def mixed_model_table(entry: dict[str, Any], labels: Labels, arm_labels: dict[str, str] | None = None) -> pd.DataFrame:
    """Fixed effects of one mixed model: term, b, SE, df (Satterthwaite), t, p; then the random-effect SDs."""
    if _skipped(entry):
        return pd.DataFrame({"Term": ["model not fitted"], "b": [entry["skipped"]]})
    rows = []
    for record in entry["fixed"]:
        rows.append({"Term": _term(record["term"], entry, labels, arm_labels or {}), "b": apa.number(record["estimate"]), "SE": apa.number(record["se"]),
                     "df": apa.number(record["df"], 1), "t": apa.number(record["t"]), "p": apa.p_value(record["p"])})
    for record in entry.get("varcomp", []):
        name = "Residual SD" if record["group"] == "Residual" else f"SD {record['group']} {record['var1'] or ''}".strip()
        if record.get("var2"):
            continue
        rows.append({"Term": name, "b": apa.number(record["sdcor"]), "SE": "", "df": "", "t": "", "p": ""})
    return pd.DataFrame(rows)


def outcomes_table(entries, labels: Labels, arm_labels: dict[str, str]) -> pd.DataFrame:
    """Response and remission per follow-up and arm: n (%) of those evaluable."""
    rows = []
    for entry in entries:
        if _skipped(entry):
            rows.append({"Timepoint": "", "Arm": "", "n": "", "Response": f"not computed: {entry['skipped']}"})
            continue
        response = (f"{entry['n_response']}/{entry['n_evaluable_response']} ({apa.number(entry['response_pct'], 0)}%)"
                    if entry["n_evaluable_response"] else apa.MISSING)
        remission = (f"{entry['n_remission']}/{entry['n']} ({apa.number(entry['remission_pct'], 0)}%)"
                     if entry["n"] else apa.MISSING)
        rows.append({"Timepoint": labels.timepoint(entry["timepoint"]),
                     "Arm": "All" if entry["arm"] == "all" else arm_labels.get(entry["arm"], entry["arm"]),
                     "n": str(entry["n"]), "Response": response, "Remission": remission})
    return pd.DataFrame(rows).fillna("")


def _count(entry: dict[str, Any], count: int, percent) -> str:
    return f"{count}/{entry['n']} ({apa.number(percent, 0)}%)" if entry["n"] else apa.MISSING


def reliable_change_table(entries, labels: Labels, arm_labels: dict[str, str]) -> pd.DataFrame:
    """Reliable change from baseline (Jacobson & Truax 1991) per follow-up and arm: n (%) per category.

    With the protocol's norms, a ``Recovered`` column: reliable improvement ending beyond the cut-off.
    """
    rows = []
    for entry in entries:
        if _skipped(entry):
            rows.append({"Timepoint": "", "Arm": "", "n": "",
                         "Reliable improvement": f"not computed: {entry['skipped']}"})
            continue
        row = {"Timepoint": labels.timepoint(entry["timepoint"]),
               "Arm": "All" if entry["arm"] == "all" else arm_labels.get(entry["arm"], entry["arm"]),
               "n": str(entry["n"]),
               "Reliable improvement": _count(entry, entry["n_improvement"], entry["improvement_pct"]),
               "No reliable change": _count(entry, entry["n_no_change"], entry["no_change_pct"]),
               "Reliable deterioration": _count(entry, entry["n_deterioration"], entry["deterioration_pct"])}
        clinical = entry.get("clinical")
        if clinical:
            row["Recovered"] = _count(entry, clinical["counts"]["recovered"], clinical["percent"]["recovered"])
        rows.append(row)
    return pd.DataFrame(rows).fillna("")


def reliable_change_note(entries) -> str:
    """The norm behind :func:`reliable_change_table`: SD, reliability, threshold, and where each came from."""
    entry = next((e for e in entries if not _skipped(e)), None) or (entries[0] if entries else None)
    if entry is None:
        return ""
    if entry.get("sd") is None or entry.get("reliability") is None or entry.get("threshold") is None:
        parts = [f"SD: {entry.get('sd_from') or apa.MISSING}", f"reliability: {entry.get('reliability_from') or apa.MISSING}"]
        return "Reliable change was not computed. " + "; ".join(parts) + "."
    better = "decrease" if entry.get("lower_is_better") else "increase"
    text = (f"Reliable change index RCI = (follow-up − baseline) / S_diff, S_diff = SD · √2 · "
            f"√(1 − r) (Jacobson & Truax 1991); a change is reliable when |RCI| > "
            f"{apa.number(entry.get('z'))} (α = {apa.proportion(entry.get('alpha'))}, two-sided), i.e. larger than "
            f"{apa.number(entry['threshold'])} points; improvement is a {better}. "
            f"SD {apa.number(entry['sd'])} – {entry['sd_from']}. "
            f"Reliability {apa.proportion(entry['reliability'])} – {entry['reliability_from']}. "
            f"n: participants with a baseline and a follow-up score.")
    clinical = entry.get("clinical")
    if clinical:
        text += (f" Recovered: a reliable improvement ending beyond the cut-off {clinical['recommended']} = "
                 f"{apa.number(clinical['cutoff'], 1)} ({clinical['source']}).")
    for note in entry.get("notes") or []:
        text += f" {note[0].upper()}{note[1:]}."
    return text


def reliability_table(entries, labels: Labels) -> pd.DataFrame:
    """Cronbach's α [95% CI] and McDonald's ω of each scale at each timepoint."""
    rows = []
    for entry in entries:
        row = {"Scale": labels.scale(f"{entry['instrument']}.{entry['scale']}"),
               "Timepoint": labels.timepoint(entry["timepoint"]), "k": str(entry.get("k", "")),
               "n": str(entry.get("n", ""))}
        if _skipped(entry):
            row["\u03b1 [95% CI]"] = f"not computed: {entry['skipped']}"
        else:
            row["\u03b1 [95% CI]"] = (f"{apa.proportion(entry['alpha'])} "
                                      f"{apa.ci(entry['ci_low'], entry['ci_high'], bounded=True)}")
            row["\u03c9"] = apa.proportion(entry.get("omega_total")) if "omega_total" in entry else apa.MISSING
        rows.append(row)
    return pd.DataFrame(rows).fillna("")


def facilitator_table(entries, labels: Labels, results) -> pd.DataFrame:
    """Per alliance × outcome pair: facilitator ICCs, the association with a facilitator term, the split."""
    rows = []
    for entry in entries:
        row = {"Alliance": labels.measure(entry["x"]), "Outcome": labels.measure(entry["y"])}
        if _skipped(entry):
            row["n"] = ""
            row["Association b [95% CI]"] = f"not computed: {entry['skipped']}"
            rows.append(row)
            continue
        a = entry["association"]["x"]
        low, high = _t_interval(a)
        within, between = entry["decomposition"]["x_within"], entry["decomposition"]["x_between"]
        row.update({
            "n (facilitators)": f"{entry['n']} ({entry['n_facilitators']})",
            "ICC alliance": apa.proportion(entry["icc_x"]["icc"], 2),
            "ICC outcome": apa.proportion(entry["icc_y"]["icc"], 2),
            "Association b [95% CI]": f"{apa.number(a['estimate'])} {apa.ci(low, high)}",
            "p": apa.p_value(a["p"]),
            _adjusted_heading(results): apa.p_value(entry.get("p_adjusted")),
            "Within b": apa.number(within["estimate"]),
            "Between b": apa.number(between["estimate"]),
            "Singular": "yes" if entry["association"].get("singular") else "no",
        })
        rows.append(row)
    return pd.DataFrame(rows).fillna("")


def agreement_table(entries, labels: Labels, results) -> pd.DataFrame:
    """Per participant alliance measure: agreement with the facilitators' rating, and the discrepancy."""
    rows = []
    for entry in entries:
        row = {"Participant": labels.measure(entry["x"]), "Facilitators": labels.measure(entry["facilitator"])}
        if _skipped(entry):
            row["n"] = ""
            row["r [95% CI]"] = f"not computed: {entry['skipped']}"
            rows.append(row)
            continue
        c, d = entry["correlation"], entry["mean_difference"]
        row.update({
            "n (dyads)": f"{entry['n']} ({entry['n_dyads']})",
            "r [95% CI]": f"{apa.proportion(c['r'])} {apa.ci(c['ci_low'], c['ci_high'], bounded=True)}",
            "p": apa.p_value(c["p"]),
            _adjusted_heading(results): apa.p_value(entry.get("p_adjusted")),
            "Participant − facilitators [95% CI]": f"{apa.number(d['estimate'])} {apa.ci(d['ci_low'], d['ci_high'])}",
            "Limits of agreement": f"{apa.number(d['loa_low'])} to {apa.number(d['loa_high'])}",
        })
        for model in entry.get("discrepancy", []):
            if "skipped" in model:
                continue
            b = model["discrepancy"]
            row[f"Discrepancy → {labels.measure(model['y'], short=True)} b [95% CI], p"] = (
                f"{apa.number(b['estimate'])} {apa.ci(b['ci_low'], b['ci_high'])}, {apa.p_value(b['p'])}")
        rows.append(row)
    return pd.DataFrame(rows).fillna("")


def _t_interval(row: dict[str, Any]) -> tuple[float, float]:
    from scipy import stats as scipy_stats

    half = scipy_stats.t.ppf(0.975, row["df"]) * row["se"]
    return row["estimate"] - half, row["estimate"] + half


def safety_by_arm_table(entries, arm_labels: dict[str, str]) -> pd.DataFrame:
    """Adverse events by arm: participants with at least one event (%) and events, by grade, relatedness, seriousness."""
    by_arm = [e for e in entries if e.get("kind") == "by_arm" and "skipped" not in e]
    columns = {e["arm"]: f"{arm_labels.get(e['arm'], 'All') if e['arm'] != 'all' else 'All'} (n = {e['n_participants']})"
               for e in by_arm}

    def cell(entry, participants, events=None):
        n = entry["n_participants"]
        text = f"{participants} ({100 * participants / n:.0f}%)" if n else str(participants)
        return text if events is None else f"{text}; {events} events"

    rows = [{"": "Participants with \u2265 1 adverse event",
             **{columns[e["arm"]]: cell(e, e["participants_with_event"], e["events"]) for e in by_arm}}]
    for grade, name in (("1", "mild"), ("2", "moderate"), ("3", "severe"), ("4", "life-threatening"), ("5", "death")):
        rows.append({"": f"  grade {grade} ({name})",
                     **{columns[e["arm"]]: cell(e, e["by_grade"][grade]["participants"], e["by_grade"][grade]["events"])
                        for e in by_arm}})
    rows.append({"": "  related (possible, probable, definite)",
                 **{columns[e["arm"]]: cell(e, e["participants_with_related"]) for e in by_arm}})
    rows.append({"": "Participants with \u2265 1 serious adverse event",
                 **{columns[e["arm"]]: cell(e, e["participants_with_serious"], e["serious_events"]) for e in by_arm}})
    return pd.DataFrame(rows)


def serious_event_table(entries, arm_labels: dict[str, str]) -> pd.DataFrame:
    """The serious adverse events, one row each, by onset."""
    rows = []
    for e in entries:
        if e.get("kind") != "serious_event":
            continue
        rows.append({"Participant": e["participant_id"], "Arm": arm_labels.get(e["arm"], e["arm"]), "Event": e["term"],
                     "Onset": e["onset"], "Resolved": e.get("resolved_on") or "ongoing", "Grade": str(e["severity"]),
                     "Criteria": (e.get("seriousness") or "").replace(";", ", ").replace("_", " "),
                     "Related": (e.get("relatedness") or "").replace("_", " "),
                     "Outcome": (e.get("outcome") or "").replace("_", " ")})
    return pd.DataFrame(rows)


def vital_signs_table(entries, arm_labels: dict[str, str]) -> pd.DataFrame:
    """Per arm and session: mean (SD) and maximum of each participant's peak reading, and readings at the thresholds."""
    rows = []
    for e in entries:
        if e.get("kind") != "vital_signs_by_arm":
            continue

        def peak(measure, e=e):
            values = e.get(measure) or {}
            if values.get("mean") is None:
                return ""
            sd = f" ({values['sd']:.0f})" if values.get("sd") is not None else ""
            return f"{values['mean']:.0f}{sd}; max {values['max']:.0f}"

        rows.append({"Arm": "All" if e["arm"] == "all" else arm_labels.get(e["arm"], e["arm"]),
                     "Session": str(e["session"]), "n": str(e["n_participants"]),
                     "Peak systolic (mmHg)": peak("systolic_bp"), "Peak diastolic (mmHg)": peak("diastolic_bp"),
                     "Peak heart rate (bpm)": peak("heart_rate"),
                     "Readings at warning / urgent thresholds": f"{e['readings_warning']} / {e['readings_urgent']}"})
    return pd.DataFrame(rows)


def cssrs_worst_table(entries, arm_labels: dict[str, str]) -> pd.DataFrame:
    """Per arm: participants by their worst C-SSRS ideation severity, and with any suicidal behaviour."""
    names = {"0": "none", "1": "1 wish to be dead", "2": "2 active thoughts", "3": "3 with method",
             "4": "4 with intent", "5": "5 with plan and intent"}
    rows = []
    for e in entries:
        if e.get("kind") != "cssrs_worst_by_arm":
            continue
        row = {"Arm": "All" if e["arm"] == "all" else arm_labels.get(e["arm"], e["arm"]), "Assessed": str(e["n_assessed"])}
        row |= {f"Worst ideation: {names[k]}": str(v) for k, v in e["worst_ideation"].items()}
        row["Any suicidal behaviour"] = str(e["participants_with_behaviour"])
        rows.append(row)
    return pd.DataFrame(rows)



def safety_relatedness_table(entries, arm_labels: dict[str, str]) -> pd.DataFrame:
    """Adverse events by relatedness to the study treatment: participants with such an event (%) and events, by arm.

    The columns are those of :func:`safety_by_arm_table` (one per ``by_arm`` entry given, ``All`` last); the
    rows the terms of :data:`alliance.study.adverse_events.RELATEDNESS` and ``not recorded``. A participant
    with events of two terms counts in both rows, so the rows do not add up to the participants with an event.
    """
    from alliance.study.adverse_events import RELATEDNESS

    by_arm = [e for e in entries if e.get("kind") == "by_arm" and "skipped" not in e]
    columns = {e["arm"]: f"{arm_labels.get(e['arm'], 'All') if e['arm'] != 'all' else 'All'} (n = {e['n_participants']})"
               for e in by_arm}
    rows = []
    for term in (*RELATEDNESS, "unknown"):
        row = {"": term.replace("_", " ") if term != "unknown" else "not recorded"}
        for e in by_arm:
            counts, n = e["by_relatedness"].get(term, {"participants": 0, "events": 0}), e["n_participants"]
            share = f" ({100 * counts['participants'] / n:.0f}%)" if n else ""
            row[columns[e["arm"]]] = (f"{counts['participants']}{share}; {counts['events']} "
                                      f"event{'' if counts['events'] == 1 else 's'}")
        rows.append(row)
    return pd.DataFrame(rows)
