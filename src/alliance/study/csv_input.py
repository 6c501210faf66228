"""Checks of a CSV file's bytes before pandas parses them: encoding, header, fields per row.

:func:`alliance.study.read_csv_text` runs :func:`check_csv` first, because pandas on its own
accepts what the study must refuse:

- a second column of the same name becomes ``site.1``, so a second ``site`` column would pass as
  an unknown column, or, worse, the first ``site`` would be read and the second ignored;
- a row with fewer fields than the header is padded with missing cells, so a file cut off in the
  middle of a row (a copy interrupted, a disk full) reads as a row with empty answers;
- a byte that is not UTF-8 is reported without its line.

Fields are counted on the raw bytes with numpy (a comma or newline between an odd and an even
double quote is inside a quoted cell, RFC 4180), a few vectorized passes over the file; the
Python ``csv`` module would take as long as parsing the file again.
"""

from __future__ import annotations

import codecs
import csv
import io

import numpy as np

from alliance.problems import utf8_problem

from .errors import DataProblem

__all__ = ["MAX_CSV_BYTES", "check_csv", "scan_csv"]

_QUOTE, _COMMA, _NEWLINE, _RETURN = ord('"'), ord(","), ord("\n"), ord("\r")
MAX_LISTED_ROWS = 100  # problems listed per file; a file cut short usually has one bad row
# The largest CSV file read: 256 MiB is about 7.5 million answers in responses.csv, twelve times
# a 1,000-participant trial with 60 items at 10 timepoints (validated in about 3 s per million
# rows, benchmarks/bench_study_load.py); a larger file is refused before it is read.
MAX_CSV_BYTES = 256 * 1024 * 1024


def check_csv(data: bytes, file: str) -> list[DataProblem]:
    """:func:`scan_csv`'s problems alone."""
    return scan_csv(data, file)[0]


def scan_csv(data: bytes, file: str) -> tuple[list[DataProblem], np.ndarray | None]:
    """Problems of a CSV file's bytes: not UTF-8, a header naming a column twice, rows of the wrong length.

    Parameters
    ----------
    data : bytes
        The whole file.
    file : str
        Its name, put in every problem.

    Returns
    -------
    problems : list of DataProblem
        Empty when the file is UTF-8 (a byte-order mark allowed), its header names each column
        once and every row has as many fields as the header (blank lines, which pandas skips, are
        not rows). ``row`` is the record's line number (the header is line 1).
    lines : ndarray of int or None
        The line number in the file of each data row pandas will read (blank lines skipped, a
        quoted cell spanning lines counted), so that a later message names the line an editor
        shows; ``None`` when there are problems or the file is empty.
    """
    if len(data) > MAX_CSV_BYTES:
        return [DataProblem(file, None, None, None, f"at most {MAX_CSV_BYTES:,} bytes ({MAX_CSV_BYTES / 2**20:g} MiB)",
                            f"is {len(data):,} bytes, larger than a study file can be")], None
    not_utf8 = utf8_problem(data, file)
    if not_utf8 is not None:
        return [not_utf8], None
    body = data.removeprefix(codecs.BOM_UTF8)
    if not body.strip():
        return [], None  # an empty file: pandas says so
    raw = np.frombuffer(body, dtype=np.uint8)
    quotes = np.flatnonzero(raw == _QUOTE)
    newlines = np.flatnonzero(raw == _NEWLINE)
    commas = np.flatnonzero(raw == _COMMA)
    # A carriage return not followed by a newline ends a row for pandas, but not for this count.
    returns = np.flatnonzero(raw == _RETURN)
    returns = returns[(returns + 1 >= len(raw)) | (raw[np.minimum(returns + 1, len(raw) - 1)] != _NEWLINE)]
    if len(quotes):
        newlines = newlines[np.searchsorted(quotes, newlines) % 2 == 0]
        commas = commas[np.searchsorted(quotes, commas) % 2 == 0]
        returns = returns[np.searchsorted(quotes, returns) % 2 == 0]
    if len(returns):
        line = int(np.searchsorted(np.flatnonzero(raw == _NEWLINE), returns[0])) + 1
        return [DataProblem(file, line, None, None, "lines ending in a newline (\\n or \\r\\n)",
                            "has a carriage return (\\r) that does not end a line: the file is damaged or "
                            "was saved with old Mac line ends")], None
    unterminated = not len(newlines) or newlines[-1] != len(body) - 1
    ends = np.append(newlines, len(body)) if unterminated else newlines
    starts = np.concatenate(([0], ends[:-1] + 1))
    fields = np.diff(np.concatenate(([0], np.searchsorted(commas, ends)))) + 1
    length = ends - starts
    carriage = raw[np.minimum(starts, len(body) - 1)] == _RETURN
    blank = (length == 0) | ((length == 1) & carriage)

    problems = []
    header = int(np.flatnonzero(~blank)[0])  # pandas skips blank lines before the header too
    line = body[int(starts[header]):int(ends[header])].decode("utf-8").rstrip("\r")
    try:
        names = [name.strip() for name in next(csv.reader(io.StringIO(line, newline="")), [])]
    except csv.Error:  # a quote opened in the header spans lines: the field counts below say so
        names = [name.strip() for name in line.split(",")]
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if name in seen:
            problems.append(DataProblem(file, header + 1, name, name, "each column named once in the header",
                                        f"names a column twice (columns {seen[name]} and {position})"))
        seen.setdefault(name, position)

    expected = int(fields[header])
    wrong = np.flatnonzero((fields != expected) & ~blank)
    if len(quotes) and (len(wrong) or len(quotes) % 2):
        # A quote inside an unquoted cell (`5" tall`) is a plain character to pandas and to the
        # csv module, but flips the parity above: count again, the slow way, before refusing.
        more, lines = _count_with_csv(body.decode("utf-8"), file)
        return problems + more, (lines if not problems + more else None)
    last = len(ends) - 1
    problems += [_wrong_length(file, int(r) + 1, int(fields[r]), expected, r == last and unterminated)
                 for r in wrong[:MAX_LISTED_ROWS]]
    if len(quotes) % 2:
        line = int(np.searchsorted(ends, quotes[-1])) + 1
        problems.append(DataProblem(file, line, None, None, "every quoted cell closed with a double quote",
                                    "opens a quoted cell that never closes: the file looks cut off"))
    if problems:
        return problems, None
    records = np.flatnonzero(~blank)[1:]  # the data rows, after the header
    if len(quotes) == 0:
        return problems, records + 1
    every_newline = np.flatnonzero(raw == _NEWLINE)
    return problems, np.searchsorted(every_newline, starts[records]) + 1


