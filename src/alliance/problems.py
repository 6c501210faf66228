"""One problem, one message style: what was found, where (file, row, column or YAML path), what is allowed.

:class:`DataProblem` is shared by the layers that read input: the protocol
(:class:`alliance.protocol.ProtocolError`) and the study data (:class:`StudyDataError`). It lives
below both so that neither imports the other for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Problems listed in an error message; ``StudyDataError.problems`` always holds all of them.
MAX_LISTED = 20


@dataclass(frozen=True)
class DataProblem:
    """One problem in study data or in a protocol file.

    Attributes
    ----------
    file : str
        The file (or table) the problem is in, e.g. ``"responses.csv"``.
    row : int or None
        The file's line number (the header is line 1), or ``None`` for a problem with a whole
        column or file.
    column : str or None
        The column (CSV) or key path (YAML, e.g. ``timepoints[3].dose.unit``).
    value : object
        What was found (``None`` when nothing was).
    allowed : str
        What would be accepted there.
    reason : str
        What is wrong, e.g. ``"is not a timepoint of protocol levin2024"``.
    where : str
        What ``column`` is: ``"column"`` (a table) or ``"key"`` (a YAML file).
    """

    file: str
    row: int | None
    column: str | None
    value: object
    allowed: str
    reason: str
    where: str = "column"

    def describe(self) -> str:
        """One line: ``file, row 12, column 'timepoint': value 'wk4' is not …; allowed: …``."""
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"{self.where} {self.column!r}")
        found = "" if self.value is None else f" value {self.value!r}"
        allowed = f"; allowed: {self.allowed}" if self.allowed else ""
        return f"{', '.join(where)}:{found} {self.reason}{allowed}"

    def to_dict(self) -> dict:
        return {"file": self.file, "row": self.row, "column": self.column, "value": self.value,
                "allowed": self.allowed, "reason": self.reason, "where": self.where}


class StudyDataError(ValueError):
    """Study data (or a protocol, or an import mapping) that cannot be used.

    ``problems`` lists every problem found, sorted by file, row and column — ids "not listed" in
    another file last, since they follow from the problems there; the message lists the first
    :data:`MAX_LISTED` of them.
    """

    def __init__(self, problems: Sequence[DataProblem], summary: str | None = None, *, sort: bool = True):
        self.problems = tuple(sorted(problems, key=_order)) if sort else tuple(problems)
        count = len(self.problems)
        lines = [p.describe() for p in self.problems[:MAX_LISTED]]
        if count > MAX_LISTED:
            lines.append(f"… and {count - MAX_LISTED} more problems")
        head = summary or f"{count} {'problem' if count == 1 else 'problems'} in the study data; nothing was loaded"
        super().__init__(head + ":\n  " + "\n  ".join(lines))


def utf8_problem(data: bytes, file: str) -> DataProblem | None:
    """The problem of bytes that are not UTF-8 (a byte-order mark allowed), with the line and byte; else None.

    Parameters
    ----------
    data : bytes
        A whole file.
    file : str
        Its name, for the message.

    Returns
    -------
    DataProblem or None
    """
    try:
        if not data.isascii():  # ASCII is UTF-8; isascii is a fast scan, decode only when needed
            data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        return DataProblem(file, line, None, None, "UTF-8 text, with or without a byte-order mark",
                           f"is not UTF-8 text (byte {data[error.start]:#04x} at offset {error.start})")
    return None


def _order(problem: DataProblem) -> tuple:
    # An id "not listed" in another file follows from a problem there (a participant dropped or
    # misspelled): the problems that are causes come first, so the first lines of a message say
    # what to fix.
    consequence = problem.reason.startswith("is not listed in")
    return (consequence, problem.file, problem.row if problem.row is not None else -1, problem.column or "")
