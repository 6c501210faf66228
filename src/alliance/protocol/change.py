"""The ``reliable_change:`` section of a protocol: the reference SD and reliability of each scale.

Reliable change (Jacobson & Truax 1991; :func:`alliance.stats.reliable_change`) needs, per scale,
a standard deviation and a reliability, and clinical significance
(:func:`alliance.stats.clinical_significance`) the norms of a dysfunctional and a functional
population. They are facts about the scale that come from somewhere, so the protocol names them
with their source. Either may be ``study``: the study's own baseline SD, or Cronbach's alpha of the
study's own baseline item answers (:func:`alliance.stats.cronbach_alpha`), resolved from the data by
:mod:`alliance.monitoring.change` (which also refuses to do so on too few participants).

Schema (``docs/protocol.md``, "Reliable change")::

    reliable_change:
      alpha: 0.05                 # two-sided level of the criterion (z = 1.96)
      min_n: 10                   # fewest baseline scores for a `study` SD or reliability
      measures:
        grid_hamd17.total:        # INSTRUMENT.SCALE of an instrument the protocol gives
          lower_is_better: true   # required: is a decrease an improvement?
          sd: 3.9                 # a number > 0, or `study`
          reliability: study      # a number in [0, 1), or `study`
          source: Davis et al. 2021 ...   # required: where the numbers come from
          norms:                  # optional, for clinical significance
            dysfunctional: {mean: 22.8, sd: 3.9}
            functional: {mean: 5, sd: 3}  # optional
            source: ...           # required with norms

A protocol without the section gets the default protocol's entries (``levin2024.yaml``) for the
measures whose instrument it administers; a protocol with the section has exactly the measures it
lists, and ``alpha`` and ``min_n`` default to 0.05 and 10. Measures are checked against the
instrument bank; an entry for an instrument the protocol does not administer is kept and unused.

References
----------
Jacobson NS, Truax P (1991). Clinical significance: a statistical approach to defining meaningful
change in psychotherapy research. J Consult Clin Psychol 59(1):12-19.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .design import Design
from .errors import Reader
from .measure import Measure, MeasureNameError

__all__ = ["DEFAULT_ALPHA", "DEFAULT_MIN_N", "STUDY", "ChangeNorm", "ClinicalNorms", "ReliableChangeConfig",
           "read_reliable_change"]

STUDY = "study"
DEFAULT_ALPHA = 0.05
# The fewest baseline scores from which the study's own SD or alpha is used. Ten is our choice:
# an SD or an alpha from fewer participants is too uncertain to set a threshold for each of them.
DEFAULT_MIN_N = 10
_TOP_KEYS = ("alpha", "min_n", "measures")
_MEASURE_KEYS = ("lower_is_better", "sd", "reliability", "source", "norms")
_NORM_KEYS = ("dysfunctional", "functional", "source")


@dataclass(frozen=True)
class ClinicalNorms:
    """Norms for the Jacobson–Truax cut-offs (``norms:`` of a measure).

    Attributes
    ----------
    dysfunctional_mean, dysfunctional_sd : float
    functional_mean, functional_sd : float or None
        ``None`` without functional norms (then only cut-off a can be computed).
    source : str
    """

    dysfunctional_mean: float
    dysfunctional_sd: float
    functional_mean: float | None = None
    functional_sd: float | None = None
    source: str = ""


@dataclass(frozen=True)
class ChangeNorm:
    """The reference values of one measure (``measures.<INSTRUMENT.SCALE>``).

    Attributes
    ----------
    measure : str
        ``INSTRUMENT.SCALE``, e.g. ``grid_hamd17.total``.
    lower_is_better : bool
    sd : float or str
        A number, or ``"study"`` (the study's baseline SD).
    reliability : float or str
        A number in [0, 1), or ``"study"`` (Cronbach's alpha of the study's baseline items).
    source : str
        Where the numbers come from.
    norms : ClinicalNorms or None
    """

    measure: str
    lower_is_better: bool
    sd: float | str
    reliability: float | str
    source: str
    norms: ClinicalNorms | None = None

    @property
    def instrument(self) -> str:
        return Measure.parse(self.measure, timepoint="forbidden").instrument

    @property
    def scale(self) -> str:
        return Measure.parse(self.measure, timepoint="forbidden").scale


@dataclass(frozen=True)
class ReliableChangeConfig:
    """The protocol's ``reliable_change:`` section, checked.

    Attributes
    ----------
    measures : dict
        ``INSTRUMENT.SCALE`` → :class:`ChangeNorm`, in the order of the file.
    alpha : float
        Two-sided level of the criterion.
    min_n : int
        Fewest baseline scores for a ``study`` SD or reliability.
    """

    measures: dict[str, ChangeNorm] = field(default_factory=dict)
    alpha: float = DEFAULT_ALPHA
    min_n: int = DEFAULT_MIN_N

    def norm(self, measure: str) -> ChangeNorm:
        """The entry of ``measure``; ``KeyError`` naming the measures that have one."""
        try:
            return self.measures[str(measure)]
        except KeyError:
            raise KeyError(f"the protocol's reliable_change section has no entry for {measure!r}; it has "
                           f"{', '.join(self.measures) or 'none'}") from None


def read_reliable_change(r: Reader, raw: Any, design: Design,
                         default: Mapping[str, Any] | None) -> ReliableChangeConfig:
    """Read and check a protocol's ``reliable_change:`` section, filled in from the default protocol's.

    Parameters
    ----------
    r : Reader
        Problems are recorded here, with YAML paths starting at ``reliable_change``.
    raw : mapping or None
        The section as written; ``None`` when the protocol has none.
    design : Design
        Without the section, the default entries of instruments this design gives are kept.
    default : mapping or None
        The default protocol's section (``None`` while reading the default protocol itself).

    Returns
    -------
    ReliableChangeConfig
        Meaningful only when ``r`` recorded no problem.
    """
    if raw is None and default is not None:
        # The default entries, less those about an instrument this protocol never administers.
        raw = dict(default)
        raw["measures"] = {name: entry for name, entry in (default.get("measures") or {}).items()
                           if _instrument_of(name) in design.instruments}
    if raw is None:
        return ReliableChangeConfig()
    before = len(r.problems)
    section = r.mapping(raw, "reliable_change", _TOP_KEYS, ())
    alpha = section.get("alpha", DEFAULT_ALPHA)
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        r.problem("reliable_change.alpha", alpha, "is not a level strictly between 0 and 1", "e.g. 0.05")
    min_n = r.integer(section.get("min_n"), "reliable_change.min_n", DEFAULT_MIN_N, minimum=3,
                      what="a whole number of participants ≥ 3")
    measures_raw = section.get("measures")
    if measures_raw is None:
        measures_raw = {}
    if not isinstance(measures_raw, Mapping):
        r.problem("reliable_change.measures", None, f"expected a mapping, found {type(measures_raw).__name__}",
                  "a mapping of INSTRUMENT.SCALE to {lower_is_better, sd, reliability, source}")
        measures_raw = {}
    measures = {}
    for name, entry in measures_raw.items():
        norm = _read_measure(r, name, entry, design)
        if norm is not None:
            measures[norm.measure] = norm
    if len(r.problems) > before:
        return ReliableChangeConfig()
    return ReliableChangeConfig(measures=measures, alpha=float(alpha), min_n=min_n)


def _instrument_of(name: Any) -> str | None:
    try:
        return Measure.parse(name, timepoint="forbidden").instrument
    except MeasureNameError:
        return None


def _read_measure(r: Reader, name: Any, entry: Any, design: Design) -> ChangeNorm | None:
    key = f"reliable_change.measures.{name}"
    # Checked against the instrument bank, not the design: a norm for a scale this protocol does not
    # give is a fact about that scale, kept and unused (one list of norms can serve several protocols,
    # and a protocol that drops an instrument need not edit this section).
    measure = r.measure(name, key, timepoint="forbidden")
    entry = r.mapping(entry, key, _MEASURE_KEYS, ("source",),
                      what="lower_is_better, sd, reliability, source and optionally norms")
    if not entry:
        return None
    lower = entry.get("lower_is_better")
    if lower is None:
        r.problem(f"{key}.lower_is_better", None, "is required",
                  "true when a decrease is an improvement (GRID-HAMD), false when an increase is (WAI-SR)")
    else:
        r.boolean(lower, f"{key}.lower_is_better")
    sd = _study_or_number(r, entry.get("sd"), f"{key}.sd", lambda v: v > 0,
                          "a number greater than 0 (points), or study (the study's baseline SD)")
    reliability = _study_or_number(r, entry.get("reliability"), f"{key}.reliability", lambda v: 0 <= v < 1,
                                   "a number in [0, 1) (0 ≤ reliability < 1), or study (Cronbach's alpha of the "
                                   "study's baseline items)")
    source = entry.get("source")
    if source is not None and not isinstance(source, str):
        r.problem(f"{key}.source", source, "is not text", "where the SD and reliability come from")
    norms = _read_norms(r, entry.get("norms"), f"{key}.norms")
    if measure is None or sd is None or reliability is None or not isinstance(lower, bool):
        return None
    return ChangeNorm(measure=str(measure), lower_is_better=lower, sd=sd, reliability=reliability,
                      source=" ".join(str(source or "").split()), norms=norms)


def _study_or_number(r: Reader, value: Any, key: str, in_range, allowed: str) -> float | str | None:
    if value is None:
        r.problem(key, None, "is required", allowed)
        return None
    if value == STUDY:
        return STUDY
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not in_range(value):
        r.problem(key, value, "is not study or a number in range", allowed)
        return None
    return float(value)


def _read_norms(r: Reader, raw: Any, key: str) -> ClinicalNorms | None:
    if raw is None:
        return None
    section = r.mapping(raw, key, _NORM_KEYS, ("dysfunctional", "source"),
                        what="dysfunctional: {mean, sd}, optionally functional: {mean, sd}, and source")
    if not section:
        return None
    if section.get("source") is not None and not isinstance(section.get("source"), str):
        r.problem(f"{key}.source", section["source"], "is not text", "where the norms come from")
    values = {}
    for group in ("dysfunctional", "functional"):
        given = section.get(group)
        if given is None:
            continue
        pair = r.mapping(given, f"{key}.{group}", ("mean", "sd"), ("mean", "sd"), what="mean and sd")
        if not pair:
            continue
        mean = r.number(pair.get("mean"), f"{key}.{group}.mean", "a number (points)") \
            if pair.get("mean") is not None else None
        sd = pair.get("sd")
        if sd is not None and (isinstance(sd, bool) or not isinstance(sd, int | float) or not math.isfinite(sd)
                               or sd <= 0):
            r.problem(f"{key}.{group}.sd", sd, "is not a number greater than 0", "an SD in points, > 0")
            sd = None
        if mean is not None and sd is not None:
            values[group] = (float(mean), float(sd))
    if "dysfunctional" not in values:
        return None
    functional = values.get("functional", (None, None))
    return ClinicalNorms(dysfunctional_mean=values["dysfunctional"][0], dysfunctional_sd=values["dysfunctional"][1],
                         functional_mean=functional[0], functional_sd=functional[1],
                         source=" ".join(str(section.get("source") or "").split()))
