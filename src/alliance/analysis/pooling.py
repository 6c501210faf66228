"""Pooling the confirmatory correlations of several trials, sites or published studies.

Levin et al. (2024) call for replication in other settings. ``alliance pool`` takes the
``results.json`` of several ``alliance analyze`` runs (and optionally a CSV of published r and n),
matches their confirmatory correlations by measure (``wai_sr.total@prep ~ grid_hamd17.total@week4``)
and pools each on Fisher's z with a random-effects model (:func:`alliance.stats.pool_correlations`,
equal to metafor). Within one study with participants at several sites, :func:`pool_by_site` does
the same with the sites as the studies. A test present in only one source, or skipped in one, is
listed with the reason; nothing is dropped silently.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alliance import stats

from .results import Results

__all__ = ["MAX_INPUT_BYTES", "PooledTest", "PoolingError", "pool_by_site", "pool_results", "read_published",
           "read_results"]

MAX_INPUT_BYTES = 50 * 1024 * 1024   # a results.json of 2,000 participants is about 2 MB
MAX_PUBLISHED_BYTES = 5 * 1024 * 1024
PUBLISHED_COLUMNS = ("study", "x", "y", "r", "n")
MIN_SITE_N = 4  # Fisher's z needs n > 3


class PoolingError(ValueError):
    """An input of the pooling cannot be used: names the file, row, column and value."""


@dataclass(frozen=True)
class PooledTest:
    """One test (x ~ y) pooled over its sources.

    Attributes
    ----------
    x, y : str
        Measure names.
    studies : tuple of dict
        Per source: ``study, r, n, ci_low, ci_high, weight``.
    pooled : dict or None
        :class:`alliance.stats.PooledCorrelation` as a dict (None when fewer than two sources).
    not_pooled : tuple of dict
        Sources that have the test but could not contribute (``study, reason``).
    """

    x: str
    y: str
    studies: tuple[dict[str, Any], ...]
    pooled: dict[str, Any] | None
    not_pooled: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"x": self.x, "y": self.y, "studies": list(self.studies), "pooled": self.pooled,
                "not_pooled": list(self.not_pooled)}


def _read_bounded(path: Path, limit: int) -> str:
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as error:
        raise PoolingError(f"{path}: cannot be read ({error.strerror or error})") from error
    if size > limit:
        raise PoolingError(f"{path}: {size:,} bytes; allowed: at most {limit:,}")
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise PoolingError(f"{path}: byte {error.start} is not UTF-8; allowed: a UTF-8 file") from error


def read_results(path: str | Path) -> Results:
    """A ``results.json`` written by ``alliance analyze``.

    Raises
    ------
    PoolingError
        When the file is too large, not UTF-8, not JSON, or not a results file (naming the file).
    """
    text = _read_bounded(Path(path), MAX_INPUT_BYTES)
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        where = f"line {error.lineno}, column {error.colno}: " if isinstance(error, json.JSONDecodeError) else ""
        raise PoolingError(f"{path}: {where}not valid JSON ({error.msg if hasattr(error, 'msg') else error})") from error
    if not isinstance(data, dict):
        raise PoolingError(f"{path}: is a JSON {type(data).__name__}; allowed: the object alliance analyze writes")
    try:
        return Results.from_dict(data)
    except (ValueError, TypeError) as error:
        raise PoolingError(f"{path}: not a results.json of alliance analyze: {error}") from error


def read_published(path: str | Path) -> list[dict[str, Any]]:
    """A CSV of published correlations: ``study, x, y, r, n`` (optional ``note``), one row per result.

    ``x`` and ``y`` are measure names as in ``results.json`` (``wai_sr.total@prep``), so published
    results join the runs' tests of the same measures.

    Raises
    ------
    PoolingError
        Naming the file, row (1 = the header), column, value and what is allowed.
    """
    text = _read_bounded(Path(path), MAX_PUBLISHED_BYTES)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    missing = [name for name in PUBLISHED_COLUMNS if name not in header]
    if missing:
        raise PoolingError(f"{path}, row 1: column(s) {', '.join(missing)} missing; "
                           f"allowed header: {', '.join(PUBLISHED_COLUMNS)} (optional note)")
    rows = []
    for number, record in enumerate(reader, start=2):
        if None in record:
            raise PoolingError(f"{path}, row {number}: more fields than the header's {len(header)}")
        for name in ("study", "x", "y"):
            if not (record.get(name) or "").strip():
                raise PoolingError(f"{path}, row {number}, column {name}: empty; allowed: a name")
        try:
            r = float(record["r"])
        except (TypeError, ValueError):
            raise PoolingError(f"{path}, row {number}, column r: value {record['r']!r}; allowed: a number "
                               "strictly between -1 and 1") from None
        if not -1 < r < 1:
            raise PoolingError(f"{path}, row {number}, column r: value {record['r']!r}; allowed: a number "
                               "strictly between -1 and 1")
        try:
            n = int(record["n"])
        except (TypeError, ValueError):
            raise PoolingError(f"{path}, row {number}, column n: value {record['n']!r}; allowed: a whole number "
                               "of at least 4") from None
        if n < 4:
            raise PoolingError(f"{path}, row {number}, column n: value {record['n']!r}; allowed: a whole number "
                               "of at least 4")
        rows.append({"study": record["study"].strip(), "x": record["x"].strip(), "y": record["y"].strip(),
                     "r": r, "n": n, "note": (record.get("note") or "").strip()})
    if not rows:
        raise PoolingError(f"{path}: no rows after the header")
    return rows


POOLABLE_SECTIONS = ("correlations", "partial_correlations")
ROLES = ("confirmatory", "exploratory", "all")


def _source_tests(label: str, results: Results, section: str = "correlations",
                  role: str = "confirmatory") -> tuple[list[dict[str, Any]], bool]:
    """The entries of one run's ``section`` with the given role (all of them if the run has no roles)."""
    entries = list(getattr(results, section))
    has_roles = any("role" in entry for entry in entries)
    if has_roles and role != "all":
        entries = [entry for entry in entries if entry.get("role") == role]
    return [{"study": label, **entry} for entry in entries], has_roles