def _wrong_length(file: str, row: int, found: int, expected: int, cut_off: bool) -> DataProblem:
    if cut_off and found < expected:
        reason = f"has {found} of the header's {expected} fields and no newline at the end: the file looks cut off"
    else:
        reason = f"has {found} fields; the header has {expected}"
        if found < expected:
            reason += " (a short row: the file may be damaged or cut off)"
    return DataProblem(file, row, None, None, f"{expected} comma-separated fields on every row", reason)


def _count_with_csv(text: str, file: str) -> tuple[list[DataProblem], np.ndarray | None]:
    """Fields per record as the csv module reads them (a blank line is ``[]``: skipped, as pandas does)."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records, starts, start = [], [], 1
    try:
        for record in reader:
            records.append(record)
            starts.append(start)
            start = reader.line_num + 1
    except csv.Error as error:
        if "unexpected end of data" in str(error):
            return [DataProblem(file, reader.line_num, None, None, "every quoted cell closed with a double quote",
                                "opens a quoted cell that never closes: the file looks cut off")], None
        lenient = csv.reader(io.StringIO(text, newline=""))  # e.g. `"x"y`, which pandas reads too
        try:
            records = list(lenient)
        except csv.Error as still:  # e.g. a lone carriage return inside a cell
            return [DataProblem(file, lenient.line_num, None, None,
                                "cells without line breaks, or quoted (\"…\") when they have one",
                                f"cannot be read as CSV ({still})")], None
        starts = None
    expected = len(next(r for r in records if r))
    cut_off = not text.endswith("\n")
    wrong = [(i, len(r)) for i, r in enumerate(records) if r and len(r) != expected]
    problems = [_wrong_length(file, i + 1, found, expected, cut_off and i == len(records) - 1)
                for i, found in wrong[:MAX_LISTED_ROWS]]
    lines = None
    if starts is not None:
        data_rows = [line for record, line in zip(records, starts, strict=True) if record]
        lines = np.asarray(data_rows[1:], dtype=np.int64)
    return problems, lines
