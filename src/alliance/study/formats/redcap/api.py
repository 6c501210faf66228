"""Export a REDCap project through its API into the files :func:`~.directory.read_export` reads.

A pure client: it builds each request, checks each answer and assembles the export, but the
network is reached through a *transport* the caller passes (the command line passes
:func:`alliance.web.redcap_transport.urllib_transport`; tests pass a local server's), so that
nothing in the core opens a connection or reads the environment.

====================================  ===================  ===========================  ===========================
REDCap API method                     ``content=``         asked                        written as
====================================  ===================  ===========================  ===========================
Export Project Information            ``project``          always                       (read: longitudinal? repeating?)
Export Metadata (Data Dictionary)     ``metadata``         always                       ``data_dictionary.csv``
Export Arms                           ``arm``              longitudinal projects        ``arms.csv``
Export Events                         ``event``            longitudinal projects        ``events.csv``
Export Instrument-Event Mappings      ``formEventMapping`` longitudinal projects        ``instrument_event_mapping.csv``
Export Repeating Instruments and      ``repeatingForms``   projects that repeat         ``repeating_instruments.csv``
Events                                ``Events``
Export Records                        ``record``           the record ids, then the     ``records.csv``
                                                           records in batches
====================================  ===================  ===========================  ===========================

A classic project has no arms or events, and REDCap refuses to export them: they are not asked
for when the project information says the project is not longitudinal, rather than asked for
and an error taken as "none" (which would hide a real refusal of a longitudinal project's).

Records are exported in batches of whole records: first the record id field alone, which lists
the records, then ``records[0]``, ``records[1]``, … of each batch, all of a record's rows (every
event, arm and instance) coming in the batch that names it. One request for a large project can
exceed the server's memory or time limit; batches keep each answer small. The batches are joined
under one header line, which every batch must share; a record REDCap answers in a batch that did
not ask for it, or a listed record no batch brings back (the project changed during the pull),
stops the pull, since an import with deletions would otherwise delete a participant that REDCap
still holds.

Every answer is checked before it is read as CSV. REDCap answers an export with
``text/csv``, and an error with HTTP 400/401/403 and a JSON ``{"error": "…"}`` (the request asks
for ``returnFormat=json``); a login page, a maintenance page or a proxy in front of the server can
answer HTTP 200 with HTML. Those are refused, naming the request (``content=…``) and the HTTP
status. The token is sent in the form body only (never in the URL, which appears in messages),
and no message, log record or result holds it.

References
----------
REDCap API documentation, shown on each REDCap server at ``/api/help/`` ("Export Project
Information": ``is_longitudinal``, ``has_repeating_instruments_or_events``; "Export Metadata";
"Export Arms"; "Export Events"; "Export Instrument-Event Mappings"; "Export Repeating Instruments
and Events"; "Export Records": ``type``, ``records``, ``fields``, ``rawOrLabel``,
``rawOrLabelHeaders``, ``exportCheckboxLabel``, ``exportSurveyFields``,
``exportDataAccessGroups``, ``returnFormat``).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from ...csv_input import MAX_CSV_BYTES
from ...errors import DataProblem, StudyDataError

__all__ = ["ApiResponse", "DEFAULT_BATCH_SIZE", "DEFAULT_TIMEOUT", "LOOPBACK_HOSTS", "ProjectExport",
           "RedcapApiError", "Transport", "check_token", "check_url", "export_project"]

log = logging.getLogger(__name__)

# Records per request. Small enough that a wide project's batch stays far below a server's memory
# and execution-time limits; large enough that 1,000 records take 10 requests. (REDCapR's
# redcap_read uses 100 too.)
DEFAULT_BATCH_SIZE = 100
# Seconds a request may go without an answer. REDCap answers a batch of 100 records in seconds;
# minutes mean a server that is down or a proxy that holds the connection.
DEFAULT_TIMEOUT = 120.0
# Hosts a plain-http URL may name: the token does not leave the machine.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
# A REDCap API token: 32 hexadecimal characters; a super token (which makes projects) 64.
_TOKEN = re.compile(r"[0-9A-Fa-f]{32}(?:[0-9A-Fa-f]{32})?")
_ERROR_TEXT = 300  # characters of REDCap's error text quoted in a message


@dataclass(frozen=True)
class ApiResponse:
    """What a transport brings back from one POST: the HTTP status, its content type and the body.

    Attributes
    ----------
    status : int
        The HTTP status, also when it is not 200 (the transport does not raise for it).
    content_type : str
        The ``Content-Type`` header, ``""`` when there is none.
    body : bytes
        The body as received.
    """

    status: int
    content_type: str
    body: bytes


#: ``transport(url, body, timeout) -> ApiResponse``: POST ``body`` (form-encoded) to ``url``, waiting
#: at most ``timeout`` seconds for each part of the answer. It returns every HTTP answer (redirects
#: not followed) and raises :class:`OSError` (``TimeoutError``, ``ConnectionError``, …) when none
#: came; its message must not hold the body.
Transport = Callable[[str, bytes, float], ApiResponse]


class RedcapApiError(StudyDataError):
    """A REDCap API request that gave no usable answer, or a URL or token that cannot be used.

    Attributes
    ----------
    url : str
        The API URL (without credentials or query string).
    content : str or None
        The request's ``content=`` (``record``, ``metadata``, …), ``None`` before any request.
    status : int or None
        The HTTP status, ``None`` when no answer came.
    """

    def __init__(self, url: str, content: str | None, reason: str, allowed: str = "", *,
                 status: int | None = None, summary: str | None = None):
        self.url, self.content, self.status = url, content, status
        where = url if content is None else f"{url} (content={content})"
        super().__init__([DataProblem(where, None, None, None, allowed, reason)],
                         summary or "the REDCap API gave no usable answer; nothing was imported")


@dataclass(frozen=True)
class ProjectExport:
    """A REDCap project as its API exported it: the files of :func:`~.directory.read_export`, and what was asked.

    Attributes
    ----------
    url : str
        The API URL.
    project : dict
        REDCap's project information (``project_id``, ``project_title``, ``is_longitudinal``,
        ``has_repeating_instruments_or_events``, …), as text.
    files : dict of str to bytes
        File name → the answer's bytes (the records: the batches joined under one header).
    record_id : str
        The record id field (the data dictionary's first field).
    records : tuple of str
        The record ids, in REDCap's order.
    requests : tuple of (str, int)
        Each request's ``content=`` and its number of records asked (0: not a batch of records).
    """

    url: str
    project: dict[str, str]
    files: dict[str, bytes] = field(repr=False)
    record_id: str
    records: tuple[str, ...]
    requests: tuple[tuple[str, int], ...]

    @property
    def record_requests(self) -> int:
        """How many requests exported records (the list of ids not counted)."""
        return sum(1 for content, asked in self.requests if content == "record" and asked)

    def to_dict(self) -> dict:
        """What was exported: the project, the files and their sizes, the requests."""
        return {"url": self.url, "project_id": self.project.get("project_id"),
                "project_title": self.project.get("project_title"),
                "is_longitudinal": self.project.get("is_longitudinal") == "1",
                "has_repeating_instruments_or_events": self.project.get("has_repeating_instruments_or_events") == "1",
                "record_id": self.record_id, "records": len(self.records),
                "files": {name: len(body) for name, body in self.files.items()},
                "requests": len(self.requests), "record_requests": self.record_requests}

    def write(self, directory: str | Path) -> list[Path]:
        """Write the files into ``directory`` (which must exist), for :func:`~.directory.read_export`.

        Returns
        -------
        list of Path
            The files written.
        """
        written = []
        for name, body in self.files.items():
            path = Path(directory) / name
            path.write_bytes(body)
            written.append(path)
        return written


# --------------------------------------------------------------------------------------------
# The URL and the token
# --------------------------------------------------------------------------------------------

def _shown(url: str) -> str:
    """The URL as messages may show it: scheme, host, port and path (no credentials, query or fragment)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if _port(parts) else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _port(parts) -> int | None:
    try:
        return parts.port
    except ValueError:
        return None


def check_url(url: str) -> str:
    """Check a REDCap API URL: https, or plain http to this machine only; no credentials or query.

    Parameters
    ----------
    url : str
        The API endpoint, ``https://<server>/api/`` (REDCap's "API" page shows it).

    Returns
    -------
    str
        The URL, unchanged.

    Raises
    ------
    RedcapApiError
        Another scheme; plain http to a host other than ``localhost``, ``127.0.0.1`` or ``::1``
        (the token would cross the network unencrypted); a user name or password, a query string or
        a fragment in the URL (the token belongs in the token file, and the URL is shown in
        messages); no host; a port that is not a number.

    References
    ----------
    REDCap API documentation: every method is a POST to the server's ``/api/`` URL.
    """
    allowed = "https://<server>/api/ (or http://localhost/…, 127.0.0.1, [::1] for a server on this machine)"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        raise RedcapApiError("--url", None, "is not a URL (its host or port cannot be read)", allowed) from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not parts.hostname:
        raise RedcapApiError("--url", None, f"is not an http(s) URL with a host (scheme {scheme or 'none'!r})",
                             allowed)
    shown = _shown(url)
    if parts.username is not None or parts.password is not None:
        raise RedcapApiError(shown, None, "has a user name or password in it: REDCap's API takes neither, "
                             "and the URL is shown in messages", allowed + "; the token in --token-file")
    if parts.query or parts.fragment:
        raise RedcapApiError(shown, None, "has a query string or fragment (?… or #…): the API takes its "
                             "parameters in the POST body, and the token must never be in a URL", allowed)
    if scheme == "http" and parts.hostname.lower() not in LOOPBACK_HOSTS:
        raise RedcapApiError(shown, None, "is plain http to another machine: the token and the records would "
                             "cross the network unencrypted", allowed)
    return url


def check_token(text: str, origin: str) -> str:
    """A REDCap API token from the text of a token file, surrounding whitespace removed.

    Parameters
    ----------
    text : str
        The file's text.
    origin : str
        The file's name, for messages.

    Returns
    -------
    str
        The token.

    Raises
    ------
    RedcapApiError
        Anything but 32 hexadecimal characters (64 for a super token). The message says how many
        characters were found and whether any is not hexadecimal; it never shows them.

    References
    ----------
    REDCap API documentation, "token": the project- and user-specific key, from the project's API
    page (32 hexadecimal characters; a super token, 64).
    """
    token = text.strip()
    if _TOKEN.fullmatch(token):
        return token
    other = sum(1 for c in token if c not in "0123456789abcdefABCDEF")
    found = f"{len(token)} characters" + (f", {other} of them not hexadecimal (0-9, A-F)" if other else "")
    raise RedcapApiError(origin, None, f"does not hold a REDCap API token ({found}; not shown)",
                         "the token alone: 32 hexadecimal characters (64 for a super token), as the project's "
                         "API page shows it", summary="the REDCap API token cannot be used")


# --------------------------------------------------------------------------------------------
# One request
# --------------------------------------------------------------------------------------------

def _redacted(text: str, token: str) -> str:
    # REDCap's own error texts do not quote the token; a proxy's page might.
    return text.replace(token, "<token>") if token else text


def _html_title(text: str) -> str:
    match = re.search(r"<title[^>]*>(.*?)</title>", text, re.I | re.S)
    return " ".join(match[1].split())[:80] if match else ""


def _answer_kind(response: ApiResponse) -> str:
    """``html``, ``json``, ``xml`` or ``csv``: from the content type, else from how the body starts."""
    media = response.content_type.split(";", 1)[0].strip().lower()
    start = response.body[:64].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if media in ("text/html", "application/xhtml+xml") or start.startswith((b"<!doctype", b"<html")):
        return "html"
    if media == "application/json" or start.startswith((b"{", b"[")):
        return "json"
    if media in ("text/xml", "application/xml") or start.startswith(b"<"):
        return "xml"
    return "csv"


def _error_text(response: ApiResponse, kind: str, token: str) -> str:
    """REDCap's own error text: JSON ``error``, XML ``<error>``, a page's title, else the body's start."""
    text = response.body.decode("utf-8", errors="replace")
    if kind == "json":
        try:
            answer = json.loads(text)
        except ValueError:
            answer = None
        if isinstance(answer, dict) and "error" in answer:
            text = str(answer["error"])
    elif kind == "xml":
        match = re.search(r"<error>(.*?)</error>", text, re.S)
        text = match[1] if match else text
    elif kind == "html":
        title = _html_title(text)
        text = f"an HTML page{f' titled {title!r}' if title else ''}"
    text = _redacted(" ".join(text.split()), token)
    return text if len(text) <= _ERROR_TEXT else text[:_ERROR_TEXT] + "…"


def _post(url: str, token: str, transport: Transport, timeout: float, content: str,
          fields: Sequence[tuple[str, str]]) -> bytes:
    """POST one export request and return its CSV body, or raise naming the request and the status."""
    shown = _shown(url)
    body = urlencode([("token", token), ("content", content), ("format", "csv"), ("returnFormat", "json"),
                      *fields]).encode("ascii")
    log.info("REDCap API: POST %s content=%s (%d other fields)", shown, content, len(fields))
    try:
        response = transport(url, body, timeout)
    except TimeoutError:
        raise RedcapApiError(shown, content, f"no answer within {timeout:g} seconds",
                             "a server that answers; a larger --timeout, or a smaller --batch-size for records"
                             ) from None
    except OSError as error:
        reason = _redacted(str(getattr(error, "reason", None) or error), token)
        raise RedcapApiError(shown, content, f"the server could not be reached ({type(error).__name__}: {reason})",
                             "the REDCap server's API URL, reachable from this machine") from None
    kind = _answer_kind(response)
    log.info("REDCap API: content=%s answered HTTP %d, %s, %d bytes", content, response.status, kind,
             len(response.body))
    if response.status != 200:
        hint = ("the URL of REDCap's API (https://<server>/api/): it redirected elsewhere"
                if 300 <= response.status < 400 else
                "a valid token with API export rights in the project (REDCap's API page)"
                if response.status in (401, 403) else "an answer REDCap gives to a request it accepts")
        raise RedcapApiError(shown, content, f"answered HTTP {response.status}: {_error_text(response, kind, token)}",
                             hint, status=response.status)
    if kind == "html":
        raise RedcapApiError(shown, content, f"answered HTTP 200 with {_error_text(response, kind, token)}, not "
                             "CSV: a login page, a maintenance page or a proxy answers in place of REDCap's API",
                             "the URL of REDCap's API itself (https://<server>/api/)", status=200)
    if kind in ("json", "xml"):
        raise RedcapApiError(shown, content, f"answered HTTP 200 with {kind.upper()}, not CSV: "
                             f"{_error_text(response, kind, token)}", "a CSV export", status=200)
    if len(response.body) > MAX_CSV_BYTES:
        raise RedcapApiError(shown, content, f"answered {len(response.body):,} bytes, more than a file of a study "
                             f"can be ({MAX_CSV_BYTES:,})", "a smaller --batch-size", status=200)
    return response.body


def _rows(body: bytes, shown: str, content: str) -> list[list[str]]:
    try:
        return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    except (UnicodeDecodeError, csv.Error) as error:
        raise RedcapApiError(shown, content, f"answered a body that is not UTF-8 CSV ({error})",
                             "a CSV export", status=200) from None


def _header_and_rest(body: bytes) -> tuple[bytes, bytes]:
    """The header line and the rest: a header holds field names only, so its line ends at the first newline."""
    body = body.removeprefix(b"\xef\xbb\xbf")
    header, newline, rest = body.partition(b"\n")
    if rest and not rest.endswith(b"\n"):
        rest += b"\n"
    return header.rstrip(b"\r"), rest


# --------------------------------------------------------------------------------------------
# The project
# --------------------------------------------------------------------------------------------

_RECORD_OPTIONS = (("type", "flat"), ("rawOrLabel", "raw"), ("rawOrLabelHeaders", "raw"),
                   ("exportCheckboxLabel", "false"), ("exportDataAccessGroups", "true"),
                   ("exportSurveyFields", "true"))


def export_project(url: str, token: str, transport: Transport, *, batch_size: int = DEFAULT_BATCH_SIZE,
                   timeout: float = DEFAULT_TIMEOUT) -> ProjectExport:
    """Export a REDCap project through its API: dictionary, arms, events, repeating forms and records.

    Parameters
    ----------
    url : str
        The API URL, checked by :func:`check_url`.
    token : str
        The project's API token, checked by :func:`check_token`. It is sent in each request's body
        and nowhere else.
    transport : Transport
        Sends one POST (:data:`Transport`).
    batch_size : int
        Records per request (:data:`DEFAULT_BATCH_SIZE`).
    timeout : float
        Seconds each request may wait for its answer (:data:`DEFAULT_TIMEOUT`).

    Returns
    -------
    ProjectExport
        The files, raw codes and raw headers, comma-separated: ``data_dictionary.csv``,
        ``records.csv``, and for a longitudinal project ``arms.csv``, ``events.csv`` and
        ``instrument_event_mapping.csv``, and ``repeating_instruments.csv`` when the project
        repeats instruments or events.

    Raises
    ------
    RedcapApiError
        A bad URL, token or batch size; a request without an answer (network, timeout), answered
        with another status than 200, with HTML, JSON or XML, or with more than
        :data:`~alliance.study.csv_input.MAX_CSV_BYTES`; a data dictionary without fields; record
        batches whose headers differ, that bring a record not asked for, or that leave out a
        listed record.

    Notes
    -----
    The records are asked for as ``type=flat``, ``rawOrLabel=raw``, ``rawOrLabelHeaders=raw``,
    ``exportCheckboxLabel=false`` (what :func:`~.directory.read_export` reads most directly), with
    ``exportDataAccessGroups=true`` and ``exportSurveyFields=true``, whose columns the import
    reads past, so that an export by a user in a data access group or of a survey project reads
    the same.

    References
    ----------
    REDCap API documentation ("Export Project Information", "Export Metadata", "Export Arms",
    "Export Events", "Export Instrument-Event Mappings", "Export Repeating Instruments and
    Events", "Export Records"), on each REDCap server at ``/api/help/``.
    """
    check_url(url)
    shown = _shown(url)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise RedcapApiError(shown, "record", f"batch size {batch_size!r} is not a positive whole number",
                             "1 or more records per request")
    requests: list[tuple[str, int]] = []

    def post(content: str, fields: Sequence[tuple[str, str]] = (), asked: int = 0) -> bytes:
        requests.append((content, asked))
        return _post(url, token, transport, timeout, content, fields)

    info_rows = _rows(post("project"), shown, "project")
    if len(info_rows) < 2:
        raise RedcapApiError(shown, "project", "answered no project information (a header line and one row)",
                             "REDCap's project information", status=200)
    project = dict(zip(info_rows[0], info_rows[1], strict=False))
    files: dict[str, bytes] = {}
    metadata = post("metadata")
    dictionary_rows = [row for row in _rows(metadata, shown, "metadata") if any(cell.strip() for cell in row)]
    if len(dictionary_rows) < 2 or not dictionary_rows[1] or not dictionary_rows[1][0].strip():
        raise RedcapApiError(shown, "metadata", "answered a data dictionary without fields",
                             "a project with at least its record id field", status=200)
    files["data_dictionary.csv"] = metadata
    record_id = dictionary_rows[1][0].strip()  # REDCap's record id field is the dictionary's first field
    if project.get("is_longitudinal") == "1":
        for content, name in (("arm", "arms.csv"), ("event", "events.csv"),
                              ("formEventMapping", "instrument_event_mapping.csv")):
            files[name] = post(content)
    if project.get("has_repeating_instruments_or_events") == "1":
        files["repeating_instruments.csv"] = post("repeatingFormsEvents")
    # A file that is a header line alone (a project with no repeating form after all) says nothing.
    files = {name: body for name, body in files.items()
             if name == "data_dictionary.csv" or _header_and_rest(body)[1].strip()}

    listing = _rows(post("record", (*_RECORD_OPTIONS, ("fields[0]", record_id))), shown, "record")
    if not listing or record_id not in listing[0]:
        raise RedcapApiError(shown, "record", f"answered the record list without the record id field {record_id!r}",
                             f"a CSV whose header has {record_id!r}", status=200)
    at = listing[0].index(record_id)
    records = tuple(dict.fromkeys(row[at] for row in listing[1:] if len(row) > at and row[at] != ""))
    files["records.csv"] = _records(shown, records, record_id, batch_size, post)
    log.info("REDCap API: %d records of project %s in %d requests", len(records), project.get("project_id", "?"),
             len(requests))
    return ProjectExport(url=shown, project=project, files=files, record_id=record_id, records=records,
                         requests=tuple(requests))


def _records(shown: str, records: tuple[str, ...], record_id: str, batch_size: int, post) -> bytes:
    """The records, batch by batch, joined under the first batch's header line."""
    if not records:
        return post("record", _RECORD_OPTIONS)  # no record to ask for: the header line alone
    header: bytes | None = None
    parts: list[bytes] = []
    seen: set[str] = set()
    size = 0
    for start in range(0, len(records), batch_size):
        batch = records[start:start + batch_size]
        body = post("record", (*_RECORD_OPTIONS, *((f"records[{i}]", r) for i, r in enumerate(batch))), len(batch))
        rows = _rows(body, shown, "record")
        first, rest = _header_and_rest(body)
        if header is None:
            header = first
            parts.append(first + b"\n")
        elif first != header:
            raise RedcapApiError(shown, "record", f"answered the batch of records {batch[0]!r} … {batch[-1]!r} with "
                                 "another header line than the first batch's (the project's fields changed during "
                                 "the pull?)", "the same columns in every batch: run the pull again", status=200)
        at = rows[0].index(record_id) if rows and record_id in rows[0] else None
        if at is None:
            raise RedcapApiError(shown, "record", f"answered a batch of records without the record id field "
                                 f"{record_id!r}", f"a CSV whose header has {record_id!r}", status=200)
        answered = {row[at] for row in rows[1:] if len(row) > at and any(cell != "" for cell in row)}
        stray = sorted(answered - set(batch))
        if stray:
            raise RedcapApiError(shown, "record", f"answered record {stray[0]!r} in a batch that did not ask for it "
                                 f"({len(stray)} such records): a record would be split across batches",
                                 "each batch holding the records it names", status=200)
        seen |= answered
        size += len(rest)
        if size > MAX_CSV_BYTES:
            raise RedcapApiError(shown, "record", f"answered more than {MAX_CSV_BYTES:,} bytes of records in all, "
                                 "more than a file of a study can be", "a smaller project", status=200)
        parts.append(rest)
    missing = [r for r in records if r not in seen]
    if missing:
        raise RedcapApiError(shown, "record", f"did not answer record {missing[0]!r} ({len(missing)} listed records "
                             "missing): the project changed during the pull", "run the pull again", status=200)
    return b"".join(parts)
