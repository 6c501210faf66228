"""Run an analysis plan on a study: every number comes from one call into :mod:`alliance.stats`.

The pipeline only selects columns and arranges results; it computes no statistic itself (the
tests check each number of ``results.json`` against the direct ``alliance.stats`` call). Data come
from :meth:`alliance.study.Study.measures` (scale scores, one row per participant, one column per
``INSTRUMENT.SCALE@TIMEPOINT``) and, for reliability, from the item-level ``Study.responses``.

Missing data, stated once here and in ``docs/analysis.md``:

* correlations and paired tests use pairwise-complete data: a participant counts in a pair when both
  of its measures are present, so each entry has its own ``n`` (a participant who dropped out after
  session 1 still counts in the correlations of their prep alliance with their peak experience);
* partial correlations and mediation models use the participants complete on every variable of that
  model (listwise within the model);
* mixed models use every observed participant × timepoint (missing timepoints are simply absent,
  which is valid under missing-at-random);
* reliability uses pairwise-complete item covariances (as ``psych::alpha``).

An entry that cannot be computed (too few pairs, a constant variable, a measure without data) is
kept with ``"skipped": "<reason>"`` and its ``n``; it never disappears from the results.
"""

from __future__ import annotations

import dataclasses
import datetime as _datetime
import itertools
import platform
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from alliance import __version__, instruments, stats
from alliance.monitoring.change import OK as CHANGE_OK
from alliance.monitoring.change import change_from_baseline
from alliance.monitoring.deviations import find_deviations
from alliance.protocol import AnalysisPlan, Measure, parse_analysis_plan
from alliance.stats.results import to_plain
from alliance.study.measures import scores as score_administrations

from .plan import ResolvedAnalysis, ResolvedPlan, agreement_instrument, resolve_plan
from .pooling import pool_by_site
from .results import Results

__all__ = ["run_analysis"]

PARTICIPANT = "participant_id"
ADJUSTED_FIELD = {"mediation": "p_indirect"}  # the p-value each section adjusts (default "p")


def run_analysis(
    study,
    plan: AnalysisPlan | Mapping[str, Any] | None = None,
    *,
    seed: int | None = None,
    input_hashes: Mapping[str, str] | None = None,
    created_utc: str | None = None,
) -> Results:
    """Run the analysis plan on a study.

    Parameters
    ----------
    study : alliance.study.Study
        Protocol, participants, item responses.
    plan : AnalysisPlan or mapping, optional
        The plan; by default the protocol's (``protocol.analysis``: its ``analysis:`` section,
        missing keys from the default protocol's, see :mod:`alliance.protocol.analysis`).
    seed : int, optional
        Overrides the plan's bootstrap seed.
    input_hashes : mapping, optional
        File name → sha256 of the input files, recorded in the provenance.
    created_utc : str, optional
        Timestamp to record (ISO 8601); by default the current UTC time. Tests pass a fixed one.

    Returns
    -------
    Results
        Sections ``alliance_change, correlations, partial_correlations, mediation, mixed_models,
        outcomes, reliable_change, reliability, deviations, provenance`` (``reliable_change`` is
        computed with ``outcomes``, by the ``response_remission`` analysis). Administrations the protocol's
        ``deviations:`` section excludes (by default a pre-dose assessment taken after the first
        dose) are left out before anything is scored.

    Raises
    ------
    alliance.protocol.ProtocolError
        When a plan given as a mapping does not follow the schema (before anything is computed).
    """
    protocol = study.protocol
    if plan is None:
        plan = protocol.analysis
    elif not isinstance(plan, AnalysisPlan):
        plan = parse_analysis_plan(plan, origin="plan argument")
    if seed is not None:
        plan = dataclasses.replace(plan, seed=int(seed))
    resolved = resolve_plan(plan, protocol)
    deviations, study, excluded = _apply_deviations(study)
    run = _Run(study, resolved)
    for analysis in resolved.analyses:
        run.dispatch(analysis)
    repeated = run.drop_repeated_confirmatory()
    families = run.adjust()
    provenance = {
        "package": "alliance",
        "version": __version__,
        "created_utc": created_utc or _datetime.datetime.now(_datetime.UTC).isoformat(timespec="seconds"),
        "seed": plan.seed,
        "protocol_id": getattr(protocol, "id", None),
        "protocol_sha256": getattr(protocol, "sha256", None),
        "inputs": dict(input_hashes or {}),
        "n_participants": int(len(study.participants)),
        # Enrolled but without a single answer: counted in n_participants, in no analysis.
        "participants_without_data": study.participants_without_answers,
        "deviations": {"found": len(deviations), "administrations_excluded": excluded,
                       "policy": protocol.deviations.to_dict()},
        "arms": list(resolved.arms),
        "p_adjust": plan.p_adjust,
        "families": families,
        "missing_data": "each entry's own numbers: its analysis's `missing` (pairwise-complete for correlations "
                        "and paired tests, listwise within each partial correlation and mediation model, unless "
                        "the plan says fiml or mi); `missing_data` of an entry: the plan's sensitivity methods "
                        f"(FIML; multiple imputation with {plan.n_imputations} data sets); all observed rows in "
                        "mixed models",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "plan": {**resolved.to_dict(), "repeated_confirmatory": repeated},
    }
    return Results(**{name: tuple(entries) for name, entries in run.sections.items()}, deviations=tuple(deviations),
                   provenance=provenance)


