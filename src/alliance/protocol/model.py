"""The protocol: a study design with its typed sections (alert rules, analysis plan, power tests).

A :class:`Protocol` is what :func:`alliance.protocol.load_protocol` gives: every section checked,
and every section present — a protocol file that leaves one out gets the default protocol's
(``levin2024.yaml``), filled in as each section's reader documents. ``sections`` keeps the
sections as the file wrote them, so that :meth:`Protocol.to_dict` gives back the file's content
(and :attr:`Protocol.sha256`, the provenance hash, does not change when a default changes).
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import yaml

from .alerts import AlertConfig
from .analysis import AnalysisPlan
from .change import ReliableChangeConfig
from .design import Design
from .deviations import DeviationPolicy
from .expected import ExpectedResponseConfig
from .invitations import InvitationPolicy
from .power import PowerSpec
from .quality import QualityConfig
from .randomisation import RandomisationSpec
from .safety import SafetySpec

__all__ = ["SECTIONS", "Protocol"]

# The sections after the design, in the order a protocol file lists them.
SECTIONS = ("alerts", "deviations", "invitations", "quality", "analysis", "power", "expected_response",
            "reliable_change", "randomisation", "safety")


@dataclass(frozen=True)
class Protocol(Design):
    """A study protocol (schema: ``docs/protocol.md``): the design, its alert rules, plan and power tests.

    Attributes
    ----------
    alerts : AlertConfig
        The alert rules (:mod:`alliance.protocol.alerts`).
    analysis : AnalysisPlan
        The analysis plan (:mod:`alliance.protocol.analysis`).
    power : PowerSpec
        The tests ``alliance power`` simulates (:mod:`alliance.protocol.power`).
    deviations : DeviationPolicy
        What the analysis does with administrations off schedule (:mod:`alliance.protocol.deviations`).
    invitations : InvitationPolicy
        When participants are emailed their visit's link (:mod:`alliance.protocol.invitations`).
    quality : QualityConfig
        The study's own data-quality rules (:mod:`alliance.protocol.quality`).
    expected_response : ExpectedResponseConfig
        Which scales are watched against expected-response curves, with which reference
        (:mod:`alliance.protocol.expected`).
    reliable_change : ReliableChangeConfig
        The reference SD and reliability of each scale for reliable change, with their sources
        (:mod:`alliance.protocol.change`).
    randomisation : RandomisationSpec or None
        How the software allocates arms (:mod:`alliance.protocol.randomisation`); ``None`` without
        the section: not randomised by the software, staff type each participant's arm.
    safety : SafetySpec
        The vital-sign thresholds of a dosing day and the medication washout rules
        (:mod:`alliance.protocol.safety`); without the section, the default thresholds and no washout rule.
    sections : dict
        ``alerts``, ``deviations``, ``invitations``, ``quality``, ``analysis``, ``power`` as the file wrote them (absent when it did not).
    """

    alerts: AlertConfig = field(default_factory=lambda: AlertConfig(rules=()))
    analysis: AnalysisPlan | None = None
    power: PowerSpec = field(default_factory=lambda: PowerSpec(tests=()))
    deviations: DeviationPolicy = field(default_factory=DeviationPolicy)
    invitations: InvitationPolicy = field(default_factory=InvitationPolicy)
    quality: QualityConfig = field(default_factory=QualityConfig)
    expected_response: ExpectedResponseConfig = field(default_factory=ExpectedResponseConfig)
    reliable_change: ReliableChangeConfig = field(default_factory=ReliableChangeConfig)
    randomisation: RandomisationSpec | None = None
    safety: SafetySpec = field(default_factory=SafetySpec)
    sections: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The protocol as the mapping its YAML file holds (:func:`parse_protocol` of it gives it back)."""
        out = self.design_dict()
        for name in SECTIONS:
            if self.sections.get(name):
                # a copy: the protocol is frozen (and the default one cached), its caller may edit the mapping
                out[name] = copy.deepcopy(self.sections[name])
        return out

    def to_yaml(self) -> str:
        """The protocol as YAML text (what :func:`alliance.study.save` writes to ``protocol.yaml``)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=100)

    @cached_property
    def sha256(self) -> str:
        """SHA-256 of the canonical JSON serialization of :meth:`to_dict`, for provenance."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                               default=str)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
