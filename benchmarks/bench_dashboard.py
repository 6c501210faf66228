"""Benchmark: the study dashboard, the participant dashboard and the alert list on SQLite, at 1,000
and at 100 participants × 20 timepoints.

Goals (issue 14): at most 30 SQL queries per page whatever the number of participants; p95 under
300 ms for the study dashboard and under 50 ms for the participant dashboard (the alert list: the
query bound; its time is printed for information). Builds a fresh SQLite database holding two
synthetic studies of a 20-timepoint protocol (three preparation sessions, two dosing sessions with
integration meetings, eleven follow-ups up to 12 months) — every participant with every form
submitted, except that one in ten has not given the last two follow-ups (so that some are overdue
or missed) — imported with ``alliance.web.capture.storage.import_study`` (the path
``alliance import`` takes, which also raises the alerts). Then, logged in as an investigator
(who sees every participant), renders each page many times with Django's test ``Client`` after a
warm-up, and prints per page and size: SQL queries per page (``CaptureQueriesContext``; the same
at 100 and at 1,000 participants, or the bound is missed), p50 / p95 / max in ms, and each figure's
ratio to its goal. The machine is shared and noisy: look at p50 and p95, not at single requests.
Timelines are cached per participant, keyed on their data (``alliance.web.capture.timelines``), so
the measured requests after the warm-up find them; for information (no goal) it also prints the
study dashboard with the cache emptied before each request — the first visit of a day. Exits 1
when a goal is missed.

Run: ``.venv/bin/python benchmarks/bench_dashboard.py [--participants 1000] [--small 100]
[--requests 300] [--study-requests 40] [--cold 3]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta

import numpy as np
import pandas as pd

from alliance.protocol import parse_protocol

MAX_QUERIES = 30
GOALS_MS = {"study dashboard": 300.0, "participant dashboard": 50.0, "alert list": None}
ALLIANCE = "wai_sr"
OUTCOME = "grid_hamd17"
ACUTE = ["meq30", "insight", "ebi"]


def protocol_dict() -> dict:
    """Twenty timepoints: baseline, 3 preparation, 2 dosing, 4 integration, 10 follow-ups."""
    def tp(id_, kind, anchor, offset, instruments, window=(3, 3), dose=None):
        entry = {"id": id_, "label": id_.replace("_", " ").capitalize(), "kind": kind, "anchor": anchor,
                 "offset_days": offset, "window_days": list(window), "instruments": instruments}
        if dose:
            entry["dose"] = {"compound": "psilocybin", "amount": dose, "unit": "mg/70kg"}
        return entry

    follow_ups = [("week1", 7), ("week2", 14), ("week4", 28), ("week6", 42), ("week8", 56), ("month3", 91),
                  ("month4", 120), ("month6", 182), ("month9", 273), ("month12", 365)]
    timepoints = [
        tp("baseline", "baseline", "enrolment", 0, [OUTCOME], (0, 14)),
        tp("prep1", "preparation", "session1", -14, [ALLIANCE]),
        tp("prep2", "preparation", "session1", -7, [ALLIANCE]),
        tp("prep3", "preparation", "session1", -1, [ALLIANCE], (3, 0)),
        tp("session1", "dosing", "treatment_start", 21, ACUTE, (7, 14), dose=20),
        tp("post_session1", "integration", "session1", 1, [ALLIANCE], (0, 2)),
        tp("integration1", "integration", "session1", 7, [ALLIANCE]),
        tp("prep_session2", "preparation", "session2", -1, [ALLIANCE], (2, 0)),
        tp("session2", "dosing", "session1", 14, ACUTE, (2, 2), dose=30),
        tp("post_session2", "integration", "session2", 1, [ALLIANCE], (0, 2)),
    ]
    for id_, days in follow_ups:
        instruments = [ALLIANCE, OUTCOME] if id_ in ("week1", "week4", "month3", "month6", "month12") else [OUTCOME]
        timepoints.append(tp(id_, "follow_up", "session2", days, instruments, (7, 7)))
    for order, entry in enumerate(timepoints, start=1):
        entry["order"] = order
    return {"id": "bench20", "name": "Dashboard benchmark (20 timepoints)",
            "arms": [{"id": "immediate", "label": "Immediate"},
                     {"id": "delayed", "label": "Delayed", "start_offset_days": 56}],
            "timepoints": timepoints,
            "derived": [{"id": "peak", "label": "Peak", "from_timepoints": ["session1", "session2"], "rule": "max"}]}


def benchmark_study(n_participants: int, seed: int = 2024):
    """Every participant answers every item of every form at every timepoint, except that one in
    ten has not given the last two follow-ups."""
    from alliance import instruments as bank
    from alliance.study import Study

    rng = np.random.default_rng(seed)
    protocol = parse_protocol(protocol_dict())
    pids = np.array([f"P{i:05d}" for i in range(1, n_participants + 1)], dtype=object)
    participants = pd.DataFrame({
        "participant_id": pids, "arm": np.where(np.arange(n_participants) % 2, "delayed", "immediate"),
        "site": "site1", "facilitator_ids": [f"F{i % 20};F{(i + 7) % 20}" for i in range(n_participants)],
    })
    pieces = []
    for timepoint in protocol.timepoints:
        for instrument_id in timepoint.instruments:
            inst = bank.get(instrument_id)
            low = np.array([i.min for i in inst.items])
            high = np.array([i.max for i in inst.items])
            values = np.minimum(low + np.floor(rng.random((n_participants, len(inst.items))) * (high - low + 1)), high)
            pieces.append(pd.DataFrame({
                "participant_id": np.repeat(pids, len(inst.items)), "timepoint": timepoint.id,
                "instrument": instrument_id, "item": np.tile(np.array(inst.item_ids, dtype=object), n_participants),
                "value": values.ravel(), "rater": "rater1" if inst.rater == "clinician" else None,
                "administered_at": "2024-05-01"}))
    dosing = pd.DataFrame([(pid, session, f"2024-0{1 + session}-15", "psilocybin", amount, "mg/70kg")
                           for pid in pids for session, amount in ((1, 20.0), (2, 30.0))],
                          columns=["participant_id", "session", "date", "compound", "amount", "unit"])
    responses = pd.concat(pieces, ignore_index=True)
    last_two = [t.id for t in protocol.timepoints[-2:]]
    dropped = set(pids[::10])
    responses = responses[~(responses["timepoint"].isin(last_two) & responses["participant_id"].isin(dropped))]
    return Study(protocol, participants, responses.reset_index(drop=True), dosing)


def build(name: str, n_participants: int, user) -> list:
    """Import the benchmark study of ``n_participants`` as ``name``; its participants."""
    from alliance.web.accounts.members import set_membership
    from alliance.web.audit.log import AuditLog
    from alliance.web.capture import models as m
    from alliance.web.capture.storage import import_study

    started = time.perf_counter()
    study = benchmark_study(n_participants)
    import_study(study, name, actor="bench:setup")
    stored = m.Study.objects.get(name=name)
    # Enrolment dates (the web app's enrolment form sets them; an import of the contract does not).
    first = date.today() - timedelta(days=500)
    rows = list(m.Participant.objects.filter(study=stored))
    for k, participant in enumerate(rows):
        participant.enrolled_on = first + timedelta(days=k % 200)
    m.Participant.objects.bulk_update(rows, ["enrolled_on"], batch_size=500)
    from alliance.web.monitor.alerting import refresh_alerts

    refresh_alerts(stored)  # the scheduled job: the overdue and missed alerts of the enrolment dates
    log = AuditLog(actor="bench:setup", study=stored)
    set_membership(user, stored, "investigator", log)
    log.write()
    from alliance.web.monitor.models import Alert

    print(f"built {name}: {n_participants:,} participants × {len(study.protocol.timepoints)} timepoints, "
          f"{len(study.responses):,} answers, {Alert.objects.filter(study=stored).count():,} alerts, "
          f"in {time.perf_counter() - started:.1f} s")
    return [p.participant_id for p in rows]


def measure(client, urls: list[str], warm_up: int) -> tuple[np.ndarray, list[int], bytes]:
    """Times in ms and SQL queries of each request after ``warm_up`` unmeasured ones (caches, templates)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for url in urls[:warm_up]:
        page = client.get(url)
        assert page.status_code == 200, (url, page.status_code)
    times, queries = [], []
    for url in urls[warm_up:]:
        with CaptureQueriesContext(connection) as captured:
            t0 = time.perf_counter()
            page = client.get(url)
            times.append((time.perf_counter() - t0) * 1000)
        assert page.status_code == 200, (url, page.status_code)
        queries.append(len(captured.captured_queries))
    return np.array(times), queries, page.content


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=1000)
    parser.add_argument("--small", type=int, default=100, help="the smaller study (queries must not grow with n)")
    parser.add_argument("--requests", type=int, default=300, help="participant dashboards measured per size")
    parser.add_argument("--study-requests", type=int, default=40, help="study dashboards and alert lists per size")
    parser.add_argument("--cold", type=int, default=3, help="study dashboards with no timeline cached, per size")
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="alliance-bench-dashboard-")
    os.environ["ALLIANCE_DATA_DIR"] = folder
    os.environ.pop("DATABASE_URL", None)
    os.environ["ALLIANCE_ALLOWED_HOSTS"] = "testserver"
    os.environ["DJANGO_SETTINGS_MODULE"] = "alliance.web.settings"
    from alliance.web import django_setup

    django_setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from alliance.web.capture import timelines

    user = get_user_model().objects.create_user("investigator", password="not used in the benchmark 1")
    print(f"SQLite: {folder}")
    sizes = sorted({args.small, args.participants})
    studies = {n: build(f"bench{n}", n, user) for n in sizes}
    client = Client()
    client.force_login(user)
    rng = np.random.default_rng(7)
    missed, queries_seen = [], {}
    print(f"\n{'page':<22} {'n':>6} {'queries':>8} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}   ratio to goal")
    for n in sizes:
        name = f"bench{n}"
        pages = {
            "study dashboard": [reverse("monitor:study", kwargs={"study": name})] * (args.study_requests + 3),
            "participant dashboard": [reverse("monitor:participant", kwargs={"study": name, "participant": pid})
                                      for pid in rng.choice(studies[n], size=args.requests + 20)],
            "alert list": [reverse("monitor:alerts", kwargs={"study": name})] * (args.study_requests + 3),
        }
        for page, urls in pages.items():
            warm_up = 20 if page == "participant dashboard" else 3
            times, queries, content = measure(client, urls, warm_up)
            if page == "participant dashboard":
                assert content.count(b"<svg") == 4, "the dashboard lacks its charts"
            p50, p95 = np.percentile(times, [50, 95])
            most = max(queries)
            queries_seen.setdefault(page, {})[n] = sorted(set(queries))
            goal = GOALS_MS[page]
            ratios = [f"queries {most}/{MAX_QUERIES} = {most / MAX_QUERIES:.2f}"]
            if most > MAX_QUERIES:
                missed.append(f"{page} at {n:,}: {most} queries > {MAX_QUERIES}")
            if goal is not None:
                ratios.append(f"p95 {p95:.1f}/{goal:.0f} ms = {p95 / goal:.2f}")
                if p95 >= goal:
                    missed.append(f"{page} at {n:,}: p95 {p95:.1f} ms ≥ {goal:.0f} ms")
            else:
                ratios.append("time: no goal")
            print(f"{page:<22} {n:>6,} {most:>8} {p50:>8.1f} {p95:>8.1f} {times.max():>8.1f}   {'; '.join(ratios)}")
        # For information: the study dashboard with no timeline cached (the first visit of a day,
        # or after every participant's data changed), each request after emptying the cache.
        cold = []
        for _ in range(args.cold):
            timelines.clear_cache()
            t0 = time.perf_counter()
            assert client.get(pages["study dashboard"][0]).status_code == 200
            cold.append((time.perf_counter() - t0) * 1000)
        if cold:
            print(f"{'  (no timeline cached)':<22} {n:>6,} {'':>8} {np.median(cold):>8.1f} {'':>8} {max(cold):>8.1f}"
                  f"   time: no goal (median of {len(cold)})")
    for page, by_size in queries_seen.items():
        counts = {n: q for n, q in by_size.items()}
        if len({tuple(q) for q in counts.values()}) > 1:
            missed.append(f"{page}: queries grow with the participants: {counts}")
    connection.close()
    shutil.rmtree(folder, ignore_errors=True)
    print("\nall goals met" if not missed else "\nNOT met:\n  " + "\n  ".join(missed))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
