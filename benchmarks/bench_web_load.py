"""Benchmark: the web app under load — participants submitting forms while staff open dashboards.

Goal (issue 11): 50 participants + 5 staff for 60 s with **0 errors and 0 lost submissions** on
SQLite (``alliance serve``, waitress) and on PostgreSQL (gunicorn), and **p95 under 1 s on
PostgreSQL**. The peer is that goal: the ratio printed is p95 ÷ 1 s.

What it does, per backend:

1. Makes a throwaway database (SQLite: a temporary ``ALLIANCE_DATA_DIR``; PostgreSQL: a new
   database on the test server of ``scripts/test-services.sh``, URL in ``var/test-postgres.url``,
   dropped at the end), a study with the built-in Levin 2024 protocol and ``--participants``
   participants (enrolled 0–40 days ago, so that some assessments are overdue), a private link to
   each of their self-report forms (9 each) and an investigator account for the staff.
2. Starts the real server on 127.0.0.1 in a subprocess: ``alliance serve`` (waitress, 8 threads:
   the SQLite default) or ``gunicorn alliance.web.wsgi`` (gthread workers) with ``DATABASE_URL``.
3. Runs one thread per participant and ``--staff`` staff threads for ``--seconds``. A participant
   opens a form through its private link, saves it as a draft ``--drafts`` times with new answers
   (as the form's autosave does) and submits it, then goes on to the next form; each request
   waits ``--think`` seconds (± 50 %) after the previous one. A staff member logs in (the real
   log-in form, before the clock starts, as are a few uncounted warm-up requests) and opens, in
   turn, the study dashboard, a random participant's dashboard and the alert list.
4. Counts the requests, the errors (an HTTP status other than 2xx/3xx, a timeout, a dropped
   connection) and the **lost** submissions: a form whose submission was answered with success,
   or whose last draft save was, but whose stored answers (and status) in the database differ.

Bounded: at most 200 participant and 20 staff threads, 600 s, a timeout on every request
(``--timeout``, 30 s), and loopback only. A participant whose 9 forms are all submitted stops.

Run: ``.venv/bin/python benchmarks/bench_web_load.py [--backend sqlite|postgresql|both]
[--participants 50] [--staff 5] [--seconds 60]``. PostgreSQL needs gunicorn (the ``production``
extra: ``.venv/bin/pip install gunicorn``) and a server: ``bash scripts/test-services.sh``;
without them that backend is skipped with a message.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GOAL_P95_S = 1.0
MAX_PARTICIPANTS, MAX_STAFF, MAX_SECONDS = 200, 20, 600
STUDY = "bench-web-load"
STAFF_USER, STAFF_PASSWORD = "bench-investigator", "bench-load-password-2024"
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


# ---------------------------------------------------------------------------------------------
# An HTTP client per simulated user: one keep-alive connection, cookies, no redirects followed
# ---------------------------------------------------------------------------------------------

class Browser:
    """Just enough of a browser: cookies, a CSRF token, one connection kept alive, a timeout.

    A connection idle for over a second is not reused (gunicorn closes idle ones after 2 s), and a
    request whose sending fails on a kept-alive connection is sent again on a new one — as browsers
    do: the server never read it. A request that was sent and got no answer is never repeated.
    """

    IDLE_SECONDS = 1.0

    def __init__(self, port: int, timeout: float):
        self.port, self.timeout = port, timeout
        self.cookies: dict[str, str] = {}
        self.connection: http.client.HTTPConnection | None = None
        self.last_used = 0.0

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, str]:
        body = urlencode(form) if form is not None else None
        headers = {"Host": f"127.0.0.1:{self.port}", "Connection": "keep-alive"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if self.connection is not None and time.monotonic() - self.last_used > self.IDLE_SECONDS:
            self.close()
        for attempt in (1, 2):   # a kept-alive connection the server closed meanwhile: reconnect once
            reused = self.connection is not None
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                self.connection.request(method, path, body=body, headers=headers)
            except (BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt == 2 or not reused:
                    raise
                continue
            try:
                response = self.connection.getresponse()
                text = response.read().decode("utf-8", "replace")
            except http.client.RemoteDisconnected:
                self.close()
                if attempt == 2 or not reused or method != "GET":   # a POST sent is never sent twice
                    raise
                continue
            except Exception:
                self.close()
                raise
            finally:
                self.last_used = time.monotonic()
            for header in response.headers.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(header).items():
                    self.cookies[name] = morsel.value
            if response.getheader("Connection", "").lower() == "close":
                self.close()
            return response.status, text
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


# ---------------------------------------------------------------------------------------------
# What happened
# ---------------------------------------------------------------------------------------------

@dataclass
class Tally:
    """Latencies per kind of request, errors, and the last answers acknowledged per form."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    examples: list[str] = field(default_factory=list)
    # (participant, timepoint, instrument) → (answers, submitted?) of the last successful POST,
    # or None when a later POST failed (its effect is unknown, so the form is not judged).
    acknowledged: dict[tuple, tuple | None] = field(default_factory=dict)
    submitted: int = 0
    exhausted: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, seconds: float, ok: bool, what: str = "") -> None:
        with self.lock:
            self.latencies[kind].append(seconds)
            if not ok:
                self.errors[kind] += 1
                if len(self.examples) < 8:
                    self.examples.append(f"{kind}: {what}"[:300])


