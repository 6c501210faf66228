"""The ``deviations:`` section of a protocol: what the analysis does with data taken off schedule.

An administration deviates from the protocol (:mod:`alliance.monitoring.deviations` finds them)
when it was taken

- ``after_dosing``: at a ``pre_dose`` timepoint (:attr:`alliance.protocol.Design.phases`), but
  after the participant's first dosing session — a "pre-dose" alliance score taken after the
  drug is not the predictor Levin et al. (2024) studied;
- ``out_of_window``: outside its timepoint's window around the planned date;
- ``out_of_order``: on a day before an assessment of an earlier timepoint of the same participant
  (week 1 before the final preparation session: one of the two dates is wrong);
- ``undated``: without an ``administered_at``, when the section says dates are required.

For each kind the section says whether the analysis ``exclude``\\ s such administrations (their
scores count as missing) or ``include``\\ s them (reported, analysed as scheduled). Defaults:
``after_dosing`` excluded — a post-dose score must never count as pre-dose — and the others
included, as an intention-to-treat analysis keeps off-window assessments and reports them
(ICH E9, section 5.2.1; ICH E3, section 10.2: protocol deviations are listed, and whether data
are excluded is decided before unblinding, i.e. in the protocol).

Schema (``docs/protocol.md``, "Deviations")::

    deviations:
      require_dates: false        # true: an administration without administered_at is `undated`
      actions:                    # per kind: exclude | include
        after_dosing: exclude
        out_of_window: include
        out_of_order: include
        undated: include

References
----------
International Council for Harmonisation (1998). E9 Statistical Principles for Clinical Trials.
International Council for Harmonisation (1995). E3 Structure and Content of Clinical Study Reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import Reader

__all__ = ["ACTIONS", "DEFAULT_ACTIONS", "DEVIATION_KINDS", "DeviationPolicy", "read_deviations"]

DEVIATION_KINDS = ("after_dosing", "out_of_window", "out_of_order", "undated")
ACTIONS = ("exclude", "include")
DEFAULT_ACTIONS = {"after_dosing": "exclude", "out_of_window": "include", "out_of_order": "include",
                   "undated": "include"}
_KEYS = ("require_dates", "actions")


@dataclass(frozen=True)
class DeviationPolicy:
    """The protocol's ``deviations:`` section.

    Attributes
    ----------
    actions : dict
        Deviation kind (:data:`DEVIATION_KINDS`) → ``exclude`` or ``include``.
    require_dates : bool
        Whether an administration without ``administered_at`` is a deviation (``undated``).
    """

    actions: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ACTIONS))
    require_dates: bool = False

    def action(self, kind: str) -> str:
        """``exclude`` or ``include`` for a kind of deviation."""
        return self.actions.get(kind, DEFAULT_ACTIONS[kind])

    def to_dict(self) -> dict[str, Any]:
        return {"require_dates": self.require_dates, "actions": dict(self.actions)}


def read_deviations(r: Reader, raw: Any) -> DeviationPolicy:
    """Read and check a protocol's ``deviations:`` section (``None``: the defaults).

    Parameters
    ----------
    r : Reader
        Problems are recorded here, with YAML paths starting at ``deviations``.
    raw : mapping or None

    Returns
    -------
    DeviationPolicy
        Meaningful only when ``r`` recorded no problem.
    """
    if raw is None:
        return DeviationPolicy()
    section = r.mapping(raw, "deviations", _KEYS, ())
    require = section.get("require_dates", False)
    require = r.boolean(require, "deviations.require_dates")
    actions = dict(DEFAULT_ACTIONS)
    given = section.get("actions")
    if given is not None:
        chosen = r.mapping(given, "deviations.actions", DEVIATION_KINDS, ())
        for kind, action in chosen.items():
            if action not in ACTIONS:
                r.problem(f"deviations.actions.{kind}", action, "is not an action", ", ".join(ACTIONS))
                continue
            actions[kind] = str(action)
    return DeviationPolicy(actions=actions, require_dates=bool(require))
