"""The REDCap API client, against a local server that answers with real exports of REDCapR's test projects.

The answers are REDCapR's exports of its test projects on a real REDCap server (MIT, licence in
``data/redcap/LICENSE-REDCapR.md``): the longitudinal project's dictionary, records, events and
arms, its instrument-event mappings as its project XML states them, and the simple (classic)
project's API metadata and records. :class:`FakeRedcap` serves them over HTTP on 127.0.0.1, checks
the token and each POST field the client must send, filters the records by the ``records[i]`` asked
for, and can be told to answer like a login page, like REDCap refusing a token, or not at all.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl

import defusedxml.ElementTree as ElementTree
import pytest

from alliance.study.formats.redcap import read_export
from alliance.study.formats.redcap.api import (
    ApiResponse,
    RedcapApiError,
    check_token,
    check_url,
    export_project,
)
from alliance.web.redcap_transport import read_token_file, urllib_transport

DATA = Path(__file__).parent / "data" / "redcap"
LONGITUDINAL = DATA / "redcapr-longitudinal"
SIMPLE = DATA / "redcapr-simple"
_REDCAP_NS = "{https://projectredcap.org}"
_ODM_NS = "{http://www.cdisc.org/ns/odm/v1.3}"
# What REDCap answers a request whose token it does not know (HTTP 403, returnFormat=json).
NO_PERMISSION = {"error": "You do not have permissions to use the API"}
LOGIN_PAGE = (b"<!DOCTYPE html>\n<html><head><title>REDCap | Log In</title></head>"
              b"<body><form action='/'>Username</form></body></html>")
RECORD_OPTIONS = {"type": "flat", "rawOrLabel": "raw", "rawOrLabelHeaders": "raw", "exportCheckboxLabel": "false",
                  "exportDataAccessGroups": "true", "exportSurveyFields": "true"}


def form_event_mapping(project_xml: Path) -> bytes:
    """The project's instrument-event mappings (arm_num, unique_event_name, form) from its ODM project XML."""
    root = ElementTree.parse(project_xml).getroot()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["arm_num", "unique_event_name", "form"])
    for event in root.iter(f"{_ODM_NS}StudyEventDef"):
        for form in event.iter(f"{_ODM_NS}FormRef"):
            writer.writerow([event.get(f"{_REDCAP_NS}ArmNum"), event.get(f"{_REDCAP_NS}UniqueEventName"),
                             form.get(f"{_REDCAP_NS}FormName")])
    return out.getvalue().encode()


