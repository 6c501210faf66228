"""Benchmark: import 1,000 participants × 10 timepoints × 60 items (600,000 answers) into a fresh database.

Goal (issue 4): under 30 s on SQLite. Prints the import time on a fresh SQLite file, the time of
re-importing the same study (which must change nothing), and the export time; then the same on
PostgreSQL when the test server of ``scripts/test-services.sh`` runs (``var/test-postgres.url``
or ``ALLIANCE_TEST_POSTGRES_URL``). The ratio printed is against the 30 s goal.

Run: ``.venv/bin/python benchmarks/bench_import.py [--participants N]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from alliance import instruments as bank
from alliance.protocol import Protocol, parse_protocol
from alliance.study import Study

ROOT = Path(__file__).resolve().parents[1]
GOAL_SECONDS = 30.0
# 30 + 12 + 17 + 1 = 60 items at each of the 10 timepoints.
INSTRUMENTS = ["meq30", "wai_sr", "grid_hamd17", "insight"]


def benchmark_protocol() -> Protocol:
    """Ten timepoints a week apart, each giving the same four instruments (60 items)."""
    return parse_protocol({
        "id": "bench", "name": "Import benchmark",
        "arms": [{"id": "immediate", "label": "Immediate"}, {"id": "delayed", "label": "Delayed",
                                                             "start_offset_days": 56}],
        "timepoints": [{"id": f"visit{i}", "label": f"Visit {i}", "kind": "baseline" if i == 1 else "follow_up",
                        "order": i, "anchor": "enrolment", "offset_days": 7 * (i - 1), "window_days": [0, 6],
                        "instruments": INSTRUMENTS} for i in range(1, 11)],
    })


def benchmark_study(n_participants: int, seed: int = 2024) -> Study:
    """A valid study with every item answered by every participant at every timepoint."""
    rng = np.random.default_rng(seed)
    protocol = benchmark_protocol()
    pids = np.array([f"P{i:05d}" for i in range(1, n_participants + 1)], dtype=object)
    participants = pd.DataFrame({
        "participant_id": pids, "arm": np.where(np.arange(n_participants) % 2, "delayed", "immediate"),
        "site": "site1", "facilitator_ids": [f"F{i % 20};F{(i + 7) % 20}" for i in range(n_participants)],
        "age": rng.integers(20, 70, n_participants),
    })
    pieces = []
    for timepoint in protocol.timepoint_ids:
        for instrument_id in INSTRUMENTS:
            inst = bank.get(instrument_id)
            n_items = len(inst.items)
            low = np.array([i.min for i in inst.items])
            high = np.array([i.max for i in inst.items])
            values = low + np.floor(rng.random((n_participants, n_items)) * (high - low + 1))
            values = np.minimum(values, high)
            pieces.append(pd.DataFrame({
                "participant_id": np.repeat(pids, n_items), "timepoint": timepoint, "instrument": instrument_id,
                "item": np.tile(np.array(inst.item_ids, dtype=object), n_participants),
                "value": values.ravel(), "rater": "clinician" if inst.rater == "clinician" else None,
                "administered_at": "2024-05-01",
            }))
    responses = pd.concat(pieces, ignore_index=True)
    return Study(protocol, participants, responses)


def run(database_url: str, study: Study, label: str) -> float:
    """Import, re-import and export ``study`` in a fresh process configured for ``database_url``."""
    code = """
import pickle, sys, time
from alliance.web import django_setup
django_setup()
from alliance.web.capture.storage import export_study, import_study
study = pickle.load(open(sys.argv[1], "rb"))
start = time.perf_counter(); summary = import_study(study, "bench", actor="bench"); first = time.perf_counter() - start
start = time.perf_counter(); again = import_study(study, "bench", actor="bench"); second = time.perf_counter() - start
start = time.perf_counter(); exported = export_study("bench"); third = time.perf_counter() - start
assert again.unchanged, again
assert len(exported.responses) == len(study.responses)
print(first, second, third, summary.created["responses"], summary.audit_events)
"""
    with tempfile.TemporaryDirectory() as folder:
        pickled = Path(folder) / "study.pickle"
        pd.to_pickle(study, pickled)
        env = {**os.environ, "DATABASE_URL": database_url, "ALLIANCE_DATA_DIR": folder}
        out = subprocess.run([sys.executable, "-c", code, str(pickled)], env=env, check=True,
                             capture_output=True, text=True).stdout.split()
    first, second, third = (float(x) for x in out[:3])
    print(f"{label}: import {first:.1f} s ({int(out[3]):,} answers, {int(out[4]):,} audit events); "
          f"re-import unchanged {second:.1f} s; export {third:.1f} s; "
          f"import / 30 s goal = {first / GOAL_SECONDS:.2f}")
    return first


def postgres_url() -> str | None:
    url = os.environ.get("ALLIANCE_TEST_POSTGRES_URL")
    path = ROOT / "var" / "test-postgres.url"
    if not url and path.exists():
        url = path.read_text(encoding="utf-8").strip()
    if not url:
        return None
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=5):
            return url
    except Exception:
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=1000)
    args = parser.parse_args()

    start = time.perf_counter()
    study = benchmark_study(args.participants)
    study.validate()
    print(f"study: {args.participants:,} participants × 10 timepoints × 60 items = {len(study.responses):,} "
          f"answers (built and validated in {time.perf_counter() - start:.1f} s)")

    with tempfile.TemporaryDirectory() as folder:
        seconds = run(f"sqlite:///{Path(folder) / 'bench.sqlite3'}", study, "SQLite (fresh file)")

    url = postgres_url()
    if url is None:
        print("PostgreSQL: not running (scripts/test-services.sh starts it); skipped")
    else:
        import psycopg

        name = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        try:
            run(url.rsplit("/", 1)[0] + f"/{name}", study, "PostgreSQL (fresh database)")
        finally:
            with psycopg.connect(url, autocommit=True) as connection:
                connection.execute(f"DROP DATABASE {name}")
    if args.participants == 1000 and seconds >= GOAL_SECONDS:
        print(f"FAILED: the SQLite import took {seconds:.1f} s, the goal is under {GOAL_SECONDS:.0f} s")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
