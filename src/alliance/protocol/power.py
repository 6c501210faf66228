"""The ``power:`` section of a protocol: the tests whose power ``alliance power`` simulates.

In the vocabulary of the analysis plan: each test has a ``type`` (``correlation``, ``paired``,
``mixed_model``, ``mediation``) and its measures as ``x``, ``y`` (and ``m``), named
``INSTRUMENT.SCALE@TIMEPOINT``; a ``mixed_model`` test names a scale (``y: wai_sr.total``) and
optionally its ``timepoints``. ``test:`` is read as a synonym of ``type:`` (the key of earlier
scenario files). Section options: ``alpha``, ``distribution``, ``mediation_ci``, ``n_boot``.

A protocol without the section gets the default protocol's tests, less those whose measures it
does not administer. At load a test's measures are checked against the instrument bank; whether
the protocol gives each one at its timepoint is checked when the power is simulated
(:mod:`alliance.simulate.power`, which names the measures its score model has).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .design import Design
from .errors import Reader
from .measure import Measure

__all__ = ["DISTRIBUTIONS", "MEDIATION_CI", "POWER_OPTIONS", "TESTS", "PowerSpec", "PowerTest", "read_power",
           "read_test"]

TESTS = ("correlation", "paired", "mixed_model", "mediation")
DISTRIBUTIONS = ("beta", "normal")
MEDIATION_CI = ("monte_carlo", "bootstrap")
POWER_OPTIONS = ("tests", "alpha", "distribution", "mediation_ci", "n_boot")
_TEST_KEYS = {"correlation": ("x", "y"), "paired": ("x", "y"), "mixed_model": ("x", "y", "timepoints"),
              "mediation": ("x", "m", "y")}
_REQUIRED = {"correlation": ("x", "y"), "paired": ("x", "y"), "mixed_model": ("y",), "mediation": ("x", "m", "y")}


@dataclass(frozen=True)
class PowerTest:
    """One planned test whose power is simulated.

    Attributes
    ----------
    test : str
        ``"correlation"``, ``"paired"``, ``"mixed_model"`` or ``"mediation"``.
    x : str
        Correlation: the first measure; paired: the measure before; mediation: the predictor;
        mixed model: ``"time"``.
    y : str
        Correlation: the second measure; paired: the measure after; mediation: the outcome;
        mixed model: the scale (``INSTRUMENT.SCALE``, e.g. ``wai_sr.total``).
    m : str, optional
        Mediation: the mediator.
    timepoints : tuple of str
        Mixed model: the timepoints, in order (time = 0, 1, 2 …).
    """

    test: str
    x: str
    y: str
    m: str | None = None
    timepoints: tuple[str, ...] = ()

    @property
    def measures(self) -> tuple[str, ...]:
        """The measures (``INSTRUMENT.SCALE@TIMEPOINT``) the test uses."""
        if self.test == "mixed_model":
            scale = Measure.parse(self.y, timepoint="forbidden")
            return tuple(str(scale.at(t)) for t in self.timepoints)
        if self.test == "mediation":
            return (self.x, self.m, self.y)
        return (self.x, self.y)

    @property
    def label(self) -> str:
        """A short name, e.g. ``correlation wai_sr.total@prep ~ grid_hamd17.total@week4``."""
        if self.test == "mixed_model":
            return f"mixed_model {self.y} ~ time ({', '.join(self.timepoints)})"
        if self.test == "mediation":
            return f"mediation {self.x} → {self.m} → {self.y}"
        arrow = "→" if self.test == "paired" else "~"
        return f"{self.test} {self.x} {arrow} {self.y}"

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> PowerTest:
        """Back from :meth:`to_dict` (or a ``power.json`` entry: keys other than the test's are ignored)."""
        return cls(raw.get("test") or raw["type"], raw["x"], raw["y"], raw.get("m"), tuple(raw.get("timepoints") or ()))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"test": self.test, "x": self.x, "y": self.y}
        if self.m is not None:
            out["m"] = self.m
        if self.timepoints:
            out["timepoints"] = list(self.timepoints)
        return out


@dataclass(frozen=True)
class PowerSpec:
    """The ``power:`` section: the tests and the options of the simulation.

    A ``mixed_model`` test without ``timepoints`` has them left to the simulation, which takes
    every timepoint whose measure its score model has (in protocol order).
    """

    tests: tuple[PowerTest, ...]
    alpha: float = 0.05
    distribution: str = "beta"
    mediation_ci: str = "monte_carlo"
    n_boot: int = 1000

    def options(self) -> dict[str, Any]:
        """``alpha``, ``distribution``, ``mediation_ci`` and ``n_boot`` as keyword arguments."""
        return {"alpha": self.alpha, "distribution": self.distribution, "mediation_ci": self.mediation_ci,
                "n_boot": self.n_boot}