def csv_bytes(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


class FakeRedcap:
    """A REDCap API endpoint answering one project's recorded exports.

    ``mode``: ``"ok"``, ``"login_page"`` (HTTP 200, an HTML log-in page), ``"redirect"`` (HTTP 302
    to a log-in page), ``"forbidden"`` (HTTP 403 with REDCap's JSON error) or ``"hang"`` (no
    answer for ``hang_seconds``). ``requests``
    holds each request's fields (the token replaced by whether it matched).
    """

    def __init__(self, token: str, *, longitudinal: bool = True):
        self.token = token
        self.mode = "ok"
        self.hang_seconds = 3.0
        self.requests: list[dict[str, str]] = []
        self.longitudinal = longitudinal
        directory = LONGITUDINAL if longitudinal else SIMPLE
        self.metadata = (directory / ("dictionary.csv" if longitudinal else "metadata.csv")).read_bytes()
        with (directory / "data.csv").open(encoding="utf-8", newline="") as handle:
            self.records = list(csv.reader(handle))
        self.record_id = self.records[0][0]
        self.answers = {"project": csv_bytes([
            ["project_id", "project_title", "is_longitudinal", "has_repeating_instruments_or_events"],
            ["212" if longitudinal else "153", "REDCapR longitudinal" if longitudinal else "REDCapR simple",
             "1" if longitudinal else "0", "0"]]), "metadata": self.metadata}
        if longitudinal:
            self.answers |= {"arm": (directory / "arm.csv").read_bytes(), "event": (directory / "event.csv").read_bytes(),
                             "formEventMapping": form_event_mapping(directory / "project.xml")}
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/"

    def record_requests(self) -> list[list[str]]:
        """The records asked for by each batch request (the listing of ids not counted)."""
        return [[v for k, v in sorted(r.items(), key=lambda kv: kv[0]) if k.startswith("records[")]
                for r in self.requests if r.get("content") == "record" and "fields[0]" not in r]

    def answer(self, body: bytes) -> tuple[int, str, bytes]:
        fields = dict(parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=True))
        self.requests.append({**fields, "token": fields.get("token") == self.token})
        if self.mode == "login_page":
            return 200, "text/html; charset=UTF-8", LOGIN_PAGE
        if self.mode == "redirect":  # to the log-in page, as a server in front of REDCap may
            return 302, "text/html; charset=UTF-8", b""
        if self.mode == "forbidden" or fields.get("token") != self.token:
            return 403, "application/json; charset=utf-8", json.dumps(NO_PERMISSION).encode()
        if fields.get("format") != "csv" or fields.get("returnFormat") != "json":
            return 400, "application/json", json.dumps({"error": "format and returnFormat expected"}).encode()
        content = fields.get("content")
        if content == "record":
            wrong = {k: fields.get(k) for k, v in RECORD_OPTIONS.items() if fields.get(k) != v}
            if wrong:
                return 400, "application/json", json.dumps({"error": f"unexpected {wrong}"}).encode()
            return 200, "text/csv; charset=utf-8", self.export_records(fields)
        if content in ("arm", "event", "formEventMapping") and not self.longitudinal:
            return 400, "application/json", json.dumps(
                {"error": f"You cannot export {content}s for classic projects"}).encode()
        if content not in self.answers:
            return 400, "application/json", json.dumps({"error": f"content {content!r} not served"}).encode()
        return 200, "text/csv; charset=utf-8", self.answers[content]

    def export_records(self, fields: dict[str, str]) -> bytes:
        header, rows = self.records[0], self.records[1:]
        asked = {v for k, v in fields.items() if k.startswith("records[")}
        if asked:
            rows = [row for row in rows if row[0] in asked]
        if "fields[0]" in fields:
            keep = [i for i, name in enumerate(header) if name in (fields["fields[0]"], "redcap_event_name")]
            header, rows = [header[i] for i in keep], [[row[i] for i in keep] for row in rows]
        return csv_bytes([header, *rows])

    def transport(self, url: str, body: bytes, timeout: float) -> ApiResponse:
        """The same answers without HTTP, for tests of the client alone."""
        return ApiResponse(*self.answer(body))

    def __enter__(self) -> FakeRedcap:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers["Content-Type"] != "application/x-www-form-urlencoded":
                    status, kind, answer = 415, "application/json", b'{"error": "form-encoded POST expected"}'
                else:
                    status, kind, answer = fake.answer(body)
                if fake.mode == "hang":
                    time.sleep(fake.hang_seconds)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", kind)
                    if status == 302:
                        self.send_header("Location", "/login/")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting ("hang")
                    pass

            def log_message(self, *args):  # the test's output stays quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def token() -> str:
    return secrets.token_hex(16).upper()


@pytest.fixture
def redcap(token):
    with FakeRedcap(token) as server:
        yield server


# --------------------------------------------------------------------------------------------
# A longitudinal project, over HTTP
# --------------------------------------------------------------------------------------------

def test_a_longitudinal_project_is_exported_in_batches_of_whole_records(redcap, token, tmp_path):
    exported = export_project(redcap.url, token, urllib_transport, batch_size=2)
    # 3 records (100, 220, 304) in batches of 2: the list of ids, then 2 batches.
    assert exported.records == ("100", "220", "304")
    assert [r["content"] for r in redcap.requests] == ["project", "metadata", "arm", "event", "formEventMapping",
                                                       "record", "record", "record"]
    assert redcap.record_requests() == [["100", "220"], ["304"]]
    assert exported.record_requests == 2
    assert all(r["token"] is True for r in redcap.requests)
    assert redcap.requests[5]["fields[0]"] == "study_id"

    exported.write(tmp_path)
    export = read_export(tmp_path)
    original = list(csv.reader((LONGITUDINAL / "data.csv").open(encoding="utf-8", newline="")))
    assert list(export.records.columns) == original[0]
    assert len(export.records) == len(original) - 1 == 18
    assert export.records["redcap_event_name"].tolist() == [row[1] for row in original[1:]]
    assert export.records["comments"].dropna().tolist() == [row[44] for row in original[1:] if row[44]]
    assert len(export.events) == 12 and sorted(export.arms["name"]) == ["Drug A", "Drug B"]
    assert ("enrollment_arm_1", "demographics") in set(zip(export.form_events["unique_event_name"],
                                                         export.form_events["form"], strict=True))
    assert not (tmp_path / "repeating_instruments.csv").exists()
    assert exported.to_dict()["records"] == 3 and exported.to_dict()["is_longitudinal"] is True


def test_a_batch_of_one_asks_for_each_record_once(redcap, token):
    exported = export_project(redcap.url, token, urllib_transport, batch_size=1)
    assert redcap.record_requests() == [["100"], ["220"], ["304"]]
    assert exported.record_requests == 3
    # One header line, then every row of every record once, in REDCap's order.
    lines = exported.files["records.csv"].decode().splitlines()
    assert sum(line.startswith("study_id,") for line in lines) == 1
    assert [r for r in csv.reader(io.StringIO(exported.files["records.csv"].decode()))][1:] == redcap.records[1:]


