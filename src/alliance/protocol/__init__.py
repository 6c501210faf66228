"""The protocol: the study's design document, one YAML file, read and checked in one place.

A protocol file holds the design (arms, timepoints, instruments per timepoint, doses, derived
timepoints, identifying columns) and four sections that refer to it: ``alerts:`` (alert rules),
``deviations:`` (what the analysis does with data off schedule), ``invitations:`` (when
participants are emailed their visit's link), ``quality:`` (the study's own data-quality rules),
``analysis:`` (the analysis plan)
and ``power:`` (the tests whose power is simulated). Schema:
``docs/protocol.md`` and ``docs/analysis.md``; the default, ``levin2024.yaml``, reproduces Levin
et al. (2024).

============================  ==================================================================
module                        job
============================  ==================================================================
``protocol.design``           arms, timepoints (phase: pre_dose/dosing/post_dose), doses, derived
                              timepoints; lookups; time order
``protocol.measure``          the measure grammar ``INSTRUMENT.SCALE@TIMEPOINT`` (:class:`Measure`)
``protocol.alerts``           the ``alerts:`` schema (:class:`AlertRule`, :class:`AlertConfig`)
``protocol.deviations``       the ``deviations:`` schema (:class:`DeviationPolicy`)
``protocol.invitations``      the ``invitations:`` schema (:class:`InvitationPolicy`): emailed visit links
``protocol.quality``          the ``quality:`` schema (:class:`QualityRule`): the study's data-quality rules
``protocol.analysis``         the ``analysis:`` schema (:class:`AnalysisPlan`, :class:`AnalysisSpec`)
``protocol.power``            the ``power:`` schema (:class:`PowerTest`, :class:`PowerSpec`)
``protocol.change``           the ``reliable_change:`` schema (:class:`ReliableChangeConfig`): SD and
                              reliability of each scale, with sources
``protocol.randomisation``    the ``randomisation:`` schema (:class:`RandomisationSpec`) and the
                              stratified permuted-block list: :func:`allocation_list`, :func:`allocate`
``protocol.safety``           the ``safety:`` schema (:class:`SafetySpec`): vital-sign thresholds of a
                              dosing day, medication washout rules
``protocol.model``            :class:`Protocol`: the design with its typed sections
``protocol.loader``           the one loader: :func:`load_protocol`, :func:`parse_protocol`
``protocol.yaml_input``       the bounded YAML reader (size, aliases, depth, UTF-8) every entry uses
``protocol.errors``           :class:`ProtocolError` (every problem with its YAML path)
============================  ==================================================================

The protocol is pure data: evaluating alert rules is :mod:`alliance.monitoring`'s job, running
the plan :mod:`alliance.analysis`'s, simulating power :mod:`alliance.simulate`'s.

Examples
--------
>>> from alliance.protocol import default_protocol
>>> protocol = default_protocol()
>>> protocol.instruments_at("week1")
('wai_sr', 'grid_hamd17', 'cssrs_slv')
>>> [rule.id for rule in protocol.alerts.rules][:2]
['low_alliance', 'alliance_drop']
>>> protocol.analysis.p_adjust, len(protocol.power.tests)
('holm', 7)
"""

from __future__ import annotations

from .alerts import AlertConfig, AlertRule
from .analysis import AnalysisPlan, AnalysisSpec, Reference
from .change import ChangeNorm, ClinicalNorms, ReliableChangeConfig
from .design import IDENTIFIER_TYPES, PHASES, Arm, DerivedTimepoint, Design, Dose, IdentifierField, Timepoint
from .deviations import DEVIATION_KINDS, DeviationPolicy
from .errors import ProtocolError
from .expected import ExpectedResponseConfig
from .invitations import InvitationPolicy, TimepointInvitations
from .loader import default_protocol, load_protocol, parse_analysis_plan, parse_protocol, write_protocol
from .measure import Measure, MeasureNameError, measure_name, parse_measure
from .model import Protocol
from .power import PowerSpec, PowerTest
from .quality import QualityConfig, QualityRule
from .randomisation import (
    Allocation,
    AllocationList,
    ListExhaustedError,
    RandomisationError,
    RandomisationSpec,
    StratumFactor,
    UnknownStratumError,
    allocate,
    allocation_list,
    stratum_key,
)
from .safety import SafetySpec, VitalSignThresholds, WashoutRule

__all__ = [
    "DEVIATION_KINDS", "IDENTIFIER_TYPES", "PHASES",
    "AlertConfig", "AlertRule", "Allocation", "AllocationList", "AnalysisPlan", "AnalysisSpec", "Arm", "ChangeNorm", "ClinicalNorms", "DerivedTimepoint", "Design", "DeviationPolicy",
    "Dose", "ExpectedResponseConfig", "IdentifierField", "InvitationPolicy", "ListExhaustedError",
    "Measure", "MeasureNameError", "PowerSpec", "PowerTest", "Protocol", "ProtocolError", "QualityConfig",
    "QualityRule", "RandomisationError", "RandomisationSpec", "Reference", "ReliableChangeConfig",
    "SafetySpec", "StratumFactor", "Timepoint", "TimepointInvitations", "UnknownStratumError",
    "VitalSignThresholds", "WashoutRule",
    "allocate", "allocation_list", "default_protocol", "load_protocol", "measure_name", "parse_analysis_plan",
    "parse_measure", "parse_protocol", "stratum_key", "write_protocol",
]
