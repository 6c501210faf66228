"""The results in sentences: what the confirmatory tests found, generated from the numbers.

Every sentence is built from one entry of ``results.json`` and says only what its numbers say:
"associated" when p < .05, "not associated" otherwise, the direction from the sign of r, never a
cause. APA style (Publication Manual, 7th ed.): r(df) with df = n − 2, the 95% CI in brackets,
p without a leading zero and ``p < .001`` below .001 (:mod:`alliance.report.apa`).

A correlation from fewer than :data:`MIN_N_FINDING` participants is not reported as a finding: at
n = 10 the 95% CI of r = .50 already runs from −.19 to .86 (Fisher's z), wider than the whole range
of findings the paper compares; and correlations stabilise only at far larger n (Schönbrodt &
Perugini 2013). Below it the sentence says "not interpreted" and gives n.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alliance.protocol import Measure, MeasureNameError

from . import apa
from .labels import Labels

__all__ = ["ALPHA", "MIN_N_FINDING", "findings_paragraphs", "correlation_sentence", "change_sentence",
           "below_minimum"]

ALPHA = 0.05
MIN_N_FINDING = 10  # see the module docstring


def below_minimum(entry: Mapping[str, Any]) -> bool:
    """Whether a correlation entry rests on fewer participants than a finding needs."""
    return entry.get("r") is not None and int(entry.get("n") or 0) < MIN_N_FINDING


def _phrase(name: str, labels: Labels) -> str:
    """``wai_sr.total@prep`` → "WAI-SR total at the final preparation session"; peaks read "peak MEQ30 total"."""
    try:
        measure = Measure.parse(name, timepoint="optional")
    except MeasureNameError:
        return name
    scale = labels.scale(str(measure.without_timepoint()))
    if measure.timepoint is None:
        return scale
    label = labels.timepoint(measure.timepoint)
    if label.lower().startswith("peak"):
        return f"peak {scale}"
    if label[:1].isdigit():
        return f"{scale} at {label}"
    return f"{scale} at the {label[:1].lower()}{label[1:]}"


def _sentence_start(text: str) -> str:
    return text[:1].upper() + text[1:]


def correlation_sentence(entry: Mapping[str, Any], labels: Labels) -> str:
    """One correlation in an APA sentence (or why it is not interpreted)."""
    x, y = _phrase(entry["x"], labels), _phrase(entry["y"], labels)
    if entry.get("skipped") or entry.get("r") is None:
        return f"{_sentence_start(x)} and {y}: not computed ({entry.get('skipped', 'no data')}; n = {entry.get('n', 0)})."
    n = int(entry["n"])
    if n < MIN_N_FINDING:
        return (f"{_sentence_start(x)} and {y}: not interpreted, n = {n} (a correlation needs at least "
                f"{MIN_N_FINDING} participants to be reported as a finding).")
    r, p = entry["r"], entry["p"]
    stats_text = (f"r({n - 2}) = {apa.proportion(r)}, 95% CI {apa.ci(entry['ci_low'], entry['ci_high'], bounded=True)}, "
                  f"{apa.p_with_symbol(p)}")
    if p < ALPHA:
        direction = "positively" if r > 0 else "negatively"
        return f"{_sentence_start(x)} was {direction} associated with {y}, {stats_text}."
    return f"{_sentence_start(x)} was not significantly associated with {y}, {stats_text}."


def change_sentence(entry: Mapping[str, Any], labels: Labels) -> str:
    """The paired comparison of an alliance scale between two timepoints."""
    scale = labels.scale(entry["scale"])
    before = _phrase(f"{entry['scale']}@{entry['from']}", labels).split(" at ", 1)[-1]
    after = _phrase(f"{entry['scale']}@{entry['to']}", labels).split(" at ", 1)[-1]
    if entry.get("skipped") or entry.get("t") is None:
        return f"The change of {scale}: not computed ({entry.get('skipped', 'no data')})."
    p = entry["p"]
    verb = ("increased" if entry["mean_diff"] > 0 else "decreased") if p < ALPHA else "did not change significantly"
    return (f"{scale} {verb} from {before} to {after} (mean difference {apa.number(entry['mean_diff'])}, 95% CI "
            f"{apa.ci(entry['ci_low'], entry['ci_high'])}; n = {entry['n']}), {apa.t_test(entry['t'], entry['df'])}, "
            f"{apa.p_with_symbol(p)}, dz = {apa.number(entry['cohen_dz'])}.")


def _missing_data_sentence(entries: list[Mapping[str, Any]]) -> str | None:
    """How the confirmatory correlations fare under FIML and multiple imputation."""
    checked = [e for e in entries if "missing_data" in e and e.get("r") is not None and not below_minimum(e)]
    if not checked:
        return None
    parts = []
    for method, name in (("fiml", "full-information maximum likelihood"), ("mi", "multiple imputation")):
        usable = [e for e in checked if "r" in e["missing_data"].get(method, {})]
        if not usable:
            continue
        same = sum((e["p"] < ALPHA) == (e["missing_data"][method]["p"] < ALPHA) for e in usable)
        largest = max(abs(e["missing_data"][method]["r"] - e["r"]) for e in usable)
        parts.append(f"{name} gives the same conclusion at \u03b1 = .05 for {same} of {len(usable)} "
                     f"(largest change in r: {apa.proportion(largest)})")
    if not parts:
        return None
    return ("Missing data: the correlations above use every participant with both scores (complete pairs); "
            + " and ".join(parts) + ".")


def _tipping_sentence(entries: list[Mapping[str, Any]], labels: Labels) -> str | None:
    for entry in entries:
        tipping = entry.get("tipping_point")
        if not tipping or "table" not in tipping:
            continue
        outcome = _phrase(tipping["y"], labels)
        if tipping.get("n_imputed", 0) == 0:
            return f"Tipping point: {outcome} has no missing values here, so no assumption about dropouts matters."
        delta = tipping.get("tipping_delta")
        if delta is None:
            low = min(row["delta"] for row in tipping["table"])
            high = max(row["delta"] for row in tipping["table"])
            return (f"Tipping point: even if the {tipping['n_imputed']} participants without {outcome} had scored "
                    f"anywhere from {apa.number(low, 1)} to {apa.number(high, 1)} SD away from what the observed data "
                    "predict (missing not at random), the conclusion of the primary association would not change.")
        return (f"Tipping point: the conclusion of the primary association changes if the {tipping['n_imputed']} "
                f"participants without {outcome} had scored {apa.number(delta, 1)} SD "
                f"({apa.number(delta * tipping['shift_unit'], 1)} points) away from what the observed data predict; "
                "judge whether dropouts that different are plausible.")
    return None


def findings_paragraphs(results, labels: Labels) -> list[str]:
    """The summary of findings: confirmatory tests one by one, then the exploratory count.

    Parameters
    ----------
    results : alliance.analysis.Results
    labels : Labels

    Returns
    -------
    list of str
        Paragraphs of the report's "Summary of findings".
    """
    paragraphs = []
    change = [e for e in results.alliance_change if e.get("role") == "confirmatory"]
    correlations = [e for e in results.correlations if e.get("role") == "confirmatory"]
    if not change and not correlations:
        return ["This plan declares no confirmatory tests; every result below is exploratory."]
    families = results.provenance.get("families", {})
    confirmatory_families = {name: info for name, info in families.items() if info.get("role") == "confirmatory"}
    m_total = sum(info["m"] for info in confirmatory_families.values())
    paragraphs.append(
        f"Confirmatory tests (the {m_total} tests Levin et al. 2024 report, at their timepoints): raw p as in the "
        f"paper; Holm-adjusted p within each of the {len(confirmatory_families)} hypothesis families are in the "
        "tables." if m_total else "Confirmatory tests:")
    sentences = [change_sentence(e, labels) for e in change if "scale" in e]
    paragraphs.extend(sentences)
    by_family: dict[str, list[Mapping[str, Any]]] = {}
    for entry in correlations:
        by_family.setdefault(entry.get("family") or entry["analysis"], []).append(entry)
    for entries in by_family.values():
        text = " ".join(correlation_sentence(e, labels) for e in entries if "x" in e)
        adjusted = [e for e in entries if e.get("p_adjusted") is not None]
        if len(adjusted) > 1:
            kept = sum(e["p_adjusted"] < ALPHA for e in adjusted)
            text += (f" After Holm's adjustment within this family of {len(adjusted)}, {kept} of "
                     f"{sum(e['p'] < ALPHA for e in adjusted)} remain{'s' if kept == 1 else ''} below .05.")
        paragraphs.append(text)
    for extra in (_missing_data_sentence(correlations), _tipping_sentence(correlations, labels)):
        if extra:
            paragraphs.append(extra)
    exploratory = [e for name in ("alliance_change", "correlations", "partial_correlations")
                   for e in getattr(results, name) if e.get("role") == "exploratory" and e.get("p") is not None]
    if exploratory:
        raw = sum(e["p"] < ALPHA for e in exploratory)
        adjusted = sum((e.get("p_adjusted") or 1) < ALPHA for e in exploratory)
        paragraphs.append(
            f"Exploratory tests ({len(exploratory)}: subscales, other timepoints, week 1, partial correlations): "
            f"{raw} have p < .05 unadjusted and {adjusted} after Holm within their families. They are "
            "hypothesis-generating and are not findings of this study.")
    small = [e for e in results.correlations if below_minimum(e)]
    if small:
        paragraphs.append(f"{len(small)} correlation{'s rest' if len(small) > 1 else ' rests'} on fewer than "
                          f"{MIN_N_FINDING} participants and {'are' if len(small) > 1 else 'is'} not interpreted "
                          "(marked in the tables).")
    return paragraphs


def alliance_vs_harm_sentence(entry: dict[str, Any], labels) -> str:
    """The exploratory alliance-vs-harm test in words (or why it was not computed)."""
    what = labels.measure(entry["x"]) if "@" in str(entry.get("x")) else str(entry.get("x"))
    if "skipped" in entry:
        return (f"Alliance and harm (exploratory): {what} against {entry.get('y', 'any adverse event')} was not "
                f"tested: {entry['skipped']}.")
    r, firth = entry["point_biserial"], entry["firth"]
    text = (f"Alliance and harm (exploratory): {what} and having {entry['y']} "
            f"(n = {entry['n']}, {entry['n_with_event']} with an event): point-biserial "
            f"r({entry['n'] - 2}) = {apa.proportion(r['r'])}, 95% CI {apa.ci(r['ci_low'], r['ci_high'], bounded=True)}, "
            f"{apa.p_with_symbol(r['p'])}; Firth logistic regression, odds ratio per point "
            f"{apa.number(firth['odds_ratio'])}, 95% CI {apa.ci(firth['or_ci_low'], firth['or_ci_high'])}, "
            f"{apa.p_with_symbol(firth['p'])}.")
    if entry.get("n", 0) < MIN_N_FINDING:
        text += f" Fewer than {MIN_N_FINDING} participants: not interpreted."
    return text + "".join(f" {note}" for note in entry.get("notes", []))