def test_one_batch_for_every_record_gives_the_same_file(redcap, token):
    one = export_project(redcap.url, token, redcap.transport, batch_size=100).files["records.csv"]
    three = export_project(redcap.url, token, redcap.transport, batch_size=1).files["records.csv"]
    assert one == three


def test_a_classic_project_is_not_asked_for_arms_or_events(token, tmp_path):
    with FakeRedcap(token, longitudinal=False) as redcap:
        exported = export_project(redcap.url, token, urllib_transport, batch_size=5)
    assert "arm" not in [r["content"] for r in redcap.requests] and "event" not in [r["content"] for r in redcap.requests]
    assert sorted(exported.files) == ["data_dictionary.csv", "records.csv"]
    assert exported.record_id == "record_id" and len(exported.records) == 5
    assert exported.record_requests == 1
    exported.write(tmp_path)
    assert read_export(tmp_path).events is None


# --------------------------------------------------------------------------------------------
# Answers that are not exports
# --------------------------------------------------------------------------------------------

def test_a_login_page_answered_with_200_is_refused_naming_the_request(redcap, token):
    redcap.mode = "login_page"
    with pytest.raises(RedcapApiError) as raised:
        export_project(redcap.url, token, urllib_transport)
    text = str(raised.value)
    assert f"{redcap.url} (content=project)" in text
    assert "HTTP 200" in text and "HTML page titled 'REDCap | Log In'" in text and "not CSV" in text
    assert raised.value.status == 200 and raised.value.content == "project"
    assert len(redcap.requests) == 1  # stopped at the first answer


def test_a_redirect_is_not_followed(redcap, token):
    redcap.mode = "redirect"
    with pytest.raises(RedcapApiError) as raised:
        export_project(redcap.url, token, urllib_transport)
    assert "(content=project): answered HTTP 302" in str(raised.value) and "it redirected elsewhere" in str(raised.value)
    assert len(redcap.requests) == 1  # the log-in page was not asked for


def test_an_html_body_is_refused_whatever_its_content_type_says():
    def proxy(url, body, timeout):
        return ApiResponse(200, "text/csv", b"\n  <html><body>Service unavailable</body></html>")

    with pytest.raises(RedcapApiError, match=r"content=project\): answered HTTP 200 with an HTML page"):
        export_project("https://redcap.example.org/api/", "A" * 32, proxy)


def test_redcaps_own_error_text_and_status_are_given(redcap, token):
    redcap.mode = "forbidden"
    with pytest.raises(RedcapApiError) as raised:
        export_project(redcap.url, token, urllib_transport)
    assert "answered HTTP 403: You do not have permissions to use the API" in str(raised.value)
    assert raised.value.status == 403


def test_a_wrong_token_is_refused_by_the_server_and_not_shown(redcap, token):
    wrong = secrets.token_hex(16).upper()
    with pytest.raises(RedcapApiError) as raised:
        export_project(redcap.url, wrong, urllib_transport)
    assert "HTTP 403" in str(raised.value) and wrong not in str(raised.value) and token not in str(raised.value)


def test_a_json_error_with_status_200_is_refused():
    def answer(url, body, timeout):
        return ApiResponse(200, "application/json", b'{"error": "The value of the parameter \\"content\\" is not valid"}')

    with pytest.raises(RedcapApiError, match=r"answered HTTP 200 with JSON, not CSV: The value of the parameter"):
        export_project("https://redcap.example.org/api/", "A" * 32, answer)


def test_a_server_that_does_not_answer_in_time_is_named(redcap, token):
    redcap.mode, redcap.hang_seconds = "hang", 3.0
    started = time.monotonic()
    with pytest.raises(RedcapApiError) as raised:
        export_project(redcap.url, token, urllib_transport, timeout=0.3)
    assert time.monotonic() - started < 2.5
    assert f"{redcap.url} (content=project): no answer within 0.3 seconds" in str(raised.value)
    assert raised.value.status is None


def test_an_unreachable_server_is_named_by_its_url(redcap, token):
    url = redcap.url
    redcap.__exit__()  # nothing listens on the port any more
    with pytest.raises(RedcapApiError) as raised:
        export_project(url, token, urllib_transport, timeout=2)
    assert f"{url} (content=project): the server could not be reached" in str(raised.value)
    redcap.server = None
    redcap.__enter__()  # for the fixture's exit


def test_a_record_answered_in_a_batch_that_did_not_ask_for_it_stops_the_pull(redcap, token):
    def too_much(url, body, timeout):
        fields = dict(parse_qsl(body.decode()))
        if "records[0]" in fields:
            return ApiResponse(200, "text/csv", redcap.export_records({}))  # every record, whatever was asked
        return redcap.transport(url, body, timeout)

    with pytest.raises(RedcapApiError, match=r"answered record '220' in a batch that did not ask for it"):
        export_project(redcap.url, token, too_much, batch_size=1)