def _apply_deviations(study):
    """The study's deviations, the study without the administrations the protocol excludes, their count.

    An administration is excluded when any of its deviations is of a kind the protocol's
    ``deviations:`` section excludes (by default ``after_dosing``): its answers are left out
    before anything is scored, so every n of every analysis reflects it.
    """
    protocol = study.protocol
    found = find_deviations(protocol, study.participants, study.responses, study.dosing_sessions)
    excluded = {(d.participant_id, d.timepoint, d.instrument) for d in found
                if protocol.deviations.action(d.kind) == "exclude"}
    entries = []
    for d in found:
        key = (d.participant_id, d.timepoint, d.instrument)
        entries.append(d.to_dict("exclude" if key in excluded else "include"))
    return entries, analysed_study(study, entries), len(excluded)


def analysed_study(study, deviations):
    """The study as the analysis saw it: without the administrations its deviations excluded.

    Parameters
    ----------
    study : alliance.study.Study
    deviations : iterable of dict
        ``Results.deviations`` (entries with ``action`` ``excluded`` are left out).

    Returns
    -------
    alliance.study.Study
        The same study when nothing was excluded; the report draws its descriptives and figures
        from it, so that they show the numbers the analyses used.
    """
    excluded = {(d["participant_id"], d["timepoint"], d["instrument"]) for d in deviations
                if d.get("action") == "excluded"}
    if not excluded:
        return study
    responses = study.responses
    keys = pd.MultiIndex.from_frame(responses[["participant_id", "timepoint", "instrument"]].astype(str))
    drop = keys.isin(list(excluded))
    return dataclasses.replace(study, responses=responses[~drop].reset_index(drop=True))


def _skip_reason(error: Exception) -> str:
    return str(error).strip() or type(error).__name__


