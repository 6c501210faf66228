"""Django settings of the ``alliance`` web app and its storage, built from environment variables.

:func:`build_settings` turns a mapping of environment variables (plus a caller's choices, such as
``alliance serve``'s plain HTTP) into Django's settings. It is used at the two edges that read
the process environment: the settings module ``alliance.web.settings`` (gunicorn, ``django-admin``)
and :func:`alliance.web.django_setup` (the CLI, scripts, which pass their choices as arguments).
Nothing else in the package reads or writes ``os.environ``, but ``alliance.web.wsgi``, which names
the settings module for Django as Django's WSGI entry points do.

Where the data live
-------------------
Without ``DATABASE_URL`` the database is one SQLite file::

    $ALLIANCE_DATA_DIR/alliance.sqlite3

where ``ALLIANCE_DATA_DIR`` defaults to ``$XDG_DATA_HOME/alliance``, and ``XDG_DATA_HOME`` to
``~/.local/share`` — so usually ``~/.local/share/alliance/alliance.sqlite3``.

Environment variables
---------------------
``DATABASE_URL``
    Any database instead of the SQLite default: ``sqlite:////absolute/path.sqlite3`` or
    ``postgresql://user:password@host:5432/name`` (``postgres://`` is accepted too).
``ALLIANCE_MIGRATE_DATABASE_URL``
    PostgreSQL only, optional: the same database as ``DATABASE_URL`` reached as the role that owns
    its tables. With it, ``DATABASE_URL`` names the *app role*, which serves the app and cannot
    alter the tables or the audit table's triggers, and ``migrate`` (also the one that
    ``alliance.web.django_setup`` runs) connects as the owner, then grants the app role what it
    needs (``alliance.web.audit.roles``; docs/storage.md, "PostgreSQL with two roles"). It becomes
    the database alias :data:`OWNER_DATABASE`.
``ALLIANCE_DATA_DIR``
    The folder holding the default SQLite file and the generated secret key.
``ALLIANCE_SECRET_KEY``
    The key Django signs sessions and links with. Without it, a random key is generated on first
    use and kept in ``$ALLIANCE_DATA_DIR/secret_key`` (mode 0600), so that every install has its
    own key and none is ever written in the source.
``ALLIANCE_DEBUG``
    ``1`` for Django's debug pages (never in production).
``ALLIANCE_ALLOWED_HOSTS``
    Comma-separated host names the server answers to (default ``localhost,127.0.0.1``, or the
    caller's ``allowed_hosts``).
``ALLIANCE_HTTPS``
    ``true``: the site is reached over HTTPS (usually TLS ends at a reverse proxy, which must set
    ``X-Forwarded-Proto``): cookies are sent only over HTTPS (``Secure``), HSTS is on (one year)
    and ``X-Forwarded-Proto: https`` from the proxy is trusted. ``false``: plain HTTP. Unset: the
    caller's ``https`` (``alliance serve`` passes ``False``), else as ``true`` unless
    ``ALLIANCE_DEBUG``.
``ALLIANCE_LOGIN_MAX_FAILURES``, ``ALLIANCE_LOGIN_LOCKOUT_MINUTES``
    Failed log-ins of one username from one address before that pair is locked out (default 5),
    and the window failures are counted in, which is also how long a lock lasts (default 15
    minutes); see ``alliance.web.accounts.throttle`` (django-axes).
``ALLIANCE_LOGIN_MAX_FAILURES_PER_ADDRESS``
    Failed log-ins from one address, whatever the usernames, before that address is locked out
    (default 20: password spraying; higher than the pair's limit, since a clinic's staff may share
    one address).
``ALLIANCE_LOGIN_MAX_FAILURES_SITE``
    Failed log-ins on the whole site within the window before every log-in is refused until it
    has passed (default 100: guessing spread over many addresses; a study team of tens of people
    mistyping comes nowhere near it, and sessions already open are not affected). Set a large
    number to turn it off.
``ALLIANCE_REQUIRE_2FA``
    ``true``: administrators (superusers and ``admin`` of any study) must enrol an authenticator
    app and give its code at each log-in before they can open any page; others may enrol.
    Default ``false``: a second factor for whoever enrols. See ``alliance.web.accounts.two_factor``.
``ALLIANCE_LINK_DAYS``
    Days a participant's private form link stays valid (default 7).
``ALLIANCE_INVITATION_DAYS``
    Days an invited member's set-password link works (default 3, Django's own default for a
    password-reset link: the link is a credential, and resending one is a click on the members
    page). Becomes ``PASSWORD_RESET_TIMEOUT``; see ``alliance.web.accounts.invitations``.
``ALLIANCE_EMAIL_HOST``, ``ALLIANCE_EMAIL_PORT``, ``ALLIANCE_EMAIL_HOST_USER``, ``ALLIANCE_EMAIL_HOST_PASSWORD``, ``ALLIANCE_EMAIL_USE_TLS``
    The SMTP server that sends the site's email (member invitations). With a host, Django's SMTP
    backend on that host; the port defaults to 587 with ``ALLIANCE_EMAIL_USE_TLS=true``
    (STARTTLS), else 25; user and password only if the server asks for them. Without a host: the
    console backend when ``ALLIANCE_DEBUG`` (messages printed on standard output, for a developer's
    terminal; that includes the invitation link, so never run a real site with debugging on), and
    otherwise SMTP to ``localhost:25``, the machine's own mail server — never the console, which
    would put working links into a server's captured output. A send waits at most 10 seconds.
``ALLIANCE_SITE_URL``
    The address participants reach the site at, e.g. ``https://trial.example.org`` (scheme and
    host, optionally a path prefix; no query). Emails sent without a request — invitations and
    reminders from ``alliance invitations send`` or the scheduler of ``alliance serve`` — build
    their links on it; without it nothing is sent and the command says why. Becomes
    ``ALLIANCE_SITE_URL``; see ``alliance.web.capture.invitations``.
``ALLIANCE_EMAIL_FROM``
    The sender of the site's email (default ``alliance@localhost``; set it to an address the mail
    server accepts for this site).
``ALLIANCE_WORDING_DIR``
    A folder of licensed item wording: ``<instrument>.yaml`` mapping item id to text (e.g.
    ``wai_sr_1: "..."``). Without it, forms show the wording the instrument definition includes,
    or "Item N" with the answer labels.
    With ``ALLIANCE_LANGUAGES``, a form in another language reads
    ``ALLIANCE_WORDING_DIR/<language>/<instrument>.yaml`` first (the language the participant's
    browser asks for, or the one chosen with the language switcher), then ``<instrument>.yaml``.
``ALLIANCE_INSTRUMENTS_DIR``
    A folder of the site's instrument definitions (``<id>.yaml``, the package's schema; e.g. the
    STAR-P with the key the site holds), added to the instrument bank when the app starts
    (:func:`alliance.instruments.add_instruments_dir`; rules in ``docs/instruments.md``, "Site
    instrument files"). A file that does not follow the schema stops the app with its error.
``ALLIANCE_TIME_ZONE``
    The site's time zone, an IANA name such as ``Europe/Berlin`` or ``Pacific/Auckland`` (default
    ``UTC``). Pages show times and dates in it, and "today" (what is due, overdue or missed) is the
    site's day; the database keeps every time in UTC. Becomes Django's ``TIME_ZONE``.
``ALLIANCE_LANGUAGES``
    Comma-separated language codes the site offers (default ``en``), each one Django knows
    (``django.conf.global_settings.LANGUAGES``), e.g. ``en,de``. The first is the default; each
    request gets the one the browser asks for among them (Django's ``LocaleMiddleware``), and with
    more than one, pages show a language switcher. The app's text is marked for translation: a
    language shows translated text where a catalogue for it exists (``LOCALE_PATHS``). Becomes
    ``LANGUAGES`` and ``LANGUAGE_CODE``.
``ALLIANCE_LOCALE_DIR``
    A folder of the site's own translation catalogues (``<language>/LC_MESSAGES/django.mo``, made
    with ``django-admin makemessages`` and ``compilemessages``; CONTRIBUTING.md, "Translate the
    app"), searched before the package's own ``locale`` folder. Becomes part of ``LOCALE_PATHS``.
``ALLIANCE_STATIC_ROOT``
    Where ``django-admin collectstatic`` copies the static files, for a site that serves
    ``/static/`` itself (the app serves them without it).

Security defaults that do not depend on the environment: Argon2id password hashing, CSRF on every
form, session and CSRF cookies ``HttpOnly`` and ``SameSite=Lax``, ``X-Content-Type-Options:
nosniff``, ``Referrer-Policy: same-origin``, ``X-Frame-Options: DENY`` and a
``Content-Security-Policy`` allowing only this site's own scripts, styles and images
(``alliance.web.accounts.security``). Log lines never hold private link tokens nor set-password
tokens, and never an email address.
"""