def read_test(r: Reader, raw: Any, where: str, design: Design | None = None,
              administered: bool = False) -> dict[str, Any] | None:
    """Check one power test: its shape, and with a design its measures.

    Parameters
    ----------
    r : Reader
    raw : mapping or PowerTest
    where : str
        Its YAML path, e.g. ``power.tests[2]``.
    design : Design, optional
        Measures are checked against the instrument bank (instrument, scale).
    administered : bool
        Also require that the design administers each measure's instrument at its timepoint (and
        has a mixed model's timepoints).
        Without it that is left to the simulation, which says which measures its score model
        has (as the analysis plan leaves it to its resolution), so that a protocol derived from
        another by dropping an instrument or a timepoint still loads.

    Returns
    -------
    dict or None
        The test as a mapping with the key ``test`` (``type`` read as its synonym); ``None``
        when it has a problem.
    """
    if isinstance(raw, PowerTest):
        return raw.to_dict()
    if not isinstance(raw, Mapping):
        r.problem(where, raw, "is not a test", "a mapping such as {type: correlation, x: …, y: …}")
        return None
    entry = dict(raw)
    if "type" in entry and "test" in entry:
        r.problem(f"{where}.test", entry["test"], "is given together with type", "type (or its synonym test) once")
        return None
    kind = entry.pop("type", entry.get("test"))
    entry = {"test": kind, **{k: v for k, v in entry.items() if k != "test"}}
    if kind not in TESTS:
        r.problem(f"{where}.type", kind, "is not a test type", ", ".join(TESTS))
        return None
    before = len(r.problems)
    allowed = ("test", "type", *_TEST_KEYS[kind])
    for unknown in sorted(set(raw) - set(allowed)):
        r.problem(f"{where}.{unknown}", None, f"is not a key of a {kind} test", ", ".join(allowed))
    for key in _REQUIRED[kind]:
        if not isinstance(entry.get(key), str) or not entry[key]:
            r.problem(f"{where}.{key}", entry.get(key), f"is missing; a {kind} test needs it",
                      ", ".join(_REQUIRED[kind]))
    if len(r.problems) > before or design is None:
        return None if len(r.problems) > before else entry
    if kind == "mixed_model":
        r.measure(entry["y"], f"{where}.y", "forbidden", design if administered else None)
        timepoints = r.id_list(entry.get("timepoints"), f"{where}.timepoints")
        for i, timepoint in enumerate(timepoints if administered else ()):
            if timepoint not in design.timepoint_ids:  # a mixed model runs over real timepoints
                r.problem(f"{where}.timepoints[{i}]", timepoint, "is not a timepoint", ", ".join(design.timepoint_ids))
    else:
        for key in _REQUIRED[kind]:
            r.measure(entry[key], f"{where}.{key}", "required", design if administered else None)
    return None if len(r.problems) > before else entry


def read_power(r: Reader, raw: Any, design: Design, default: Mapping[str, Any] | None) -> PowerSpec:
    """Read and check a protocol's ``power:`` section, filled in from the default protocol's.

    Parameters
    ----------
    r : Reader
    raw : mapping or None
        The section as written.
    design : Design
    default : mapping or None
        The default protocol's section (``None`` while reading the default protocol itself).

    Returns
    -------
    PowerSpec
        Meaningful only when ``r`` recorded no problem.
    """
    empty = PowerSpec(tests=())
    if raw is not None and not isinstance(raw, Mapping):
        r.problem("power", None, f"expected a mapping, found {type(raw).__name__}", "a mapping with tests and options")
        return empty
    section = dict(raw or {})
    for unknown in sorted(set(section) - set(POWER_OPTIONS)):
        r.problem(f"power.{unknown}", None, "is not a key of the power section", ", ".join(POWER_OPTIONS))
    if "tests" in section:
        tests = []
        for i, entry in enumerate(r.listing(section["tests"], "power.tests", "a list of tests", non_empty=True)):
            test = read_test(r, entry, f"power.tests[{i}]", design)
            if test is not None:
                tests.append(test)
    else:
        # The default tests that this protocol can run (all of them for the default protocol).
        tests = [t for t in (read_test(Reader(r.origin), entry, "", design, administered=True)
                             for entry in (default or {}).get("tests") or []) if t is not None]
    options = {**{k: v for k, v in (default or {}).items() if k != "tests"},
               **{k: v for k, v in section.items() if k != "tests"}}
    alpha = options.get("alpha", 0.05)
    if r.number(alpha, "power.alpha", "a level strictly between 0 and 1, e.g. 0.05") is not None \
            and not 0 < alpha < 1:
        r.problem("power.alpha", alpha, "is not strictly between 0 and 1", "e.g. 0.05")
    distribution = options.get("distribution", "beta")
    r.choice(distribution, "power.distribution", DISTRIBUTIONS)
    mediation_ci = options.get("mediation_ci", "monte_carlo")
    r.choice(mediation_ci, "power.mediation_ci", MEDIATION_CI)
    n_boot = r.integer(options.get("n_boot"), "power.n_boot", 1000, minimum=100, what="a whole number ≥ 100")
    return PowerSpec(tests=tuple(_as_test(t) for t in tests), alpha=float(alpha) if isinstance(alpha, int | float) else 0.05,
                     distribution=str(distribution), mediation_ci=str(mediation_ci), n_boot=int(n_boot))


def _as_test(entry: Mapping[str, Any]) -> PowerTest:
    if entry["test"] == "mixed_model":
        return PowerTest("mixed_model", "time", entry["y"], None, tuple(entry.get("timepoints") or ()))
    return PowerTest(entry["test"], entry["x"], entry["y"], entry.get("m"))