def timed(tally: Tally, kind: str, browser: Browser, method: str, path: str, form: dict | None = None):
    start = time.perf_counter()
    try:
        status, text = browser.request(method, path, form)
    except Exception as error:  # a timeout, a refused or dropped connection: an error, counted
        tally.record(kind, time.perf_counter() - start, False, f"{type(error).__name__}: {error}")
        return None, ""
    ok = 200 <= status < 400
    tally.record(kind, time.perf_counter() - start, ok, f"HTTP {status} {path}: {_gist(text)}")
    return status, text


def _gist(html: str) -> str:
    title = re.search(r"<title>(.*?)</title>", html, re.S)
    return (title[1].strip() if title else html[:200]).replace("\n", " ")


def pause(think: float, stop_at: float, rng: random.Random) -> bool:
    """Wait about ``think`` seconds; False when the run is over."""
    wait = think * rng.uniform(0.5, 1.5)
    if time.monotonic() + wait >= stop_at:
        return False
    time.sleep(wait)
    return True


# ---------------------------------------------------------------------------------------------
# The simulated users
# ---------------------------------------------------------------------------------------------

def participant(forms: list[dict], port: int, args, stop_at: float, tally: Tally, seed: int) -> None:
    from alliance import instruments as bank

    rng = random.Random(seed)
    browser = Browser(port, args.timeout)
    try:
        for entry in forms:
            key = (entry["participant"], entry["timepoint"], entry["instrument"])
            items = bank.get(entry["instrument"]).items
            path = f"/f/{entry['token']}/"
            for step in range(args.drafts + 1):
                if not pause(args.think, stop_at, rng):
                    return
                status, page = timed(tally, "form GET", browser, "GET", path)
                token = CSRF_FIELD.search(page or "")
                if status != 200 or token is None:
                    continue
                answers = {item.id: _answer(item, rng) for item in items}
                action = "submit" if step == args.drafts else "draft"
                if not pause(args.think, stop_at, rng):
                    return
                status, _ = timed(tally, f"form POST {action}", browser, "POST", path,
                                  {**{k: f"{v:g}" for k, v in answers.items()}, "_action": action,
                                   "csrfmiddlewaretoken": token[1]})
                with tally.lock:
                    tally.acknowledged[key] = (answers, action == "submit") if status is not None \
                        and 200 <= status < 400 else None
                    tally.submitted += action == "submit" and status == 200
        with tally.lock:
            tally.exhausted += 1
    finally:
        browser.close()


def _answer(item, rng: random.Random) -> float:
    if item.step is None:
        return round(rng.uniform(item.min, item.max), 1)
    steps = int(round((item.max - item.min) / item.step))
    return float(item.min + item.step * rng.randint(0, steps))