from __future__ import annotations

import os
import secrets
import zoneinfo
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dj_database_url

_HERE = Path(__file__).resolve().parent
_TRUE = {"1", "true", "yes", "on"}
# The database alias of ALLIANCE_MIGRATE_DATABASE_URL: the tables' owner, used by `migrate` only.
OWNER_DATABASE = "owner"


def build_settings(environ: Mapping[str, str], *, https: bool | None = None,
                   allowed_hosts: Sequence[str] | None = None) -> dict[str, Any]:
    """Django's settings for the web app and the storage, from environment variables and a caller's choices.

    Parameters
    ----------
    environ : mapping of str to str
        The environment variables (see the module docstring); the process environment at the
        edges, any mapping in a test.
    https : bool, optional
        Whether the site is reached over HTTPS, where ``ALLIANCE_HTTPS`` is unset or empty.
        ``alliance serve`` passes ``False``: it speaks plain HTTP. ``None``: HTTPS unless
        ``ALLIANCE_DEBUG``.
    allowed_hosts : sequence of str, optional
        The host names to answer to, where ``ALLIANCE_ALLOWED_HOSTS`` is not set. ``None``:
        ``localhost`` and ``127.0.0.1``.

    Returns
    -------
    dict of str to object
        Upper-case setting names and their values, for ``settings.configure(**...)`` or a
        settings module's globals. Besides Django's own: ``DATA_DIR``, ``DEFAULT_DATABASE_FILE``,
        ``HTTPS``, ``LOGIN_MAX_FAILURES``, ``LOGIN_LOCKOUT_MINUTES``,
        ``LOGIN_MAX_FAILURES_PER_ADDRESS``, ``LOGIN_MAX_FAILURES_SITE``, ``REQUIRE_2FA``,
        ``PRIVATE_LINK_DAYS``, ``WORDING_DIR`` and ``INSTRUMENTS_DIR``; Django's ``TIME_ZONE``, ``LANGUAGES``,
        ``LANGUAGE_CODE`` and ``LOCALE_PATHS``; django-axes' and django-otp's (``AXES_*``,
        ``OTP_*``); Django's ``EMAIL_*``, ``DEFAULT_FROM_EMAIL`` and ``PASSWORD_RESET_TIMEOUT``.

    Raises
    ------
    django.core.exceptions.ImproperlyConfigured
        For a ``DATABASE_URL`` that is neither SQLite nor PostgreSQL, an
        ``ALLIANCE_MIGRATE_DATABASE_URL`` that does not fit it (:func:`owner_database`), a count that is not a
        whole number of at least 1, an ``ALLIANCE_TIME_ZONE`` that is not an IANA zone, or an
        ``ALLIANCE_LANGUAGES`` code Django does not know.

    Notes
    -----
    The environment wins over ``https`` and ``allowed_hosts``: a site's operator who sets
    ``ALLIANCE_HTTPS=true`` behind a TLS proxy is not overruled by a command's default. Two things
    are written to disk, once: the data folder (for the default SQLite file) and, without
    ``ALLIANCE_SECRET_KEY``, the generated secret key in it.
    """
    data_dir = _data_dir(environ)
    debug = _truthy(environ, "ALLIANCE_DEBUG")
    if environ.get("DATABASE_URL"):
        database = database_from_url(environ["DATABASE_URL"])
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        database = database_from_url(f"sqlite:///{data_dir / 'alliance.sqlite3'}")
    databases = {"default": database}
    if environ.get("ALLIANCE_MIGRATE_DATABASE_URL"):
        databases[OWNER_DATABASE] = owner_database(environ["ALLIANCE_MIGRATE_DATABASE_URL"], database)

    # ALLIANCE_HTTPS said explicitly (non-empty) wins; then the caller's choice; then "unless debugging".
    said = environ.get("ALLIANCE_HTTPS", "").strip()
    explicit = _truthy(environ, "ALLIANCE_HTTPS") if said else https
    secure = (not debug) if explicit is None else explicit
    languages = _languages(environ)
    site_locale = _path(environ, "ALLIANCE_LOCALE_DIR")
    hosts = (environ["ALLIANCE_ALLOWED_HOSTS"].split(",") if "ALLIANCE_ALLOWED_HOSTS" in environ
             else list(allowed_hosts) if allowed_hosts is not None else ["localhost", "127.0.0.1"])

    settings: dict[str, Any] = {
        "DATA_DIR": data_dir,
        "DEFAULT_DATABASE_FILE": data_dir / "alliance.sqlite3",
        "SECRET_KEY": _secret_key(environ, data_dir),
        "DEBUG": debug,
        "ALLOWED_HOSTS": [h.strip() for h in hosts if h.strip()],
        "DATABASES": databases,
        "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
        "INSTALLED_APPS": [
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django.contrib.staticfiles",
            "alliance.web.audit",
            "alliance.web.accounts",
            "alliance.web.capture",
            "alliance.web.monitor",
            "axes",  # login throttling (alliance.web.accounts.throttle)
            "django_otp",  # second factor (alliance.web.accounts.two_factor)
            "django_otp.plugins.otp_totp",
        ],
        "MIDDLEWARE": [
            "django.middleware.security.SecurityMiddleware",
            # Static files straight from the app, before sessions and the database are touched.
            "whitenoise.middleware.WhiteNoiseMiddleware",
            "alliance.web.accounts.security.ContentSecurityPolicyMiddleware",
            "alliance.web.accounts.security.NoStoreMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            # The language of each request (browser or switcher), after sessions, before CommonMiddleware.
            "django.middleware.locale.LocaleMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django_otp.middleware.OTPMiddleware",
            "alliance.web.accounts.two_factor.SecondFactorMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
            # Last, as django-axes asks: turns a locked-out log-in into its 429 page.
            "axes.middleware.AxesMiddleware",
        ],
        "ROOT_URLCONF": "alliance.web.urls",
        "WSGI_APPLICATION": "alliance.web.wsgi.application",
        "TEMPLATES": [
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "DIRS": [_HERE / "templates"],
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.template.context_processors.i18n",
                        "django.template.context_processors.tz",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ],
                },
            },
        ],
        # A custom user model from the start: Django cannot switch to one after the first migration,
        # and the web app's roles (investigator, facilitator, monitor) hang off it.
        "AUTH_USER_MODEL": "accounts.User",
        # django-axes' backend first: it refuses a locked-out client before the password is checked.
        "AUTHENTICATION_BACKENDS": [
            "axes.backends.AxesStandaloneBackend",
            "django.contrib.auth.backends.ModelBackend",
        ],
        # Argon2id first (the OWASP recommendation); the others only verify hashes made elsewhere.
        "PASSWORD_HASHERS": [
            "django.contrib.auth.hashers.Argon2PasswordHasher",
            "django.contrib.auth.hashers.PBKDF2PasswordHasher",
            "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
            "django.contrib.auth.hashers.ScryptPasswordHasher",
        ],
        "AUTH_PASSWORD_VALIDATORS": [
            {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
            {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
            {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
            {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
        ],
        # Headers and cookies: safe defaults that hold with or without TLS (module docstring).
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_AGE": 12 * 60 * 60,  # a working day; a shared clinic computer should not stay logged in
        "CSRF_COOKIE_HTTPONLY": True,  # htmx sends the token from the form, never from JavaScript reading the cookie
        "CSRF_COOKIE_SAMESITE": "Lax",
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "SECURE_REFERRER_POLICY": "same-origin",
        "X_FRAME_OPTIONS": "DENY",
        "HTTPS": secure,
        "SESSION_COOKIE_SECURE": secure,
        "CSRF_COOKIE_SECURE": secure,
        "SECURE_HSTS_SECONDS": 365 * 24 * 60 * 60 if secure else 0,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,  # other sites of the same domain are not ours to decide for
        "LOGIN_URL": "accounts:login",
        "LOGIN_REDIRECT_URL": "capture:study_list",
        "LOGOUT_REDIRECT_URL": "accounts:login",
        # Login throttling (alliance.web.accounts.throttle), second factor, private links, licensed wording.
        "LOGIN_MAX_FAILURES": _positive_int(environ, "ALLIANCE_LOGIN_MAX_FAILURES", 5),
        "LOGIN_LOCKOUT_MINUTES": _positive_int(environ, "ALLIANCE_LOGIN_LOCKOUT_MINUTES", 15),
        "LOGIN_MAX_FAILURES_PER_ADDRESS": _positive_int(environ, "ALLIANCE_LOGIN_MAX_FAILURES_PER_ADDRESS", 20),
        "LOGIN_MAX_FAILURES_SITE": _positive_int(environ, "ALLIANCE_LOGIN_MAX_FAILURES_SITE", 100),
        # django-axes reads the limits above through these callables, so a test overriding
        # LOGIN_MAX_FAILURES or LOGIN_LOCKOUT_MINUTES changes axes too.
        "AXES_HANDLER": "alliance.web.accounts.throttle.TieredAxesHandler",
        "AXES_FAILURE_LIMIT": "alliance.web.accounts.throttle.failure_limit",
        "AXES_COOLOFF_TIME": "alliance.web.accounts.throttle.lockout_time",
        "AXES_LOCKOUT_PARAMETERS": [["username", "ip_address"]],
        "AXES_LOCKOUT_CALLABLE": "alliance.web.accounts.throttle.lockout_response",
        "AXES_RESET_ON_SUCCESS": True,
        "AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT": False,
        "AXES_DISABLE_ACCESS_LOG": True,  # successful log-ins are in the audit trail already
        "AXES_IPWARE_META_PRECEDENCE_ORDER": ("REMOTE_ADDR",),  # never a client-supplied header
        "AXES_VERBOSE": False,
        "REQUIRE_2FA": _truthy(environ, "ALLIANCE_REQUIRE_2FA"),
        "OTP_TOTP_ISSUER": "alliance",
        "OTP_TOTP_THROTTLE_FACTOR": 1,  # seconds; doubled after each wrong code in a row (django-otp)
        "PRIVATE_LINK_DAYS": _positive_int(environ, "ALLIANCE_LINK_DAYS", 7),
        "ALLIANCE_SITE_URL": _site_url(environ),
        "WORDING_DIR": _path(environ, "ALLIANCE_WORDING_DIR"),
        "INSTRUMENTS_DIR": _path(environ, "ALLIANCE_INSTRUMENTS_DIR"),
        # Invitations of members (alliance.web.accounts.invitations) and the email that carries them.
        "PASSWORD_RESET_TIMEOUT": _positive_int(environ, "ALLIANCE_INVITATION_DAYS", 3) * 24 * 60 * 60,
        **_email_settings(environ, debug),
        # Logs go to standard error through a filter that blanks private link tokens; request logs carry
        # paths only (participant ids are pseudonyms), never form values, names or passwords.
        "LOGGING": {
            "version": 1,
            "disable_existing_loggers": False,
            "filters": {"redact": {"()": "alliance.web.accounts.security.RedactPrivateLinks"}},
            "formatters": {"plain": {"format": "{asctime} {levelname} {name}: {message}", "style": "{"}},
            "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["redact"],
                                     "formatter": "plain"}},
            "loggers": {
                "django": {"handlers": ["console"], "level": "INFO" if debug else "WARNING", "propagate": False},
                "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
                "alliance": {"handlers": ["console"], "level": "INFO", "propagate": False},
            },
        },
        # Times are stored in UTC (USE_TZ) and shown in the site's zone; text in the request's language.
        "LANGUAGE_CODE": languages[0][0],
        "LANGUAGES": languages,
        "LOCALE_PATHS": [*([site_locale] if site_locale else []), _HERE / "locale"],
        "TIME_ZONE": _time_zone(environ),
        "USE_I18N": True,
        "USE_TZ": True,
        "STATIC_URL": "static/",
        "STATICFILES_DIRS": [_HERE / "static"],
        # WhiteNoise serves the files where the finders find them (inside the installed package), so
        # neither `alliance serve` nor gunicorn needs a collectstatic step; a site that wants one (e.g. to
        # serve /static/ from nginx) sets ALLIANCE_STATIC_ROOT and runs `django-admin collectstatic`.
        "STATIC_ROOT": _path(environ, "ALLIANCE_STATIC_ROOT"),
        "WHITENOISE_USE_FINDERS": True,
    }
    if explicit:
        # Only when said explicitly: trusting this header without a proxy that sets it would let a
        # client claim HTTPS.
        settings["SECURE_PROXY_SSL_HEADER"] = ("HTTP_X_FORWARDED_PROTO", "https")
    return settings


def database_from_url(url: str) -> dict:
    """Django's description of one database from a URL (``sqlite:///…`` or ``postgresql://…``).

    Parameters
    ----------
    url : str
        A database URL as accepted by ``dj-database-url``.

    Returns
    -------
    dict
        A ``DATABASES`` entry. SQLite connections get WAL journaling (readers do not block the
        writer, which the web app needs) and ``BEGIN IMMEDIATE`` transactions (a writer waits
        for the lock instead of failing half-way with "database is locked"); PostgreSQL
        connections are kept for 60 s (``CONN_MAX_AGE``) with health checks.

    Raises
    ------
    django.core.exceptions.ImproperlyConfigured
        For a URL that is neither SQLite nor PostgreSQL, or cannot be parsed.
    """
    from django.core.exceptions import ImproperlyConfigured

    scheme = url.split(":", 1)[0]
    # The append-only audit triggers exist for these two; other databases are refused up front.
    if scheme not in ("sqlite", "postgres", "postgresql"):
        raise ImproperlyConfigured(f"DATABASE_URL must start with sqlite:/// or postgresql://, not {scheme}://")
    try:
        database = dj_database_url.parse(url, conn_max_age=0)
    except ValueError as error:
        raise ImproperlyConfigured(f"DATABASE_URL cannot be read: {error}") from None
    if database["ENGINE"] == "django.db.backends.sqlite3":
        database.setdefault("OPTIONS", {}).update({
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        })
    else:
        # A PostgreSQL connection costs a few milliseconds to open (authentication, backend
        # start): kept for 60 s and checked before reuse instead of one per request.
        database["CONN_MAX_AGE"] = 60
        database["CONN_HEALTH_CHECKS"] = True
    return database


def owner_database(url: str, serving: dict) -> dict:
    """The ``DATABASES`` entry of ``ALLIANCE_MIGRATE_DATABASE_URL``: the serving database, as its owner.

    Parameters
    ----------
    url : str
        ``postgresql://owner:password@host:5432/name``.
    serving : dict
        The ``default`` entry (``DATABASE_URL``, the app role).

    Returns
    -------
    dict
        A ``DATABASES`` entry with ``TEST["MIRROR"] = "default"`` (a test run creates no second
        test database for it).

    Raises
    ------
    django.core.exceptions.ImproperlyConfigured
        When either database is not PostgreSQL (SQLite has no roles: whoever can write the file
        can drop its triggers, which the hash chain then shows), when the two URLs name different
        databases (host, port, name), or the same user (then there is no separate app role).
    """
    from django.core.exceptions import ImproperlyConfigured

    owner = database_from_url(url)
    postgresql = "django.db.backends.postgresql"
    if owner["ENGINE"] != postgresql or serving["ENGINE"] != postgresql:
        raise ImproperlyConfigured("ALLIANCE_MIGRATE_DATABASE_URL needs PostgreSQL in it and in DATABASE_URL: "
                                   "SQLite has no roles")
    where = ("HOST", "PORT", "NAME")
    if [owner.get(k) or "" for k in where] != [serving.get(k) or "" for k in where]:
        raise ImproperlyConfigured("ALLIANCE_MIGRATE_DATABASE_URL must name the database of DATABASE_URL "
                                   f"(host, port, name), not {owner.get('NAME')!r} on {owner.get('HOST')!r}")
    if (owner.get("USER") or "") == (serving.get("USER") or ""):
        raise ImproperlyConfigured("ALLIANCE_MIGRATE_DATABASE_URL names the same user as DATABASE_URL; "
                                   "DATABASE_URL must name the app role, a different role than the owner")
    owner["TEST"] = {"MIRROR": "default"}
    return owner


def _site_url(environ: Mapping[str, str]) -> str:
    """``ALLIANCE_SITE_URL`` without its trailing slash; empty when not set (module docstring)."""
    from urllib.parse import urlsplit

    from django.core.exceptions import ImproperlyConfigured

    value = environ.get("ALLIANCE_SITE_URL", "").strip()
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ImproperlyConfigured(f"ALLIANCE_SITE_URL={value!r} is not a site address; allowed: http(s)://host[:port][/path], "
                         "e.g. https://trial.example.org")
    return value.rstrip("/")


def _email_settings(environ: Mapping[str, str], debug: bool) -> dict[str, Any]:
    """Django's ``EMAIL_*`` settings from ``ALLIANCE_EMAIL_*`` (module docstring: the defaults and why)."""
    host = environ.get("ALLIANCE_EMAIL_HOST", "").strip()
    use_tls = _truthy(environ, "ALLIANCE_EMAIL_USE_TLS")
    smtp = "django.core.mail.backends.smtp.EmailBackend"
    return {
        "EMAIL_BACKEND": smtp if host or not debug else "django.core.mail.backends.console.EmailBackend",
        "EMAIL_HOST": host or "localhost",
        "EMAIL_PORT": _positive_int(environ, "ALLIANCE_EMAIL_PORT", 587 if use_tls else 25),
        "EMAIL_HOST_USER": environ.get("ALLIANCE_EMAIL_HOST_USER", ""),
        "EMAIL_HOST_PASSWORD": environ.get("ALLIANCE_EMAIL_HOST_PASSWORD", ""),
        "EMAIL_USE_TLS": use_tls,
        "EMAIL_TIMEOUT": 10,
        "DEFAULT_FROM_EMAIL": environ.get("ALLIANCE_EMAIL_FROM", "").strip() or "alliance@localhost",
    }


def _data_dir(environ: Mapping[str, str]) -> Path:
    explicit = environ.get("ALLIANCE_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    home = Path(environ["HOME"]) if environ.get("HOME") else Path.home()
    xdg = environ.get("XDG_DATA_HOME") or str(home / ".local" / "share")
    return Path(xdg).expanduser() / "alliance"


def _secret_key(environ: Mapping[str, str], data_dir: Path) -> str:
    from_env = environ.get("ALLIANCE_SECRET_KEY")
    if from_env:
        return from_env
    path = data_dir / "secret_key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes starting at once must not each write a different key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(secrets.token_urlsafe(50))
    return path.read_text(encoding="utf-8").strip()


def _truthy(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name, "").strip().lower() in _TRUE


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    from django.core.exceptions import ImproperlyConfigured

    text = environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise ImproperlyConfigured(f"{name} must be a whole number of at least 1, not {text!r}")
    return int(text)


def _time_zone(environ: Mapping[str, str]) -> str:
    """``ALLIANCE_TIME_ZONE`` checked against the IANA database (``zoneinfo``), default ``UTC``."""
    from django.core.exceptions import ImproperlyConfigured

    name = environ.get("ALLIANCE_TIME_ZONE", "").strip() or "UTC"
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ImproperlyConfigured(
            f"ALLIANCE_TIME_ZONE must be an IANA time zone name such as Europe/Berlin, America/New_York or UTC "
            f"(the names `python -c 'import zoneinfo; print(zoneinfo.available_timezones())'` lists), "
            f"not {name!r}") from None
    return name


def _languages(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """``ALLIANCE_LANGUAGES`` as Django's ``LANGUAGES``: each code with Django's name for it, default ``en``."""
    from django.conf import global_settings
    from django.core.exceptions import ImproperlyConfigured

    known = dict(global_settings.LANGUAGES)
    codes = [c.strip().lower() for c in environ.get("ALLIANCE_LANGUAGES", "").split(",") if c.strip()] or ["en"]
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise ImproperlyConfigured(
            f"ALLIANCE_LANGUAGES has {', '.join(map(repr, unknown))}, which Django does not know; use "
            f"comma-separated codes of django.conf.global_settings.LANGUAGES, e.g. en,de,fr,es,pt-br")
    return [(code, known[code]) for code in dict.fromkeys(codes)]


def _path(environ: Mapping[str, str], name: str) -> Path | None:
    return Path(environ[name]).expanduser() if environ.get(name) else None
