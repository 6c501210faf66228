"""Benchmark: load and validate a 600,000-row tidy study directory, then compute its measures.

1,000 participants × 10 timepoints × 60 items. The Levin protocol gives fewer items per
timepoint, so the benchmark uses a protocol with the Levin timepoints and six instruments at
each (WAI-SR 12, MEQ30 30, EBI 6, GAD-7 7, SRS 4, insight 1 = 60 items). The peer it compares
with is reading the same CSV files with pandas and nothing else: the ratio says what validation
against the protocol and the instrument bank, and scoring, cost on top of parsing.

Run: ``.venv/bin/python benchmarks/bench_study_load.py [participants]``
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from alliance import instruments as bank
from alliance.protocol import Protocol, default_protocol, parse_protocol
from alliance.study import load, save
from alliance.study.tidy import Study

INSTRUMENTS = ["wai_sr", "meq30", "ebi", "gad7", "srs", "insight"]


def benchmark_protocol() -> Protocol:
    raw = default_protocol().to_dict()
    for timepoint in raw["timepoints"]:
        timepoint["instruments"] = list(INSTRUMENTS)
    raw["id"] = "bench"
    return parse_protocol(raw, origin="benchmark protocol")


def build_study(n_participants: int, seed: int = 1) -> Study:
    """Random valid answers to every item of every instrument at every timepoint."""
    protocol = benchmark_protocol()
    rng = np.random.default_rng(seed)
    participant_ids = np.array([f"P{i:05d}" for i in range(1, n_participants + 1)], dtype=object)
    items = [(inst.id, item) for inst in map(bank.get, INSTRUMENTS) for item in inst.items]
    frames = []
    for timepoint in protocol.timepoint_ids:
        for instrument_id, item in items:
            if item.step is None:
                values = np.round(rng.uniform(item.min, item.max, n_participants), 1)
            else:
                values = rng.integers(int(item.min), int(item.max) + 1, n_participants).astype(float)
            frames.append(pd.DataFrame({"participant_id": participant_ids, "timepoint": timepoint,
                                        "instrument": instrument_id, "item": item.id, "value": values}))
    responses = pd.concat(frames, ignore_index=True)
    participants = pd.DataFrame({"participant_id": participant_ids,
                                 "arm": np.where(np.arange(n_participants) % 2 == 0, "immediate", "delayed")})
    return Study(protocol=protocol, participants=participants, responses=responses)


def main(n_participants: int = 1000) -> None:
    study = build_study(n_participants)
    with tempfile.TemporaryDirectory() as directory:
        save(study, directory)
        size = (Path(directory) / "responses.csv").stat().st_size
        start = time.perf_counter()
        pd.read_csv(Path(directory) / "responses.csv")
        pd.read_csv(Path(directory) / "participants.csv")
        parse = time.perf_counter() - start

        start = time.perf_counter()
        loaded = load(directory)
        loading = time.perf_counter() - start
    start = time.perf_counter()
    long = loaded.measures()
    long_time = time.perf_counter() - start
    start = time.perf_counter()
    wide = loaded.measures(wide=True)
    wide_time = time.perf_counter() - start

    rows = len(loaded.responses)
    print(f"responses: {rows:,} rows ({n_participants:,} participants × {len(study.protocol.timepoints)} "
          f"timepoints × 60 items), responses.csv {size / 1e6:.1f} MB")
    print(f"pandas.read_csv alone (peer)      {parse:6.2f} s")
    print(f"alliance.study.load (validated)   {loading:6.2f} s   ratio {loading / parse:.1f}× the plain parse")
    print(f"Study.measures() long             {long_time:6.2f} s   {len(long):,} rows")
    print(f"Study.measures(wide=True)         {wide_time:6.2f} s   {wide.shape[0]:,} × {wide.shape[1]:,}")
    print(f"load + measures                   {loading + long_time:6.2f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
