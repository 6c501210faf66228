"""What a power analysis is asked to do: its errors, the tests as written, command-line inputs.

The power-test schema itself (test types, :class:`~alliance.protocol.PowerTest`, the options)
is the protocol's ``power:`` section, :mod:`alliance.protocol.power`; it is re-exported here for
the callers of :mod:`alliance.simulate.power`. This module turns a test given in code or in a
``--scenario`` file into the same checked mapping, and reads the command line's sample sizes.
Errors are :class:`PowerSpecificationError`, with the message style of the protocol's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alliance.protocol import PowerTest, default_protocol
from alliance.protocol.errors import Reader
from alliance.protocol.power import DISTRIBUTIONS, MEDIATION_CI, POWER_OPTIONS, TESTS, read_test

from ..copula import CalibrationError

__all__ = [
    "DISTRIBUTIONS",
    "MEDIATION_CI",
    "POWER_OPTIONS",
    "TESTS",
    "PowerSpecificationError",
    "PowerTest",
    "default_power_tests",
    "parse_n_range",
    "split_power_options",
]


class PowerSpecificationError(CalibrationError):
    """A power analysis asks for something the protocol or scenario does not have.

    Examples: a test of a measure the protocol does not collect, an unknown test type, an
    attrition outside [0, 1).
    """


def _parse_test(raw: Any, where: str) -> dict[str, Any]:
    """One test as a checked mapping (key ``test``), by the schema of :mod:`alliance.protocol.power`."""
    r = Reader("power tests")
    entry = read_test(r, raw, where)
    if r.problems:
        raise PowerSpecificationError("; ".join(p.describe() for p in r.problems))
    return entry


def default_power_tests() -> list[dict[str, Any]]:
    """The default protocol's power tests (the ``power:`` section of ``levin2024.yaml``), as mappings.

    Returns
    -------
    list of dict
    """
    return [test.to_dict() for test in default_protocol().power.tests]


def split_power_options(raw: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split the contents of a ``--scenario`` file into scenario overrides and power options.

    Parameters
    ----------
    raw : mapping or None
        The scenario keys of :meth:`Scenario.with_overrides` (``marginals``, ``correlations``, …)
        and optionally ``power:`` with ``tests``, ``alpha``, ``distribution``, ``mediation_ci``,
        ``n_boot``.

    Returns
    -------
    overrides, options : dict
    """
    if raw is None:
        return {}, {}
    if not isinstance(raw, Mapping):
        raise PowerSpecificationError(f"a scenario file is a mapping of scenario keys (and `power:`); got {type(raw).__name__}")
    overrides = {key: value for key, value in raw.items() if key != "power"}
    options = raw.get("power") or {}
    if not isinstance(options, Mapping):
        raise PowerSpecificationError("`power:` in the scenario file must be a mapping")
    unknown = sorted(set(options) - set(POWER_OPTIONS))
    if unknown:
        raise PowerSpecificationError(f"power.{unknown[0]}: unknown option; allowed: {', '.join(POWER_OPTIONS)}")
    return overrides, dict(options)


def parse_n_range(text: str) -> list[int]:
    """Sample sizes from ``"20:200:20"`` (start:stop:step, stop included), ``"24"`` or ``"20,30,40"``.

    Parameters
    ----------
    text : str

    Returns
    -------
    list of int
    """
    try:
        if ":" in text:
            parts = [int(p) for p in text.split(":")]
            if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] <= 0):
                raise ValueError
            start, stop = parts[0], parts[1]
            step = parts[2] if len(parts) == 3 else 1
            values = list(range(start, stop + 1, step))
        else:
            values = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise PowerSpecificationError(f"sample sizes {text!r}: write start:stop:step (e.g. 20:200:20), "
                                      "a number, or a comma list") from None
    if not values or min(values) < 3:
        raise PowerSpecificationError(f"sample sizes {text!r}: need at least one n, each at least 3")
    return sorted(set(values))
