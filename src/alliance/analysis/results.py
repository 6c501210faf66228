"""The results of an analysis run: one frozen dataclass, sections of JSON-ready records.

Every entry is a plain mapping (the record written to ``results.json``), so the report can be
rendered from a ``Results`` in memory or from a ``results.json`` read back, and the web app and the
CLI show the same numbers. Entries whose analysis could not run carry ``"skipped": "<reason>"``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

__all__ = ["SECTIONS", "Results"]

SECTIONS = (
    "alliance_change",
    "correlations",
    "partial_correlations",
    "mediation",
    "mixed_models",
    "outcomes",
    "reliable_change",
    "reliability",
    "facilitator_effects",
    "alliance_agreement",
    "safety",
    "deviations",
    "provenance",
)
# Sections that results.json files written before they existed lack (read back as empty).
_ADDED_LATER = ("deviations", "facilitator_effects", "alliance_agreement", "reliable_change", "safety")


@dataclass(frozen=True)
class Results:
    """Everything :func:`alliance.analysis.run_analysis` found, by section.

    Attributes
    ----------
    alliance_change : tuple of dict
        Paired t-test and Wilcoxon test of each alliance scale between two timepoints:
        ``analysis, family, scale, from, to, n, mean_diff, t, df, p, p_adjusted, cohen_dz,
        cohen_dav, ci_low, ci_high, wilcoxon_n, wilcoxon_statistic, wilcoxon_p, rank_biserial``.
    correlations : tuple of dict
        ``analysis, family, x, y, method, n, r, p, p_adjusted, ci_low, ci_high, p_method``.
    partial_correlations : tuple of dict
        As ``correlations`` plus ``covariates`` and ``df``.
    mediation : tuple of dict
        ``analysis, family, x, m, y, n, a, b, c_prime, total, indirect, indirect_se,
        indirect_ci_low, indirect_ci_high, p_indirect, p_adjusted, n_boot, ci_method, seed``.
    mixed_models : tuple of dict
        ``analysis, measure, formula, timepoints, reference, n_obs, n_groups, converged, singular,
        loglik, fixed`` (records: term, estimate, se, df, t, p), ``varcomp``, ``notes``.
    outcomes : tuple of dict
        Response and remission per follow-up and arm: ``analysis, measure, timepoint, arm, n,
        n_evaluable_response, n_response, response_pct, n_remission, remission_pct``.
    reliable_change : tuple of dict
        Reliable change (Jacobson & Truax 1991) of the outcome from baseline, per follow-up and arm
        (:mod:`alliance.monitoring.change`, with the protocol's ``reliable_change:`` norm):
        ``analysis, measure, baseline, timepoint, arm, n`` (pre and post both present),
        ``n_improvement, improvement_pct, n_no_change, no_change_pct, n_deterioration,
        deterioration_pct``, the norm used ``sd, sd_from, reliability, reliability_from, alpha, z,
        threshold, lower_is_better, notes``, and with the protocol's norms ``clinical`` (``cutoff``,
        ``recommended``, ``source``, ``counts`` and ``percent`` of recovered, improved, unchanged,
        deteriorated). One entry with ``skipped`` when the norm could not be resolved.
    reliability : tuple of dict
        ``analysis, instrument, scale, timepoint, k, n, n_complete, alpha, std_alpha, ci_low,
        ci_high, omega_total, omega_converged``.
    facilitator_effects : tuple of dict
        Per alliance measure × outcome (:mod:`alliance.analysis.facilitators`): ``analysis, x, y,
        n, n_facilitators, participants_per_facilitator, membership, icc_x, icc_y, association``
        (its ``x`` row), ``association_alternative``, ``decomposition`` (``x_within``,
        ``x_between``), ``effects`` (facilitator, condval, condsd, n), ``notes``, ``p`` (of the
        association) and ``p_adjusted``.
    alliance_agreement : tuple of dict
        Per participant alliance measure (:mod:`alliance.analysis.agreement`): ``analysis, x,
        facilitator`` (the facilitator-rated measure), ``n, n_dyads, n_facilitators,
        participant_mean, facilitator_mean, correlation, dyad_correlation, mean_difference``
        (with limits of agreement), ``discrepancy`` (per outcome: ``level`` and ``discrepancy``
        coefficients), ``notes``, ``p`` (of the correlation) and ``p_adjusted``.
    safety : tuple of dict
        The safety analysis (:mod:`alliance.analysis.safety`), entries by ``kind``: ``by_arm``
        (adverse events per arm and ``all``), ``serious_event`` (the listing), ``alliance_vs_harm``
        (exploratory: point-biserial r and Firth logistic regression); one entry with ``skipped``
        when the study has no adverse-event record.
    deviations : tuple of dict
        One per administration off schedule and kind (:mod:`alliance.monitoring.deviations`):
        ``participant_id, timepoint, instrument, administered_at, kind, window_open, window_close,
        reason, action`` (``excluded``: its scores counted as missing in every analysis, as the
        protocol's ``deviations:`` section says; ``included``: analysed as scheduled).
    provenance : dict
        ``package, version, created_utc, seed, protocol_sha256, protocol_id, inputs`` (name →
        sha256), ``p_adjust, families`` and the resolved ``plan`` (with measures it ``dropped``).
    """

    alliance_change: tuple[dict[str, Any], ...] = ()
    correlations: tuple[dict[str, Any], ...] = ()
    partial_correlations: tuple[dict[str, Any], ...] = ()
    mediation: tuple[dict[str, Any], ...] = ()
    mixed_models: tuple[dict[str, Any], ...] = ()
    outcomes: tuple[dict[str, Any], ...] = ()
    reliable_change: tuple[dict[str, Any], ...] = ()
    reliability: tuple[dict[str, Any], ...] = ()
    facilitator_effects: tuple[dict[str, Any], ...] = ()
    alliance_agreement: tuple[dict[str, Any], ...] = ()
    safety: tuple[dict[str, Any], ...] = ()
    deviations: tuple[dict[str, Any], ...] = ()
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The sections of ``results.json``, in order (deep copies, JSON-safe)."""
        out: dict[str, Any] = {}
        for name in SECTIONS:
            value = getattr(self, name)
            out[name] = copy.deepcopy(list(value) if isinstance(value, tuple) else value)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Results:
        """Rebuild from the mapping of :meth:`to_dict` (e.g. a ``results.json`` read back)."""
        missing = [name for name in SECTIONS if name not in data and name not in _ADDED_LATER]
        if missing:
            raise ValueError(f"results are missing section(s) {missing}; sections are {', '.join(SECTIONS)}")
        return cls(
            **{name: tuple(data.get(name, ())) for name in SECTIONS if name != "provenance"},
            provenance=dict(data["provenance"]),
        )

    def table(self, section: str) -> pd.DataFrame:
        """One section (not ``provenance``) as a DataFrame, one row per entry, columns as the records."""
        if section not in SECTIONS or section == "provenance":
            raise ValueError(f"unknown section {section!r}; sections are {', '.join(SECTIONS[:-1])}")
        return pd.DataFrame.from_records(list(getattr(self, section)))

    def find(self, section: str, **where: Any) -> list[dict[str, Any]]:
        """Entries of a section whose fields equal ``where`` (e.g. ``x="wai_sr.total@prep"``)."""
        return [entry for entry in getattr(self, section)
                if all(entry.get(key) == value for key, value in where.items())]
