"""The study layer's one exception family: every problem says where it is and what is allowed.

:class:`StudyDataError` and :class:`DataProblem` are defined in :mod:`alliance.problems`, below
the protocol and the study layers, and named here for the study layer's users.
"""

from __future__ import annotations

from alliance.problems import MAX_LISTED, DataProblem, StudyDataError

__all__ = ["MAX_LISTED", "DataProblem", "StudyDataError"]
