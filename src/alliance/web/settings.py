"""Django settings for the ``alliance`` web app and its storage, read from the environment.

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
``ALLIANCE_DATA_DIR``
    The folder holding the default SQLite file and the generated secret key.
``ALLIANCE_SECRET_KEY``
    The key Django signs sessions and links with. Without it, a random key is generated on first
    use and kept in ``$ALLIANCE_DATA_DIR/secret_key`` (mode 0600), so that every install has its
    own key and none is ever written in the source.
``ALLIANCE_DEBUG``
    ``1`` for Django's debug pages (never in production).
``ALLIANCE_ALLOWED_HOSTS``
    Comma-separated host names the server answers to (default ``localhost,127.0.0.1``).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url


def _data_dir() -> Path:
    explicit = os.environ.get("ALLIANCE_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg).expanduser() / "alliance"


def _secret_key(data_dir: Path) -> str:
    from_env = os.environ.get("ALLIANCE_SECRET_KEY")
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


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


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
        for the lock instead of failing half-way with "database is locked").

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
    return database


DATA_DIR = _data_dir()
DEFAULT_DATABASE_FILE = DATA_DIR / "alliance.sqlite3"

SECRET_KEY = _secret_key(DATA_DIR)
DEBUG = _truthy("ALLIANCE_DEBUG")
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLIANCE_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",")
                 if h.strip()]

if os.environ.get("DATABASE_URL"):
    _default_database = database_from_url(os.environ["DATABASE_URL"])
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    _default_database = database_from_url(f"sqlite:///{DEFAULT_DATABASE_FILE}")
DATABASES = {"default": _default_database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "alliance.web.accounts",
    "alliance.web.capture",
    "alliance.web.monitor",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "alliance.web.urls"
WSGI_APPLICATION = "alliance.web.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# A custom user model from the start: Django cannot switch to one after the first migration,
# and the web app's roles (investigator, facilitator, monitor) will hang off it.
AUTH_USER_MODEL = "accounts.User"

# Argon2id first (the OWASP recommendation); the others only verify hashes made elsewhere.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Headers and cookies: safe defaults that hold with or without TLS. HTTPS-only cookies and HSTS
# depend on how the server is deployed and are set by the web app's serve configuration.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
