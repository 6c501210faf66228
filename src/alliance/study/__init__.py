"""Study data: the tidy data contract, validation, importers and exporters.

The protocol the data follow (arms, timepoints, instruments, sections) is
:mod:`alliance.protocol`'s; this package holds the data.

- The tidy contract (``participants.csv``, ``responses.csv``, ``dosing_sessions.csv`` and
  optionally ``protocol.yaml``) is read by :func:`load` into a :class:`Study` and written by
  :func:`save`. Documented in ``docs/data.md``.
- Scores and measures (``INSTRUMENT.SCALE@TIMEPOINT``): :mod:`alliance.study.measures`.
- Other formats (wide CSV, REDCap, SPSS, Stata, Parquet) are in :mod:`alliance.study.formats`.

Examples
--------
>>> from alliance.protocol import default_protocol
>>> from alliance.study.measures import protocol_measures
>>> protocol_measures(default_protocol())[:2]
('grid_hamd17.total@baseline', 'cssrs_screen.ideation_severity@baseline')
"""

from __future__ import annotations

from .errors import DataProblem, StudyDataError
from .io import load, read_csv_text, save
from .measures import protocol_measures
from .tidy import Study, sort_responses
from .validation import Locator

__all__ = [
    "DataProblem", "Locator", "Study", "StudyDataError", "load", "protocol_measures", "read_csv_text", "save",
    "sort_responses",
]