def log_in(port: int, args, tally: Tally) -> Browser | None:
    """A staff member's browser, logged in through the log-in form (before the clock starts)."""
    browser = Browser(port, args.timeout)
    status, page = timed(tally, "log-in", browser, "GET", "/accounts/login/")
    token = CSRF_FIELD.search(page or "")
    if token is None:
        return None
    status, _ = timed(tally, "log-in", browser, "POST", "/accounts/login/",
                      {"username": STAFF_USER, "password": STAFF_PASSWORD, "csrfmiddlewaretoken": token[1]})
    if status != 302:
        tally.record("log-in", 0.0, False, f"log-in answered {status}, not a redirect")
        return None
    return browser


def warm_up(port: int, args, forms: list[list[dict]]) -> None:
    """Open each page kind a few times at once, uncounted: a fresh worker loads templates and code."""
    def visit(path: str) -> None:
        browser = Browser(port, args.timeout)
        try:
            browser.request("GET", path)
        except Exception:   # the run itself counts failures
            pass
        finally:
            browser.close()

    paths = [f"/f/{forms[k % len(forms)][0]['token']}/" for k in range(2 * args.workers * args.threads)]
    paths += ["/accounts/login/"] * (args.workers * args.threads)
    threads = [threading.Thread(target=visit, args=(path,)) for path in paths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(args.timeout)


def staff(browser: Browser, participant_ids: list[str], args, stop_at: float, tally: Tally, seed: int) -> None:
    rng = random.Random(seed)
    try:
        pages = [("study dashboard", f"/monitor/studies/{STUDY}/"), ("participant dashboard", None),
                 ("alert list", f"/monitor/studies/{STUDY}/alerts/")]
        turn = 0
        while pause(args.think, stop_at, rng):
            kind, path = pages[turn % len(pages)]
            if path is None:
                path = f"/monitor/studies/{STUDY}/participants/{rng.choice(participant_ids)}/"
            timed(tally, kind, browser, "GET", path)
            turn += 1
    finally:
        browser.close()


# ---------------------------------------------------------------------------------------------
# Setting up, serving, checking
# ---------------------------------------------------------------------------------------------

def setup_study(n_participants: int, seed: int) -> tuple[list[list[dict]], list[str]]:
    """The study, its participants and their private links; the staff account (Django is set up)."""
    from django.utils import timezone

    from alliance import instruments as bank
    from alliance.protocol import default_protocol
    from alliance.web.accounts.members import create_user, set_membership
    from alliance.web.audit.log import AuditLog
    from alliance.web.capture import models as m
    from alliance.web.capture import recording

    rng = np.random.default_rng(seed)
    log = AuditLog(actor="bench:setup")
    user = create_user(STAFF_USER, STAFF_PASSWORD, log, validate=False)
    log.write()
    study = recording.create_study(STUDY, default_protocol(), user=user)
    log = AuditLog(actor="bench:setup", study=study)
    set_membership(user, study, "investigator", log)
    arms = list(study.arms.order_by("code"))
    timepoints = {t.code: t for t in study.timepoints.all()}
    self_reports = [(t.id, i) for t in default_protocol().timepoints for i in t.instruments
                    if bank.get(i).rater != "clinician"]
    forms, ids = [], []
    for k in range(n_participants):
        pid = f"L{k + 1:03d}"
        person = recording.enrol(study, participant_id=pid, arm=arms[k % len(arms)],
                                 enrolled_on=timezone.localdate() - timedelta(days=int(rng.integers(0, 41))), log=log)
        mine = []
        for timepoint, instrument in self_reports:
            token, _ = recording.create_private_link(person, timepoints[timepoint], instrument, days=2, log=log)
            mine.append({"participant": pid, "timepoint": timepoint, "instrument": instrument, "token": token})
        forms.append(mine)
        ids.append(pid)
    log.write()
    assert m.PrivateLink.objects.filter(participant__study=study).count() == n_participants * len(self_reports)
    return forms, ids


def count_lost(tally: Tally) -> tuple[int, int]:
    """Forms acknowledged (submitted or saved) whose stored answers differ; and how many were checked."""
    from alliance.web.capture import models as m

    stored: dict[tuple, tuple[str, dict]] = {}
    administrations = m.Administration.objects.filter(participant__study__name=STUDY).values_list(
        "pk", "participant__participant_id", "timepoint__code", "instrument", "status")
    by_pk = {pk: (pid, tp, inst, status) for pk, pid, tp, inst, status in administrations}
    answers: dict[int, dict] = defaultdict(dict)
    for pk, item, value in m.ItemResponse.objects.filter(administration__in=list(by_pk)).values_list(
            "administration", "item", "value"):
        answers[pk][item] = value
    for pk, (pid, tp, inst, status) in by_pk.items():
        stored[(pid, tp, inst)] = (status, answers[pk])
    lost = checked = 0
    for key, last in tally.acknowledged.items():
        if last is None:
            continue
        checked += 1
        sent, submitted = last
        status, values = stored.get(key, ("", {}))
        if (submitted and status != m.Administration.Status.SUBMITTED) or \
                any(values.get(item) is None or abs(values[item] - v) > 1e-9 for item, v in sent.items()):
            lost += 1
    return lost, checked


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the server did not listen on port {port} within {seconds:.0f} s")


def postgres_url() -> tuple[str | None, str]:
    url = os.environ.get("ALLIANCE_TEST_POSTGRES_URL")
    file = ROOT / "var" / "test-postgres.url"
    if not url and file.exists():
        url = file.read_text(encoding="utf-8").strip()
    if not url:
        return None, "no PostgreSQL server (run `bash scripts/test-services.sh`, or set ALLIANCE_TEST_POSTGRES_URL)"
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=5):
            pass
    except Exception as error:
        return None, f"PostgreSQL at {url} does not answer: {error}"
    if shutil.which("gunicorn", path=str(Path(sys.executable).parent)) is None:
        return None, "gunicorn is not installed (the `production` extra: .venv/bin/pip install gunicorn)"
    return url, ""


