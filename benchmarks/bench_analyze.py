"""Benchmark: `alliance analyze` (the default plan and the full report) on 2,000 participants vs 24.

The goal (issue 15): analysing 2,000 participants takes at most 3 times as long as analysing the
24 of the Levin trial — the analysis and the report must not grow with one drawing or one Python loop
per participant. Each size is simulated once (not timed); the timed part is `run_analysis` and
`write_report` (results.json, HTML, PDF, figure PNGs), as `alliance analyze` runs them. The peer of
the 2,000-participant run is the 24-participant run measured in the same process; medians of the
repeats (the machine is shared). Exits 1 when the ratio exceeds 3.

Run: ``.venv/bin/python benchmarks/bench_analyze.py [large_n] [repeats]``
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time

from alliance.analysis import run_analysis
from alliance.protocol import default_protocol
from alliance.report import write_report
from alliance.simulate import simulate_trial

GOAL = 3.0


def timed(study, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            results = run_analysis(study, created_utc="2026-01-01T00:00:00+00:00")
            write_report(study, results, folder)
            times.append(time.perf_counter() - start)
    return times


def main() -> int:
    large_n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    protocol = default_protocol()
    small = simulate_trial(protocol, n=24, seed=2024)
    large = simulate_trial(protocol, n=large_n, seed=2024)
    timed(small, 1)  # warm-up: imports, font registration, matplotlib caches
    small_times = timed(small, max(repeats, 5))
    large_times = timed(large, repeats)
    small_median, large_median = statistics.median(small_times), statistics.median(large_times)
    ratio = large_median / small_median
    print(f"analyze + report, 24 participants:     median {small_median:6.2f} s of {len(small_times)} runs")
    print(f"analyze + report, {large_n:,} participants: median {large_median:6.2f} s of {len(large_times)} runs")
    print(f"ratio {ratio:.2f} (goal: at most {GOAL:.0f})")
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