def pool_results(sources: Sequence[tuple[str, Results]], published: Iterable[Mapping[str, Any]] = (),
                 method: str = "REML", test: str = "knha", section: str = "correlations",
                 role: str = "confirmatory") -> tuple[list[PooledTest], list[str]]:
    """Pool the matching confirmatory correlations of several runs and published studies.

    Parameters
    ----------
    sources : sequence of (label, Results)
        Each run's label (e.g. its file name) and results.
    published : iterable of mapping
        Rows of :func:`read_published`.
    method, test : str
        As :func:`alliance.stats.meta_analysis` (default REML with Knapp–Hartung: few studies).
    section : {"correlations", "partial_correlations"}
        The section of ``results.json`` whose entries are pooled.
    role : {"confirmatory", "exploratory", "all"}
        Which entries (by their ``role`` key); a run whose entries carry no role contributes all of
        them, and a note says so.

    Returns
    -------
    list of PooledTest, list of str
        One per test (x, y) found in any source, in order of first appearance; and notes (a run
        without roles, tests found in a single source).
    """
    if section not in POOLABLE_SECTIONS:
        raise PoolingError(f"section {section!r}; allowed: {', '.join(POOLABLE_SECTIONS)}")
    if role not in ROLES:
        raise PoolingError(f"role {role!r}; allowed: {', '.join(ROLES)}")
    notes: list[str] = []
    by_test: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for label, results in sources:
        entries, has_roles = _source_tests(label, results, section, role)
        if not has_roles:
            notes.append(f"{label}: written before results carried roles; all its {section} are used")
        for entry in entries:
            by_test.setdefault((entry["x"], entry["y"]), []).append(entry)
    for row in published:
        by_test.setdefault((row["x"], row["y"]), []).append({"study": row["study"], "r": row["r"], "n": row["n"],
                                                              "note": row.get("note", "")})
    pooled_tests = []
    for (x, y), entries in by_test.items():
        usable, not_pooled = [], []
        for entry in entries:
            if entry.get("skipped") or entry.get("r") is None:
                not_pooled.append({"study": entry["study"], "reason": entry.get("skipped") or "no r"})
            elif int(entry["n"]) < MIN_SITE_N:
                not_pooled.append({"study": entry["study"], "reason": f"n = {entry['n']} (Fisher's z needs n > 3)"})
            else:
                usable.append(entry)
        pooled = None
        studies: tuple[dict[str, Any], ...] = tuple(
            {"study": e["study"], "r": float(e["r"]), "n": int(e["n"])} for e in usable)
        if len(usable) >= 2:
            result = stats.pool_correlations([e["r"] for e in usable], [e["n"] for e in usable], method=method,
                                             test=test)
            pooled = result.to_dict()
            studies = tuple({"study": e["study"], **{k: s[k] for k in ("r", "n", "ci_low", "ci_high", "weight")}}
                            for e, s in zip(usable, result.studies, strict=True))
        else:
            notes.append(f"{x} ~ {y}: {len(usable)} usable source(s); at least 2 are needed to pool")
        pooled_tests.append(PooledTest(x=x, y=y, studies=studies, pooled=pooled, not_pooled=tuple(not_pooled)))
    return pooled_tests, notes


def pool_by_site(x: pd.Series, y: pd.Series, site: pd.Series, method: str = "REML",
                 test: str = "knha") -> dict[str, Any]:
    """Per-site Pearson r of x and y and their random-effects pooling.

    Parameters
    ----------
    x, y, site : Series
        One value per participant (same index); ``site`` is the participant's site.

    Returns
    -------
    dict
        ``sites`` (per site: ``site, n, r, ci_low, ci_high`` or ``skipped``), ``pooled`` (the
        :class:`alliance.stats.PooledCorrelation` dict, or None with ``note`` when fewer than two
        sites can be pooled).
    """
    frame = pd.DataFrame({"x": x, "y": y, "site": site}).dropna(subset=["site"])
    rows = []
    usable = []
    for name, group in frame.groupby("site", sort=True):
        complete = group.dropna(subset=["x", "y"])
        n = len(complete)
        if n < MIN_SITE_N:
            rows.append({"site": str(name), "n": n, "skipped": f"n = {n}; Fisher's z needs at least {MIN_SITE_N}"})
            continue
        try:
            result = stats.correlation(complete["x"], complete["y"])
        except ValueError as error:
            rows.append({"site": str(name), "n": n, "skipped": str(error)})
            continue
        rows.append({"site": str(name), "n": n, "r": result.r, "ci_low": result.ci_low, "ci_high": result.ci_high})
        if abs(result.r) < 1:
            usable.append((result.r, n))
    out: dict[str, Any] = {"sites": rows, "pooled": None}
    if len(usable) >= 2:
        r, n = zip(*usable, strict=True)
        out["pooled"] = stats.pool_correlations(np.array(r), np.array(n), method=method, test=test).to_dict()
    else:
        out["note"] = f"{len(usable)} site(s) with n >= {MIN_SITE_N}; at least 2 are needed to pool"
    return out
