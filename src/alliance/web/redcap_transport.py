"""The edge of the REDCap API client: the HTTP transport (urllib) and the token file.

:mod:`alliance.study.formats.redcap.api` builds and checks requests but never opens a connection
(the core does not touch the network); this module does, and reads the token file. It lives in
``alliance.web``, the package that already owns the process's edges (the environment, the
database), so that both callers of a pull — ``alliance redcap pull`` and a page of the web app —
share one transport. It imports nothing from Django.
"""

from __future__ import annotations

import http.client
import os
import stat
import urllib.error
import urllib.request
from pathlib import Path

from alliance import __version__
from alliance.study.csv_input import MAX_CSV_BYTES
from alliance.study.formats.redcap.api import ApiResponse, RedcapApiError, check_token

__all__ = ["read_token_file", "urllib_transport"]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # REDCap's API answers where it is asked; a redirect is a wrong URL or a login page, and
    # urllib would follow a POST's redirect as a GET without the body. The 3xx answer is returned.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def urllib_transport(url: str, body: bytes, timeout: float) -> ApiResponse:
    """POST a form-encoded body with urllib; every HTTP answer is returned, redirects included.

    Parameters
    ----------
    url : str
        The API URL (checked by :func:`~alliance.study.formats.redcap.api.check_url`).
    body : bytes
        ``application/x-www-form-urlencoded``; it holds the token, and is never put in a message.
    timeout : float
        Seconds each blocking step (connecting, each read) may take.

    Returns
    -------
    ApiResponse
        The status, content type and body (at most one byte more than
        :data:`~alliance.study.csv_input.MAX_CSV_BYTES` read, enough to tell it is too large).

    Raises
    ------
    OSError
        ``TimeoutError`` when the server does not answer in time, ``ConnectionError`` when the
        connection breaks mid-answer, ``urllib.error.URLError`` when the server cannot be reached
        (its ``reason`` names why, never the body).
    """
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded", "Accept": "text/csv, application/json",
        "User-Agent": f"alliance/{__version__}"})
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            return ApiResponse(answer.status, answer.headers.get("Content-Type", ""), answer.read(MAX_CSV_BYTES + 1))
    except urllib.error.HTTPError as error:
        with error:
            return ApiResponse(error.code, error.headers.get("Content-Type", "") if error.headers else "",
                               error.read(MAX_CSV_BYTES + 1))
    except urllib.error.URLError as error:
        if isinstance(error.reason, TimeoutError):
            raise TimeoutError(str(error.reason)) from None
        raise
    except http.client.HTTPException as error:  # a connection cut short: IncompleteRead, BadStatusLine
        raise ConnectionError(f"the answer was cut short ({type(error).__name__})") from None


def read_token_file(path: str | Path) -> str:
    """Read a REDCap API token from a file only its owner can read, as ssh requires of a key.

    Parameters
    ----------
    path : str or Path
        A file holding the token alone (surrounding whitespace and a final newline are fine).

    Returns
    -------
    str
        The token (:func:`~alliance.study.formats.redcap.api.check_token`).

    Raises
    ------
    RedcapApiError
        The file cannot be read; on POSIX systems it can be read or written by its group or by
        others (the message says ``chmod 600``); it does not hold a token (the token is not shown).
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
        if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise RedcapApiError(str(path), None, f"can be read or written by its group or by others "
                                 f"(mode {stat.filemode(mode)}): the token would not be secret",
                                 f"a file only its owner can read: chmod 600 {path}",
                                 summary="the REDCap API token file is not private")
        if path.stat().st_size > 4096:
            raise RedcapApiError(str(path), None, "is larger than a token file can be (4 KiB)",
                                 "the token alone: 32 hexadecimal characters",
                                 summary="the REDCap API token cannot be used")
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise RedcapApiError(str(path), None, f"cannot be read ({error.strerror or type(error).__name__})",
                             "a readable file holding the token", summary="the REDCap API token cannot be read"
                             ) from None
    return check_token(text, str(path))