def _call(entry: dict[str, Any], function, *args, **kwargs):
    """Call a statistics function, recording any warning it raises in ``entry["warnings"]``.

    Warnings are kept with the number they concern (STYLE: nothing silent) instead of going to
    stderr, where a reader of ``results.json`` or the report would never see them.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = function(*args, **kwargs)
    if caught:
        messages = entry.setdefault("warnings", [])
        for warning in caught:
            text = f"{function.__name__}: {warning.category.__name__}: {warning.message}"
            if text not in messages:
                messages.append(text)
    return result


class _Run:
    """The state of one run: the study's tables and the sections being filled."""

    def __init__(self, study, plan: ResolvedPlan):
        self.study = study
        self.plan = plan
        self.settings = plan.plan
        measures = study.measures(wide=True)
        if PARTICIPANT in measures.columns:
            measures = measures.set_index(PARTICIPANT)
        participants = study.participants.set_index(PARTICIPANT)
        # every enrolled participant is a row, also those without any score
        self.wide = measures.reindex(participants.index.union(measures.index, sort=False))
        self.arm = participants["arm"].astype(str).reindex(self.wide.index)
        # participants.csv may name each participant's site: the confirmatory correlations are then
        # also estimated per site and pooled across sites (random effects, as across trials)
        site = participants["site"].reindex(self.wide.index) if "site" in participants.columns else None
        self.site = site if site is not None and site.dropna().astype(str).str.strip().ne("").any() and \
            site.dropna().nunique() >= 2 else None
        self.sections: dict[str, list[dict[str, Any]]] = {
            name: [] for name in ("alliance_change", "correlations", "partial_correlations", "mediation",
                                  "mixed_models", "outcomes", "reliable_change", "reliability",
                                  "facilitator_effects", "alliance_agreement", "safety")
        }

    # -- data access ----------------------------------------------------------------------------

    def column(self, measure: str) -> pd.Series:
        """The measure's scores, one per participant (all missing when nobody has it)."""
        if measure in self.wide.columns:
            return pd.to_numeric(self.wide[measure], errors="coerce").astype(float)
        return pd.Series(np.nan, index=self.wide.index, name=measure)

    def frame(self, measures) -> pd.DataFrame:
        return pd.DataFrame({name: self.column(name) for name in measures}, index=self.wide.index)

    def long(self, measures: dict[str, str], with_arm: bool = False) -> pd.DataFrame:
        """Long data ``participant, timepoint, value`` (and ``arm``) for mixed models.

        ``timepoint`` is categorical in the protocol's order, so the first timepoint with data is
        the reference level (treatment coding); ``arm`` likewise in the protocol's arm order.
        """
        pieces = []
        for timepoint, measure in measures.items():
            values = self.column(measure)
            pieces.append(pd.DataFrame({"participant": values.index.astype(str), "timepoint": timepoint,
                                        "value": values.to_numpy()}))
        data = pd.concat(pieces, ignore_index=True).dropna(subset=["value"])
        order = [t for t in measures if t in set(data["timepoint"])]
        data["timepoint"] = pd.Categorical(data["timepoint"], categories=order)
        if with_arm:
            arms = self.arm.reindex(data["participant"]).to_numpy()
            present = [a for a in self.plan.arms if a in set(arms)]
            present += sorted(set(arms) - set(present) - {"nan"})
            data["arm"] = pd.Categorical(arms, categories=present)
        return data

    # -- analyses -------------------------------------------------------------------------------

    def dispatch(self, analysis: ResolvedAnalysis) -> None:
        before = {name: len(entries) for name, entries in self.sections.items()}
        arm = analysis.spec.options.get("arm")
        if analysis.skipped:
            self.sections[_SECTION[analysis.type]].append(
                {"analysis": analysis.id, "family": analysis.family, "skipped": analysis.skipped})
        elif arm is not None:
            # one arm's participants: every column of this analysis comes from their rows only
            wide, arms = self.wide, self.arm
            self.wide, self.arm = wide[arms == arm], arms[arms == arm]
            try:
                getattr(self, f"_{analysis.type}")(analysis)
            finally:
                self.wide, self.arm = wide, arms
        else:
            getattr(self, f"_{analysis.type}")(analysis)
        # every entry says whether it is a pre-specified test or exploratory (docs/analysis.md)
        for name, entries in self.sections.items():
            for index in range(before[name], len(entries)):
                entry = entries[index]
                entries[index] = {"analysis": entry["analysis"], "role": analysis.role,
                                  **({"arm": arm} if arm is not None else {}),
                                  **{key: value for key, value in entry.items() if key != "analysis"}}

    def drop_repeated_confirmatory(self) -> list[dict[str, Any]]:
        """Leave out the exploratory entries that repeat a confirmatory test; return what was left out.

        The default plan writes its exploratory analyses broadly (every alliance scale and timepoint
        against every follow-up), so they contain the confirmatory tests again. Counting those twice
        would put the same p into an exploratory family too, and show one test in two places with two
        adjusted p-values; the confirmatory entry stands and the repeat is listed in the provenance.
        """
        repeated: list[dict[str, Any]] = []
        for section, entries in self.sections.items():
            identity = _TEST_IDENTITY.get(section)
            if identity is None:
                continue
            confirmatory = {identity(entry): entry["analysis"] for entry in entries
                            if entry.get("role") == "confirmatory" and _identifiable(entry)}
            kept = []
            for entry in entries:
                key = identity(entry) if entry.get("role") != "confirmatory" and _identifiable(entry) else None
                if key is not None and key in confirmatory:
                    repeated.append({"section": section, "analysis": entry["analysis"],
                                     "test": _test_label(section, entry),
                                     "confirmatory_analysis": confirmatory[key]})
                else:
                    kept.append(entry)
            entries[:] = kept
        return repeated

    def _alliance_change(self, analysis: ResolvedAnalysis) -> None:
        timepoints = self.plan.alliance_timepoints
        first_last = (timepoints[0], timepoints[-1])
        pairs = [first_last]
        if analysis.spec.options.get("pairs", "all") == "all":
            pairs += [pair for pair in itertools.combinations(timepoints, 2) if pair != first_last]
        scales = analysis.spec.options.get("scales") or self.plan.alliance_scales
        instrument = self.plan.alliance_instrument
        for scale in scales:
            for before, after in pairs:
                first = self.column(str(Measure(instrument, scale, before)))
                second = self.column(str(Measure(instrument, scale, after)))
                entry: dict[str, Any] = {
                    "analysis": analysis.id, "family": analysis.family, "scale": f"{instrument}.{scale}",
                    "from": before, "to": after, "n": int((first.notna() & second.notna()).sum()),
                }
                try:
                    test = _call(entry, stats.paired_ttest, first, second)
                except ValueError as error:
                    entry["skipped"] = _skip_reason(error)
                else:
                    entry.update({key: value for key, value in test.to_dict().items() if key != "confidence"})
                    entry["p_adjusted"] = None
                try:
                    rank = _call(entry, stats.wilcoxon, first, second)
                except ValueError as error:
                    entry["wilcoxon_skipped"] = _skip_reason(error)
                else:
                    entry.update({"wilcoxon_n": rank.n, "wilcoxon_statistic": rank.statistic,
                                  "wilcoxon_p": rank.p, "rank_biserial": rank.rank_biserial,
                                  "wilcoxon_method": rank.method})
                self.sections["alliance_change"].append(entry)

    def _mixed_model(self, analysis: ResolvedAnalysis, measure: str, timepoints: tuple[str, ...],
                     with_arm: bool) -> None:
        formula = analysis.spec.options["formula"]
        of_scale = Measure.parse(measure, timepoint="forbidden")
        data = self.long({t: str(of_scale.at(t)) for t in timepoints}, with_arm=with_arm)
        arms = list(data["arm"].cat.categories) if with_arm else []
        notes: list[str] = []
        if with_arm and len(arms) < 2 and "arm" in formula:
            # a single-arm study: the arm terms are not estimable; say so and fit the time effect alone
            formula = _drop_arm(formula)
            notes.append(f"one arm only ({', '.join(arms) or 'none'}): arm terms removed, fitted {formula!r}")
        entry: dict[str, Any] = {
            "analysis": analysis.id, "measure": measure, "formula": formula,
            "timepoints": list(data["timepoint"].cat.categories),
            "reference": {"timepoint": (list(data["timepoint"].cat.categories) or [None])[0],
                          **({"arm": arms[0] if arms else None} if with_arm else {})},
            "n_obs": int(len(data)), "n_groups": int(data["participant"].nunique()),
        }
        missing_timepoints = [t for t in timepoints if t not in entry["timepoints"]]
        if missing_timepoints:
            notes.append(f"no data at {', '.join(missing_timepoints)}")
        try:
            model = _call(entry, stats.mixedlm, formula, data)
        except ValueError as error:
            entry["skipped"] = _skip_reason(error)
            entry["notes"] = notes
        else:
            result = model.to_dict()
            entry.update({key: result[key] for key in ("n_obs", "n_groups", "converged", "singular", "loglik",
                                                       "reml", "fixed", "varcomp")})
            entry["notes"] = notes + list(result["notes"])
        self.sections["mixed_models"].append(entry)

    def _alliance_mixed_model(self, analysis: ResolvedAnalysis) -> None:
        scales = analysis.spec.options.get("scales") or self.plan.alliance_scales
        for scale in scales:
            self._mixed_model(analysis, f"{self.plan.alliance_instrument}.{scale}",
                              self.plan.alliance_timepoints, with_arm=False)

    def _outcome_mixed_model(self, analysis: ResolvedAnalysis) -> None:
        self._mixed_model(analysis, self.plan.outcome_measure, self.plan.outcome_timepoints, with_arm=True)

    def _correlation(self, analysis: ResolvedAnalysis) -> None:
        method = analysis.spec.options.get("method", self.settings.correlation_method)
        pairs = _pairs(analysis)
        columns = list(dict.fromkeys(name for pair in pairs for name in pair))
        frame = self.frame(columns)
        fiml, fiml_problem = None, None
        if "fiml" in _missing_methods(analysis) and method == "pearson" and pairs:
            try:
                fiml = stats.correlation_matrix(frame, columns, missing="fiml")
            except ValueError as error:
                fiml_problem = _skip_reason(error)
        tipping = set(analysis.measures.get("tipping_point", ()))
        for x_name, y_name in pairs:
            x, y = self.column(x_name), self.column(y_name)
            entry: dict[str, Any] = {"analysis": analysis.id, "family": analysis.family, "x": x_name, "y": y_name,
                                     "method": method, "n": int((x.notna() & y.notna()).sum())}
            by_method: dict[str, dict[str, Any]] = {}
            try:
                result = _call(entry, stats.correlation, x, y, method=method)
            except ValueError as error:
                by_method["pairwise"] = {"n": entry["n"], "skipped": _skip_reason(error)}
            else:
                by_method["pairwise"] = {"n": result.n, "r": result.r, "p": result.p, "ci_low": result.ci_low,
                                         "ci_high": result.ci_high, "p_method": result.p_method}
            if "fiml" in _missing_methods(analysis):
                by_method["fiml"] = self._fiml_pair(fiml, fiml_problem, method, x_name, y_name)
            if "mi" in _missing_methods(analysis):
                others = [name for name in columns if name not in (x_name, y_name)]
                by_method["mi"] = self._mi(entry, method, frame, x_name, y_name, (), others)
            self._place(entry, analysis, by_method, extra=("p_method",))
            if (x_name in tipping or y_name in tipping) and "skipped" not in entry:
                entry["tipping_point"] = self._tipping(entry, frame, x_name, y_name, columns)
            if self.site is not None and analysis.role == "confirmatory" and method == "pearson":
                entry["by_site"] = _call(entry, pool_by_site, x, y, self.site)
            self.sections["correlations"].append(entry)

    def _place(self, entry: dict[str, Any], analysis: ResolvedAnalysis, by_method: dict[str, dict[str, Any]],
               extra: tuple[str, ...] = ()) -> None:
        """The entry's own numbers from its ``missing`` method; the sensitivity methods' beside them."""
        primary = analysis.spec.missing
        own = by_method[primary]
        if "skipped" in own:
            entry["n"] = own.get("n", entry["n"])
            entry["skipped"] = own["skipped"]
        else:
            entry.update({key: own[key] for key in ("n", "r", "p", "ci_low", "ci_high", *extra) if key in own})
            entry["p_adjusted"] = None
        entry["missing"] = primary
        if analysis.spec.missing_sensitivity:
            entry["missing_data"] = {name: by_method[name] for name in analysis.spec.missing_sensitivity}

    @staticmethod
    def _fiml_pair(fiml, problem: str | None, method: str, x: str, y: str) -> dict[str, Any]:
        if method != "pearson":
            return {"skipped": f"full-information ML gives Pearson correlations; this analysis is {method}"}
        if fiml is None:
            return {"skipped": problem or "no data"}
        pair = fiml.pair(x, y)
        return {"n": pair["n"], "r": pair["r"], "se": pair["se"], "z": pair["z"], "p": pair["p"],
                "ci_low": pair["ci_low"], "ci_high": pair["ci_high"], "n_complete_pair": pair["n_complete_pair"],
                "p_method": "Wald z (lavaan's standardizedSolution)"}

    def _mi(self, entry: dict[str, Any], method: str, frame: pd.DataFrame, x: str, y: str,
            covariates, auxiliary) -> dict[str, Any]:
        if method != "pearson":
            return {"skipped": f"multiple imputation is implemented for Pearson correlations; this analysis is {method}"}
        try:
            result = _call(entry, stats.mi_correlation, frame, x, y, covariates=tuple(covariates),
                           auxiliary=tuple(auxiliary), m=self.settings.n_imputations, seed=self.settings.seed)
        except (ValueError, np.linalg.LinAlgError) as error:
            return {"skipped": _skip_reason(error)}
        return {"n": result.n, "n_complete": result.n_complete, "r": result.r, "p": result.p,
                "ci_low": result.ci_low, "ci_high": result.ci_high, "m": result.m, "df": result.df,
                "fmi": result.fmi, "imputation": "chained equations (Bayesian linear regression), Rubin's rules"}

    def _tipping(self, entry: dict[str, Any], frame: pd.DataFrame, x: str, y: str, columns) -> dict[str, Any]:
        # the outcome (the later measure, with the dropout) is the one whose imputed values are shifted
        outcome, other = (y, x) if self.plan.timepoint_order.get(Measure.parse(y).timepoint, 0) >= \
            self.plan.timepoint_order.get(Measure.parse(x).timepoint, 0) else (x, y)
        auxiliary = [name for name in columns if name not in (x, y)]
        try:
            result = _call(entry, stats.tipping_point, frame, other, outcome, auxiliary=tuple(auxiliary),
                           m=self.settings.n_imputations, seed=self.settings.seed)
        except (ValueError, np.linalg.LinAlgError) as error:
            return {"skipped": _skip_reason(error)}
        return result.to_dict()

    def _partial_correlation(self, analysis: ResolvedAnalysis) -> None:
        method = analysis.spec.options.get("method", self.settings.correlation_method)
        covariates = list(analysis.measures["covariates"])
        for x_name, y_name in _pairs(analysis):
            if x_name in covariates or y_name in covariates:
                continue
            data = self.frame([x_name, y_name, *covariates])
            entry: dict[str, Any] = {"analysis": analysis.id, "family": analysis.family, "x": x_name, "y": y_name,
                                     "covariates": covariates, "method": method,
                                     "n": int(data.notna().all(axis=1).sum())}
            by_method: dict[str, dict[str, Any]] = {}
            try:
                result = _call(entry, stats.partial_correlation, data, x_name, y_name, covariates, method=method)
            except ValueError as error:
                by_method["listwise"] = {"n": entry["n"], "skipped": _skip_reason(error)}
            else:
                by_method["listwise"] = {"n": result.n, "r": result.r, "p": result.p, "ci_low": result.ci_low,
                                         "ci_high": result.ci_high, "df": result.df}
            if "mi" in _missing_methods(analysis):
                by_method["mi"] = self._mi(entry, method, data, x_name, y_name, covariates, ())
            self._place(entry, analysis, by_method, extra=("df",))
            self.sections["partial_correlations"].append(entry)

    def _mediation(self, analysis: ResolvedAnalysis) -> None:
        options = analysis.spec.options
        covariates = list(analysis.measures.get("covariates", ()))
        n_boot = options.get("n_boot", self.settings.n_boot)
        ci = options.get("ci", self.settings.bootstrap_ci)
        for x_name, m_name, y_name in itertools.product(analysis.measures["x"], analysis.measures["m"],
                                                        analysis.measures["y"]):
            data = self.frame([x_name, m_name, y_name, *covariates])
            entry: dict[str, Any] = {
                "analysis": analysis.id, "family": analysis.family, "x": x_name, "m": m_name, "y": y_name,
                "covariates": covariates, "n": int(data.notna().all(axis=1).sum()),
                "seed": self.settings.seed,
            }
            by_method: dict[str, dict[str, Any]] = {}
            for missing in _missing_methods(analysis):
                try:
                    result = _call(entry, stats.mediation, data, x_name, m_name, y_name,
                                   covariates=covariates or None, n_boot=n_boot, ci=ci, seed=self.settings.seed,
                                   missing=missing)
                except (ValueError, np.linalg.LinAlgError) as error:
                    by_method[missing] = {"skipped": _skip_reason(error)}
                else:
                    by_method[missing] = result.to_dict()
            own = by_method[analysis.spec.missing]
            if "skipped" in own:
                entry["skipped"] = own["skipped"]
            else:
                entry.update(own)
                entry["p_adjusted"] = None
            entry["missing"] = analysis.spec.missing
            if analysis.spec.missing_sensitivity:
                entry["missing_data"] = {name: by_method[name] for name in analysis.spec.missing_sensitivity}
            self.sections["mediation"].append(entry)

    def _response_remission(self, analysis: ResolvedAnalysis) -> None:
        instrument = self.plan.outcome_instrument
        outcome = Measure.parse(self.plan.outcome_measure, timepoint="forbidden")
        baseline = self.column(str(outcome.at(self.plan.outcome_baseline)))
        groups = [("all", self.wide.index)]
        if len(set(self.arm.dropna())) > 1:
            groups += [(arm, self.arm.index[self.arm == arm]) for arm in self.plan.arms]
        for timepoint in self.plan.follow_ups:
            current = self.column(str(outcome.at(timepoint)))
            responded = instruments.response(baseline, current, instrument)
            remitted = instruments.remission(current, instrument)
            for arm, members in groups:
                response_known = responded.reindex(members).dropna()
                remission_known = remitted.reindex(members).dropna()
                n_response, n_remission = int(response_known.sum()), int(remission_known.sum())
                self.sections["outcomes"].append({
                    "analysis": analysis.id, "measure": self.plan.outcome_measure, "timepoint": timepoint,
                    "arm": arm, "n": int(current.reindex(members).notna().sum()),
                    "n_evaluable_response": int(len(response_known)), "n_response": n_response,
                    "response_pct": 100.0 * n_response / len(response_known) if len(response_known) else None,
                    "n_remission": n_remission,
                    "remission_pct": 100.0 * n_remission / len(remission_known) if len(remission_known) else None,
                })
        self._reliable_change(analysis, groups)

    def _reliable_change(self, analysis: ResolvedAnalysis, groups) -> None:
        """Reliable change of the outcome from baseline (Jacobson & Truax 1991), next to response and remission.

        The norm (SD, reliability) is the protocol's ``reliable_change:`` entry for the outcome
        measure, or the study's own baseline where it says ``study``
        (:func:`alliance.monitoring.change.change_from_baseline`); an unresolvable norm is one
        entry with ``skipped``, never a guess.
        """
        measure = self.plan.outcome_measure
        found = change_from_baseline(self.study.protocol, measure, _long_scores(self.study), self.study.responses)
        norm = found.norm
        used = {"sd": norm.sd, "sd_from": norm.sd_from, "reliability": norm.reliability,
                "reliability_from": norm.reliability_from, "alpha": norm.alpha, "z": norm.z,
                "threshold": norm.threshold,
                "lower_is_better": norm.lower_is_better, "notes": list(norm.notes)}
        if found.status != CHANGE_OK:
            self.sections["reliable_change"].append({"analysis": analysis.id, "measure": measure,
                                                     "baseline": norm.baseline, **used,
                                                     "skipped": "; ".join(found.notes) or found.status})
            return
        table = found.table
        table = table.assign(participant_id=table["participant_id"].astype(str))
        names = {"reliable improvement": "improvement", "no reliable change": "no_change",
                 "reliable deterioration": "deterioration"}
        for timepoint in self.plan.follow_ups:
            rows = table[table["timepoint"] == timepoint]
            for arm, members in groups:
                known = rows[rows["participant_id"].isin(set(members.astype(str))) & rows["category"].notna()]
                n = int(len(known))
                entry: dict[str, Any] = {"analysis": analysis.id, "measure": measure, "baseline": norm.baseline,
                                         "timepoint": timepoint, "arm": arm, "n": n}
                for category, key in names.items():
                    count = int((known["category"] == category).sum())
                    entry[f"n_{key}"] = count
                    entry[f"{key}_pct"] = 100.0 * count / n if n else None
                entry.update(used)
                if norm.cutoff is not None:
                    counts = {name: int((known["clinical_category"] == name).sum())
                              for name in stats.change.CLINICAL_CATEGORIES}
                    entry["clinical"] = {
                        "cutoff": norm.cutoff["cutoff"], "recommended": norm.cutoff["recommended"],
                        "source": norm.cutoff["source"], "counts": counts,
                        "percent": {name: 100.0 * count / n if n else None for name, count in counts.items()},
                    }
                self.sections["reliable_change"].append(entry)

    def _reliability(self, analysis: ResolvedAnalysis) -> None:
        options = analysis.spec.options
        with_omega = options.get("omega", True)
        responses = self.study.responses
        ordered = self.study.protocol.timepoints
        wanted = options.get("instruments")
        if wanted is None:
            wanted = list(dict.fromkeys(i for tp in ordered for i in tp.instruments))
        for instrument_id in wanted:
            definition = instruments.get(instrument_id)
            for timepoint in [tp.id for tp in ordered if instrument_id in tuple(tp.instruments)]:
                rows = responses[(responses["instrument"] == instrument_id) & (responses["timepoint"] == timepoint)]
                items = rows.pivot_table(index=PARTICIPANT, columns="item", values="value", aggfunc="first")
                for scale in definition.scales:
                    if scale.method == "highest_endorsed" or tuple(scale.range) == (0, 1):
                        # a severity level or a 0/1 indicator (C-SSRS), not a sum of items:
                        # internal consistency does not describe it
                        continue
                    scale_items = list(scale.all_items)
                    entry: dict[str, Any] = {"analysis": analysis.id, "instrument": instrument_id,
                                             "scale": scale.id, "timepoint": timepoint, "k": len(scale_items)}
                    if len(scale_items) < 2:
                        entry.update(n=int(items.shape[0]), skipped="a single-item scale has no internal consistency")
                        self.sections["reliability"].append(entry)
                        continue
                    frame = items.reindex(columns=scale_items).astype(float)
                    frame = frame[frame.notna().any(axis=1)]
                    entry["n"] = int(len(frame))
                    reverse = [item.id for item in definition.items if item.reverse and item.id in scale_items]
                    try:
                        alpha = _call(entry, stats.cronbach_alpha, frame, reverse=reverse)
                    except ValueError as error:
                        entry["skipped"] = _skip_reason(error)
                        self.sections["reliability"].append(entry)
                        continue
                    entry.update({"n": alpha.n, "n_complete": alpha.n_complete, "alpha": alpha.alpha,
                                  "std_alpha": alpha.std_alpha, "ci_low": alpha.ci_low, "ci_high": alpha.ci_high})
                    if with_omega:
                        if len(scale_items) < 3:
                            entry["omega_skipped"] = "omega needs at least 3 items"
                        else:
                            try:
                                result = _call(entry, stats.omega, frame, reverse=reverse)
                            except ValueError as error:
                                entry["omega_skipped"] = _skip_reason(error)
                            else:
                                entry.update({"omega_total": result.omega_total, "omega_converged": result.converged})
                    self.sections["reliability"].append(entry)

    def _facilitator_effects(self, analysis: ResolvedAnalysis) -> None:
        from .facilitators import facilitator_effects, facilitator_lists

        participants = self.study.participants.set_index(PARTICIPANT)
        ids = participants["facilitator_ids"] if "facilitator_ids" in participants.columns else \
            pd.Series(None, index=participants.index, dtype=object)
        lists = facilitator_lists(ids).reindex(self.wide.index)
        membership = analysis.spec.options.get("membership", "multiple")
        for x, y in _pairs(analysis):
            entry: dict[str, Any] = {"analysis": analysis.id, "family": analysis.family, "x": x, "y": y}
            try:
                found = _call(entry, facilitator_effects, self.column(x), self.column(y), lists,
                              membership=membership)
            except ValueError as error:
                entry["skipped"] = _skip_reason(error)
            else:
                entry.update(found)
                entry["p"] = found["association"]["x"]["p"]
                entry["p_adjusted"] = None
            self.sections["facilitator_effects"].append(entry)

    def _safety(self, analysis: ResolvedAnalysis) -> None:
        from .safety import (
            adverse_events_by_arm,
            alliance_vs_harm,
            cssrs_worst_by_arm,
            serious_event_listing,
            vital_signs_by_arm,
        )

        events = self.study.adverse_events
        if events is None:
            self.sections["safety"].append({"analysis": analysis.id, "kind": "by_arm",
                                            "skipped": "the study has no adverse-event record (adverse_events.csv)"})
            return
        participants = self.study.participants
        for entry in adverse_events_by_arm(events, participants, self.plan.arms):
            self.sections["safety"].append({"analysis": analysis.id, "kind": "by_arm", **entry})
        for row in serious_event_listing(events, participants):
            self.sections["safety"].append({"analysis": analysis.id, "kind": "serious_event", **row})
        vitals = self.study.vital_signs
        if vitals is not None and len(vitals):
            for entry in vital_signs_by_arm(vitals, participants, self.study.protocol.safety, self.plan.arms):
                self.sections["safety"].append({"analysis": analysis.id, "kind": "vital_signs_by_arm", **entry})
        cssrs = [i for i in self.study.protocol.instruments if i.startswith("cssrs")]
        if cssrs:
            # only the C-SSRS forms are scored here, not every instrument of the study
            responses = self.study.responses[self.study.responses["instrument"].isin(cssrs)]
            scores = score_administrations(self.study.protocol, responses, self.study.participant_ids)
            for entry in cssrs_worst_by_arm(scores, participants, self.plan.arms):
                self.sections["safety"].append({"analysis": analysis.id, "kind": "cssrs_worst_by_arm", **entry})
        first_dose = self._first_dose()
        grades = analysis.spec.options.get("grades", [1])
        for x, grade in itertools.product(analysis.measures.get("x", ()), grades):
            entry: dict[str, Any] = {"analysis": analysis.id, "family": analysis.family, "kind": "alliance_vs_harm"}
            harm = _call(entry, alliance_vs_harm, self.column(x), events, first_dose, alliance_measure=x,
                         min_grade=int(grade))
            entry.update(harm)
            if "point_biserial" in harm:
                entry["p"] = harm["point_biserial"]["p"]
                entry["p_adjusted"] = None
            self.sections["safety"].append(entry)

    def _first_dose(self) -> pd.Series | None:
        """Each participant's first dosing date: dosing_sessions.csv, else the first dosing day's answers."""
        dosing = self.study.dosing_sessions
        if dosing is not None and len(dosing) and "date" in dosing.columns:
            first = dosing.loc[pd.to_numeric(dosing["session"], errors="coerce") == 1]
            return first.set_index(first[PARTICIPANT].astype(str))["date"]
        protocol = self.study.protocol
        session = next((t.id for t in protocol.timepoints if t.dose is not None and t.dose.session == 1), None)
        responses = self.study.responses
        if session is None or "administered_at" not in responses.columns:
            return None
        given = responses[(responses["timepoint"].astype(str) == session) & responses["administered_at"].notna()]
        if given.empty:
            return None
        return given.groupby(given[PARTICIPANT].astype(str))["administered_at"].min()

    def _alliance_agreement(self, analysis: ResolvedAnalysis) -> None:
        from .agreement import alliance_agreement

        protocol = self.study.protocol
        rated = agreement_instrument(analysis.spec, protocol)  # resolved (not None): the plan skips otherwise
        scores = self.study.scores()
        outcomes = {y: self.column(y) for y in analysis.measures.get("y", ())}
        for x in analysis.measures["x"]:
            measure = Measure.parse(x)
            entry: dict[str, Any] = {"analysis": analysis.id, "family": analysis.family, "x": x,
                                     "facilitator": str(Measure(rated, measure.scale, measure.timepoint))}
            if not protocol.administers(measure.timepoint, rated):
                entry["skipped"] = f"the protocol does not give {rated} at {measure.timepoint}"
            elif measure.scale not in {s.id for s in instruments.get(rated).scales}:
                entry["skipped"] = f"{rated} has no scale {measure.scale!r}"
            if "skipped" in entry:
                self.sections["alliance_agreement"].append(entry)
                continue
            mine = scores[(scores["instrument"] == rated) & (scores["timepoint"] == measure.timepoint)]
            ratings = pd.DataFrame({"participant_id": mine["participant_id"].astype(str).to_numpy(),
                                    "rater": mine["rater"].astype(str).to_numpy(),
                                    "score": mine[measure.scale].astype(float).to_numpy()})
            participant = self.column(x)
            participant.index = participant.index.astype(str)
            try:
                found = _call(entry, alliance_agreement, participant, ratings, outcomes)
            except ValueError as error:
                entry["skipped"] = _skip_reason(error)
            else:
                entry.update(found)
                entry["p"] = found["correlation"]["p"]
                entry["p_adjusted"] = None
            self.sections["alliance_agreement"].append(entry)

    # -- multiplicity ---------------------------------------------------------------------------

    def adjust(self) -> dict[str, dict[str, Any]]:
        """Adjust p within each family (across analyses and sections); return the families' members."""
        members: dict[str, list[tuple[dict[str, Any], str]]] = {}
        for section, entries in self.sections.items():
            field = ADJUSTED_FIELD.get(section, "p")
            for entry in entries:
                if not entry.get("family"):
                    continue
                group = members.setdefault(entry["family"], [])
                if entry.get(field) is not None and "skipped" not in entry:
                    group.append((entry, field))
        analyses_of: dict[str, set[str]] = {}
        roles_of: dict[str, str] = {}
        for entries in self.sections.values():
            for entry in entries:
                if entry.get("family"):
                    analyses_of.setdefault(entry["family"], set()).add(entry["analysis"])
                    roles_of[entry["family"]] = entry.get("role", "exploratory")
        families = {}
        for family, entries in members.items():
            raw = [entry[field] for entry, field in entries]
            adjusted = stats.adjust_pvalues(raw, method=self.settings.p_adjust) if raw else []
            for (entry, _), value in zip(entries, adjusted, strict=True):
                entry["p_adjusted"] = float(value)
            # m counts the tests that were computed; skipped ones have no p and do not count
            families[family] = {"method": self.settings.p_adjust, "m": len(raw),
                                "role": roles_of.get(family, "exploratory"),
                                "analyses": sorted(analyses_of[family])}
        for entries in self.sections.values():
            for index, entry in enumerate(entries):
                entries[index] = to_plain(entry)
        return families