def run_backend(backend: str, args, pg_url: str | None) -> dict:
    """Set up, serve, load and check one backend; returns the figures."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"alliance-bench-load-{backend}-"))
    env = {**os.environ, "ALLIANCE_DATA_DIR": str(data_dir), "ALLIANCE_HTTPS": "false",
           "ALLIANCE_ALLOWED_HOSTS": "127.0.0.1,localhost", "ALLIANCE_DEBUG": "false"}
    env.pop("DATABASE_URL", None)
    database = None
    if backend == "postgresql":
        import psycopg

        database = f"bench_web_load_{os.getpid()}"
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{database}"')
        env["DATABASE_URL"] = pg_url.rsplit("/", 1)[0] + f"/{database}"
    os.environ.update({k: env[k] for k in ("ALLIANCE_DATA_DIR", "ALLIANCE_HTTPS", "ALLIANCE_ALLOWED_HOSTS")})
    if "DATABASE_URL" in env:
        os.environ["DATABASE_URL"] = env["DATABASE_URL"]
    else:
        os.environ.pop("DATABASE_URL", None)
    process = None
    try:
        from django.db import connections

        from alliance.web import django_setup

        django_setup(https=False, allowed_hosts=["127.0.0.1", "localhost"])
        started = time.perf_counter()
        forms, ids = setup_study(args.participants, args.seed)
        connections.close_all()
        print(f"  set up {args.participants} participants, {sum(map(len, forms))} private links in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        port = free_port()
        bin_dir = Path(sys.executable).parent
        if backend == "sqlite":
            command = [str(bin_dir / "alliance"), "serve", "--host", "127.0.0.1", "--port", str(port)]
            server = "alliance serve (waitress, 8 threads)"
        else:
            command = [str(bin_dir / "gunicorn"), "alliance.web.wsgi", "--bind", f"127.0.0.1:{port}",
                       "--worker-class", "gthread", "--workers", str(args.workers), "--threads", str(args.threads),
                       "--timeout", "60", "--log-level", "warning"]
            server = f"gunicorn ({args.workers} workers × {args.threads} threads)"
        log_file = (data_dir / "server.log").open("w")
        process = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=data_dir)
        wait_until_up(port, process)
        warm_up(port, args, forms)
        tally = Tally()
        # Staff are logged in before the clock starts (an Argon2 hash each, on purpose slow).
        browsers = [b for b in (log_in(port, args, tally) for _ in range(args.staff)) if b is not None]
        stop_at = time.monotonic() + args.seconds
        threads = [threading.Thread(target=participant, args=(forms[k], port, args, stop_at, tally, args.seed + k),
                                    daemon=True) for k in range(args.participants)]
        threads += [threading.Thread(target=staff, args=(browser, ids, args, stop_at, tally, 10_000 + k),
                                     daemon=True) for k, browser in enumerate(browsers)]
        began = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(args.seconds + 2 * args.timeout + 10)
        elapsed = time.perf_counter() - began
        lost, checked = count_lost(tally)
        connections.close_all()
        return {"backend": backend, "server": server, "tally": tally, "lost": lost, "checked": checked,
                "elapsed": elapsed, "log": data_dir / "server.log"}
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        if database is not None:
            from django.db import connections

            connections.close_all()
            import psycopg

            with psycopg.connect(pg_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def report(figures: dict) -> None:
    tally: Tally = figures["tally"]
    every = [s for kind, values in tally.latencies.items() if kind != "log-in" for s in values]
    n_errors = sum(tally.errors.values())
    print(f"\n{figures['backend']}: {figures['server']}, {figures['elapsed']:.0f} s")
    print(f"  {'request':<24}{'n':>7}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    for kind in sorted(tally.latencies):
        values = np.array(tally.latencies[kind]) * 1000
        print(f"  {kind:<24}{len(values):>7}{tally.errors.get(kind, 0):>8}{np.percentile(values, 50):>9.0f}"
              f"{np.percentile(values, 95):>9.0f}{values.max():>9.0f}")
    p50, p95 = (float(np.percentile(every, q)) if every else float("nan") for q in (50, 95))
    print(f"  {'all but log-in':<24}{len(every):>7}{n_errors:>8}{p50 * 1000:>9.0f}{p95 * 1000:>9.0f}")
    print(f"  requests {len(every)} in the run ({len(every) / figures['elapsed']:.1f}/s), errors {n_errors}, "
          f"forms submitted {tally.submitted}, lost {figures['lost']} of {figures['checked']} acknowledged forms "
          f"checked, participants who finished all forms {tally.exhausted}")
    print(f"  p95 / goal ({GOAL_P95_S:g} s): {p95 / GOAL_P95_S:.2f}")
    for example in tally.examples:
        print(f"  error: {example}")
    if n_errors:
        print(f"  server log: {figures['log']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--participants", type=int, default=50)
    parser.add_argument("--staff", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--think", type=float, default=1.0, help="Seconds between a user's requests (± 50 %%).")
    parser.add_argument("--drafts", type=int, default=3, help="Draft saves of a form before it is submitted.")
    parser.add_argument("--timeout", type=float, default=30, help="Seconds a request may take.")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers (PostgreSQL).")
    parser.add_argument("--threads", type=int, default=4, help="Threads per gunicorn worker.")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    if not (1 <= args.participants <= MAX_PARTICIPANTS and 0 <= args.staff <= MAX_STAFF
            and 0 < args.seconds <= MAX_SECONDS and 0 < args.timeout <= 120):
        parser.error(f"at most {MAX_PARTICIPANTS} participants, {MAX_STAFF} staff, {MAX_SECONDS} s; "
                     "a timeout up to 120 s")
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    pg_url, why_not = postgres_url() if "postgresql" in backends else (None, "")
    print(f"web load: {args.participants} participants + {args.staff} staff for {args.seconds:g} s, "
          f"think {args.think:g} s, {args.drafts} drafts per form")
    for backend in backends:
        if backend == "postgresql" and pg_url is None:
            print(f"\npostgresql: skipped, {why_not}")
            continue
        # Django is set up once per process: each backend runs in a child process of its own.
        if len(backends) > 1:
            child = [sys.executable, __file__, *sys.argv[1:], "--backend", backend]
            subprocess.run(child, check=False)
            continue
        print(f"\n{backend}: setting up", flush=True)
        report(run_backend(backend, args, pg_url))


if __name__ == "__main__":
    main()
