"""``alliance serve`` (a real server on a free loopback port), the demo seed, the score tables."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from alliance.web.audit.models import AuditEvent
from alliance.web.capture import models as m
from alliance.web.capture.demo import DEMO_PASSWORD, seed_demo
from alliance.web.capture.queries import participant_scores, study_scores


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fetch(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_alliance_serve_migrates_and_serves_pages_and_static_files(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "ALLIANCE_HTTPS", "ALLIANCE_DEBUG")}
    env["ALLIANCE_DATA_DIR"] = str(tmp_path)
    server = subprocess.Popen([sys.executable, "-m", "alliance.cli", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                status, headers, body = fetch(f"{base}/accounts/login/")
                break
            except (urllib.error.URLError, ConnectionError):
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"alliance serve did not start: {server.stdout.read() if server.poll() is not None else ''}")
                time.sleep(0.5)
        assert status == 200 and b"Log in" in body
        assert "default-src 'self'" in headers["Content-Security-Policy"]
        assert "no-store" in headers["Cache-Control"]  # a page of the app: never kept by the browser
        assert "Secure" not in headers.get("Set-Cookie", "")  # plain HTTP on loopback
        for asset in ("alliance/alliance.css", "alliance/alliance.js", "alliance/htmx.min.js"):
            status, asset_headers, content = fetch(f"{base}/static/{asset}")
            assert status == 200 and content, asset
            assert "no-store" not in asset_headers.get("Cache-Control", ""), asset  # static files may be cached
        assert fetch(f"{base}/")[0] == 200  # redirected to the login page, which answers
        assert (tmp_path / "alliance.sqlite3").exists()
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.django_db
def test_seed_demo_gives_each_role_an_account(web_study):
    accounts = seed_demo(web_study.name)
    assert {a["role"] for a in accounts.values()} == {"admin", "investigator", "facilitator", "monitor"}
    assert {accounts["demo-facilitator"]["facilitator_id"], accounts["demo-facilitator2"]["facilitator_id"]} == \
        {"F1", "F2"}
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username="demo-monitor")
    assert user.check_password(DEMO_PASSWORD)
    assert not m.Participant.objects.filter(study=web_study, enrolled_on__isnull=True).exists()
    assert AuditEvent.objects.filter(actor="demo:seed").exists()
    # Again: nothing new.
    count = AuditEvent.objects.count()
    assert seed_demo(web_study.name) == accounts
    assert AuditEvent.objects.count() == count


@pytest.mark.django_db
def test_score_tables_for_dashboards(web_study):
    table = study_scores(web_study)
    assert list(table.columns) == ["participant_id", "timepoint", "instrument", "scale", "value"]
    stored = m.Administration.objects.get(participant__participant_id="P001", timepoint__code="prep", instrument="wai_sr")
    row = table[(table.participant_id == "P001") & (table.timepoint == "prep") & (table.scale == "total")]
    assert row["value"].tolist() == [stored.scores["total"]]
    own = participant_scores(stored.participant)
    assert list(own.columns) == ["timepoint", "instrument", "scale", "value", "administered_at"]
    assert set(own["scale"]) >= {"total", "goal", "task", "bond"}
    assert own["timepoint"].iloc[0] == "baseline"  # protocol order
