"""The ``expected_response:`` section of a protocol: expected-response curves for one participant.

Which scales are watched against an expected trajectory, with which reference data and at which
level of the band; the curves themselves are fitted and evaluated by
:mod:`alliance.monitoring.expected` (schema and method: ``docs/monitor.md``, "Expected-response
curves").

Schema::

    expected_response:
      reference: synthetic          # synthetic | study | <path of a tidy long-scores CSV>
      level: 0.95                   # coverage of the band, strictly between 0 and 1
      min_reference_participants: 20   # `study`: fewest completed participants to use the study
      calibration: empirical        # empirical | normal: how the band's width is set (below)
      measures: [wai_sr.total, grid_hamd17.total]   # INSTRUMENT.SCALE; omitted: the plan's roles

``measures`` left out means the analysis plan's alliance total (the alliance role's instrument,
its first scale) and its outcome measure, each where the protocol administers it at two
timepoints or more (a curve needs a first score and a later one). A protocol without the section
gets the default protocol's, which leaves ``measures`` out. ``calibration: empirical`` (the
default) sets the band from the empirical quantiles of the reference's own standardized
residuals when the reference has enough participants for them, and uses the normal band
(mean ± z·sd) with a note otherwise; ``calibration: normal`` always uses the normal band. A file
path is kept as written; the caller resolves a relative path against the study folder (the
protocol is data, not I/O).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .design import Design
from .errors import Reader
from .measure import Measure

__all__ = ["CALIBRATIONS", "REFERENCE_KINDS", "ExpectedResponseConfig", "read_expected_response"]

# Reference data sets with a name; anything else given as `reference` is a file path.
REFERENCE_KINDS = ("synthetic", "study")
# How the band's width is set (alliance.monitoring.expected): empirical quantiles of standardized
# residuals, or the normal quantile.
CALIBRATIONS = ("empirical", "normal")
_KEYS = ("reference", "level", "min_reference_participants", "calibration", "measures")


@dataclass(frozen=True)
class ExpectedResponseConfig:
    """The protocol's ``expected_response:`` section, checked and resolved.

    Attributes
    ----------
    reference : str
        ``synthetic`` (the calibrated synthetic trial shipped with the package), ``study`` (the
        study's own completed participants) or the path of a reference CSV (as written).
    level : float
        Coverage of the prediction band (0.95: a 95% band).
    min_reference_participants : int
        With ``reference: study``: the fewest completed participants with which the study's own
        data are used; with fewer the curves use the synthetic reference and say so.
    measures : tuple of str
        ``INSTRUMENT.SCALE`` of every monitored scale, in the order given (resolved from the
        plan's roles when the file leaves them out).
    calibration : str
        ``empirical`` (default): the band's limits are the empirical quantiles of the reference's
        standardized residuals, when the reference has enough participants (otherwise the normal
        band, said in the result's notes); ``normal``: mean ± z·sd.
    """

    reference: str = "synthetic"
    level: float = 0.95
    min_reference_participants: int = 20
    measures: tuple[str, ...] = ()
    calibration: str = "empirical"

    @property
    def reference_kind(self) -> str:
        """``synthetic``, ``study`` or ``file``."""
        return self.reference if self.reference in REFERENCE_KINDS else "file"

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "level": self.level,
                "min_reference_participants": self.min_reference_participants, "calibration": self.calibration,
                "measures": list(self.measures)}


def read_expected_response(r: Reader, raw: Any, design: Design, roles: dict[str, dict[str, Any]] | None,
                           default: Any = None) -> ExpectedResponseConfig:
    """Read and check a protocol's ``expected_response:`` section.

    Parameters
    ----------
    r : Reader
        Problems are recorded here, with YAML paths starting at ``expected_response``.
    raw : mapping or None
        The section as written; ``None``: the default protocol's section (``default``).
    design : Design
        Measures are checked against the bank and this design.
    roles : dict or None
        The analysis plan's roles (:attr:`alliance.protocol.AnalysisPlan.roles`), which name the
        default measures.
    default : mapping or None
        The default protocol's section (``None`` while reading the default protocol itself).

    Returns
    -------
    ExpectedResponseConfig
        Meaningful only when ``r`` recorded no problem.
    """
    key = "expected_response"
    if raw is None:
        raw = default if default is not None else {}
    section = r.mapping(raw, key, _KEYS, ())
    reference = section.get("reference", "synthetic")
    if not isinstance(reference, str) or not reference.strip():
        r.problem(f"{key}.reference", reference, "is not a reference",
                  "synthetic, study, or the path of a reference CSV file")
        reference = "synthetic"
    level = section.get("level", 0.95)
    checked = r.number(level, f"{key}.level", "a number strictly between 0 and 1, e.g. 0.95")
    if checked is not None and not 0.0 < checked < 1.0:
        r.problem(f"{key}.level", level, "is not strictly between 0 and 1", "e.g. 0.95")
    minimum = r.integer(section.get("min_reference_participants"), f"{key}.min_reference_participants", 20,
                        minimum=3, what="a whole number of participants ≥ 3")
    calibration = section.get("calibration", "empirical")
    if not r.choice(calibration, f"{key}.calibration", CALIBRATIONS):
        calibration = "empirical"
    measures: list[str] = []
    if section.get("measures") is not None:
        for index, value in enumerate(r.listing(section["measures"], f"{key}.measures",
                                                "a list of INSTRUMENT.SCALE names", non_empty=True)):
            measure = r.measure(value, f"{key}.measures[{index}]", design=design)
            if measure is None:
                continue
            if len(design.timepoints_with(measure.instrument)) < 2:
                r.problem(f"{key}.measures[{index}]", value,
                          f"protocol {design.id} gives {measure.instrument} at fewer than two timepoints",
                          "a scale given at two timepoints or more (a first score and a later one)")
                continue
            measures.append(f"{measure.instrument}.{measure.scale}")
    else:
        measures = default_measures(design, roles)
    return ExpectedResponseConfig(reference=reference.strip(), level=float(checked or 0.95),
                                  min_reference_participants=int(minimum), measures=tuple(measures),
                                  calibration=calibration)


def default_measures(design: Design, roles: dict[str, dict[str, Any]] | None) -> list[str]:
    """The plan's alliance total and outcome, where the design gives each at two timepoints or more."""
    roles = roles or {}
    out: list[Measure] = []
    alliance = roles.get("alliance") or {}
    if alliance.get("instrument"):
        scales = alliance.get("scales") or ["total"]
        out.append(Measure(str(alliance["instrument"]), str(scales[0])))
    outcome = (roles.get("outcome") or {}).get("measure")
    if outcome:
        out.append(Measure.parse(str(outcome), timepoint="optional"))
    return [f"{m.instrument}.{m.scale}" for m in out if len(design.timepoints_with(m.instrument)) >= 2]
