"""Study data: the protocol, the tidy data contract, importers and exporters.

- The protocol (arms, timepoints, instruments per timepoint, doses, derived timepoints) is a YAML
  file: :func:`load_protocol`, :func:`default_protocol` (Levin et al. 2024). Schema:
  ``docs/protocol.md``.
- The tidy contract (``participants.csv``, ``responses.csv``, ``dosing_sessions.csv``) is read by
  :func:`load` into a :class:`Study` and written by :func:`save`. Documented in ``docs/data.md``.
- Measures are named ``INSTRUMENT.SCALE@TIMEPOINT`` (:mod:`alliance.study.measures`).
- Other formats (wide CSV, REDCap, SPSS, Stata, Parquet) are in :mod:`alliance.study.formats`.

Examples
--------
>>> from alliance.study import default_protocol
>>> protocol = default_protocol()
>>> protocol.instruments_at("week1")
('wai_sr', 'grid_hamd17')
"""

from __future__ import annotations

from .errors import DataProblem, ProtocolError, StudyDataError
from .io import default_protocol, load, load_protocol, read_csv_text, save, write_protocol
from .measures import Measure, measure_name, parse_measure, protocol_measures
from .protocol import Arm, DerivedTimepoint, Dose, Protocol, Timepoint
from .tidy import Study, sort_responses
from .validation import Locator

__all__ = [
    "Arm", "DataProblem", "DerivedTimepoint", "Dose", "Locator", "Measure", "Protocol", "ProtocolError",
    "Study", "StudyDataError", "Timepoint", "default_protocol", "load", "load_protocol", "measure_name",
    "parse_measure", "protocol_measures", "read_csv_text", "save", "sort_responses", "write_protocol",
]