_SECTION = {
    "alliance_change": "alliance_change",
    "alliance_mixed_model": "mixed_models",
    "outcome_mixed_model": "mixed_models",
    "correlation": "correlations",
    "partial_correlation": "partial_correlations",
    "mediation": "mediation",
    "response_remission": "outcomes",
    "reliability": "reliability",
    "facilitator_effects": "facilitator_effects",
    "alliance_agreement": "alliance_agreement",
    "safety": "safety",
}


# What makes two entries of a section the same test (for leaving out exploratory repeats).
_TEST_IDENTITY = {  # with the arm: one arm's test is not a repeat of another's
    "correlations": lambda e: (frozenset((e["x"], e["y"])), e.get("method"), e.get("arm")),
    "partial_correlations": lambda e: (frozenset((e["x"], e["y"])), tuple(sorted(e.get("covariates", ()))),
                                       e.get("method"), e.get("arm")),
    "alliance_change": lambda e: (e["scale"], e["from"], e["to"], e.get("arm")),
    "mediation": lambda e: (e["x"], e["m"], e["y"], tuple(e.get("covariates", ())), e.get("arm")),
}


def _identifiable(entry: Mapping[str, Any]) -> bool:
    """A test entry (also a skipped one), not the one-line entry of an analysis skipped as a whole."""
    return "x" in entry or "scale" in entry