def test_a_listed_record_missing_from_its_batch_stops_the_pull(redcap, token):
    def deleted_meanwhile(url, body, timeout):
        fields = dict(parse_qsl(body.decode()))
        if fields.get("records[0]") == "220":
            return ApiResponse(200, "text/csv", redcap.export_records({"records[0]": "none"}))
        return redcap.transport(url, body, timeout)

    with pytest.raises(RedcapApiError, match=r"did not answer record '220' .*the project changed during the pull"):
        export_project(redcap.url, token, deleted_meanwhile, batch_size=1)


def test_batches_with_different_headers_stop_the_pull(redcap, token):
    def changed(url, body, timeout):
        status, kind, answer = redcap.answer(body)
        if dict(parse_qsl(body.decode())).get("records[0]") == "304":
            answer = answer.replace(b"study_id,", b"study_id,new_field,", 1)
        return ApiResponse(status, kind, answer)

    with pytest.raises(RedcapApiError, match=r"another header line than the first batch's"):
        export_project(redcap.url, token, changed, batch_size=2)


def test_a_batch_size_below_one_is_refused(token):
    with pytest.raises(RedcapApiError, match=r"batch size 0 is not a positive whole number"):
        export_project("https://redcap.example.org/api/", token, lambda *a: None, batch_size=0)


# --------------------------------------------------------------------------------------------
# The URL, the token and the token file
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["https://redcap.example.org/api/", "http://localhost:8080/api/",
                                 "http://127.0.0.1/redcap/api/", "http://[::1]:9000/api/"])
def test_https_and_loopback_http_urls_are_accepted(url):
    assert check_url(url) == url


@pytest.mark.parametrize(("url", "reason"), [
    ("http://redcap.example.org/api/", "plain http to another machine"),
    ("ftp://redcap.example.org/api/", "is not an http(s) URL"),
    ("https:///api/", "is not an http(s) URL with a host"),
    ("https://redcap.example.org/api/?token=SECRETSECRET", "has a query string"),
    ("https://user:SECRETSECRET@redcap.example.org/api/", "has a user name or password"),
])
def test_other_urls_are_refused_without_showing_credentials(url, reason):
    with pytest.raises(RedcapApiError) as raised:
        check_url(url)
    assert reason in str(raised.value)
    assert "SECRETSECRET" not in str(raised.value)


@pytest.mark.parametrize(("text", "found"), [
    ("0123456789ABCDEF0123456789ABCDE", "31 characters"),
    ("0123456789ABCDEF0123456789ABCDEZ", "32 characters, 1 of them not hexadecimal (0-9, A-F)"),
    # "token: " is 7 characters, of which t, o, k, n, ":" and the space are not hexadecimal (e is): 6.
    ("token: 0123456789ABCDEF0123456789ABCDEF", "39 characters, 6 of them not hexadecimal (0-9, A-F)"),
    ("", "0 characters"),
])
def test_a_token_that_is_not_32_or_64_hex_characters_is_refused_and_not_shown(text, found):
    with pytest.raises(RedcapApiError) as raised:
        check_token(text, "token.txt")
    message = str(raised.value)
    assert f"token.txt: does not hold a REDCap API token ({found}; not shown)" in message
    assert not text or text not in message


def test_a_token_is_read_stripped_and_a_super_token_accepted():
    assert check_token("  0123456789abcdef0123456789ABCDEF\n", "t") == "0123456789abcdef0123456789ABCDEF"
    assert check_token("AB" * 32, "t") == "AB" * 32


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_token_file_others_can_read_is_refused_with_chmod_600(tmp_path, token):
    path = tmp_path / "token"
    path.write_text(token + "\n", encoding="utf-8")
    path.chmod(0o644)
    with pytest.raises(RedcapApiError) as raised:
        read_token_file(path)
    assert f"chmod 600 {path}" in str(raised.value) and "-rw-r--r--" in str(raised.value)
    assert token not in str(raised.value)
    path.chmod(0o600)
    assert read_token_file(path) == token


def test_a_missing_token_file_is_named(tmp_path):
    with pytest.raises(RedcapApiError, match=r"nothere: cannot be read \(No such file"):
        read_token_file(tmp_path / "nothere")


def test_the_token_is_in_no_log_record_nor_message(redcap, token, caplog):
    caplog.set_level(logging.DEBUG)
    export_project(redcap.url, token, urllib_transport, batch_size=2)
    redcap.mode = "forbidden"
    with pytest.raises(RedcapApiError) as raised:
        export_project(redcap.url, token, urllib_transport)
    assert caplog.records and any("content=record" in r.getMessage() for r in caplog.records)
    assert all(token not in r.getMessage() for r in caplog.records)
    assert token not in str(raised.value) and token not in repr(raised.value)
