"""Security headers Django does not set itself, and keeping secrets out of the logs.

Django's own middleware already sends ``X-Content-Type-Options``, ``Referrer-Policy``,
``X-Frame-Options`` and (over HTTPS) HSTS; see ``alliance.web.config``. What is added here:

- :class:`ContentSecurityPolicyMiddleware`: a ``Content-Security-Policy`` that lets a page load
  scripts, styles, images, fonts and fetches only from this site, with no inline scripts or
  styles, no plug-ins, no framing, and forms posting only back here. Written here (a dozen lines)
  rather than with a package, since the policy is fixed. Templates therefore carry no inline
  ``<script>`` or ``style=""``: behaviour is in ``static/alliance/alliance.js`` and htmx, styles in
  ``static/alliance/alliance.css``.
- :class:`RedactPrivateLinks`: a logging filter that blanks the token of a participant's private
  form link (``/f/<token>/``) and of an invited member's set-password link
  (``/welcome/<uidb64>/<token>/``) in every log line, so that a log file never holds a working link.
"""

from __future__ import annotations

import logging
import re

from django.utils.cache import add_never_cache_headers

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


class ContentSecurityPolicyMiddleware:
    """Add :data:`CONTENT_SECURITY_POLICY` to every response that does not set its own."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response


class NoStoreMiddleware:
    """``Cache-Control: no-store`` (and private, no-cache) on every page the app itself answers.

    The app's pages show personal data (participants, identifiers, answers, alerts); a browser or
    a proxy must not keep a copy a later user of the same computer could open from its cache or
    history. Static files are answered by WhiteNoise before this middleware and stay cacheable.
    A response that sets its own ``Cache-Control`` keeps it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if "Cache-Control" not in response.headers:
            add_never_cache_headers(response)
        return response


# The private form path and its token (secrets.token_urlsafe: letters, digits, "-" and "_"), and an
# invited member's set-password path (/welcome/<uidb64>/<token>/, Django's password-reset token).
_PRIVATE_LINK = re.compile(r"(/f/)[A-Za-z0-9_-]{8,}")
_SET_PASSWORD_LINK = re.compile(r"(/welcome/)[A-Za-z0-9_-]+/[A-Za-z0-9-]+")


def redact(text: str) -> str:
    """Blank link tokens in a text: ``/f/abc…/`` becomes ``/f/[token]/``, ``/welcome/MQ/c3…/`` ``/welcome/[token]/``."""
    return _SET_PASSWORD_LINK.sub(r"\1[token]", _PRIVATE_LINK.sub(r"\1[token]", text))


class RedactPrivateLinks(logging.Filter):
    """Rewrite a log record so that its message holds no private link token."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