def _test_label(section: str, entry: Mapping[str, Any]) -> str:
    if section == "alliance_change":
        return f"{entry['scale']}: {entry['from']} -> {entry['to']}"
    if section == "mediation":
        return f"{entry['x']} -> {entry['m']} -> {entry['y']}"
    return f"{entry['x']} ~ {entry['y']}"


def _long_scores(study) -> pd.DataFrame:
    """The study's scale scores as ``participant_id, timepoint, instrument, scale, value`` (protocol timepoints)."""
    long = study.measures(wide=False)
    if long.empty:
        return pd.DataFrame(columns=["participant_id", "timepoint", "instrument", "scale", "value"])
    parsed = {name: Measure.parse(name) for name in long["measure"].astype(str).unique()}
    names = long["measure"].astype(str)
    return pd.DataFrame({"participant_id": long["participant_id"].astype(str).to_numpy(),
                         "timepoint": names.map(lambda name: parsed[name].timepoint).to_numpy(),
                         "instrument": names.map(lambda name: parsed[name].instrument).to_numpy(),
                         "scale": names.map(lambda name: parsed[name].scale).to_numpy(),
                         "value": pd.to_numeric(long["value"], errors="coerce").to_numpy()})


def _missing_methods(analysis: ResolvedAnalysis) -> tuple[str, ...]:
    """The analysis's own missing-data method and its sensitivity methods, in that order."""
    return (analysis.spec.missing, *analysis.spec.missing_sensitivity)


def _pairs(analysis: ResolvedAnalysis) -> list[tuple[str, str]]:
    """Every x × y pair of an analysis, without a measure paired with itself."""
    return [(x, y) for x in analysis.measures["x"] for y in analysis.measures["y"] if x != y]


def _drop_arm(formula: str) -> str:
    """``value ~ timepoint * arm + (1|participant)`` → ``value ~ timepoint + (1|participant)``."""
    lhs, rhs = formula.split("~", 1)
    terms = []
    depth, current = 0, ""
    for char in rhs:
        depth += (char == "(") - (char == ")")
        if char == "+" and depth == 0:
            terms.append(current.strip())
            current = ""
        else:
            current += char
    terms.append(current.strip())
    kept = []
    for term in terms:
        if term.startswith("("):
            kept.append(term)
            continue
        factors = [f.strip() for f in term.replace("*", ":").split(":") if f.strip() != "arm"]
        if factors:
            kept.append(":".join(factors))
    return f"{lhs.strip()} ~ {' + '.join(dict.fromkeys(kept))}"
