"""Django settings for the test suite: the real settings, with a second database for PostgreSQL.

Two database aliases:

- ``default``: SQLite (an in-memory test database, created by pytest-django);
- ``postgres``: the PostgreSQL server named by ``ALLIANCE_TEST_POSTGRES_URL`` or, without it, by
  ``var/test-postgres.url``, which ``scripts/test-services.sh`` (run by ``make test``) writes after
  starting a throwaway server on 127.0.0.1. The alias exists only when that server answers;
  :data:`POSTGRES_UNAVAILABLE` then says why not, and the storage tests parametrized over both
  backends skip the PostgreSQL case with that reason (or fail under ``CI=true``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# The real settings create a secret key and the default SQLite file in the data folder: point it
# at a throwaway folder so that tests never touch the user's own data.
os.environ["ALLIANCE_DATA_DIR"] = tempfile.mkdtemp(prefix="alliance-test-data-")
os.environ.pop("DATABASE_URL", None)

from alliance.web.config import database_from_url  # noqa: E402
from alliance.web.settings import *  # noqa: E402,F403

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_URL_FILE = ROOT / "var" / "test-postgres.url"
HOW_TO_ENABLE = ("run `make test` (scripts/test-services.sh installs and starts PostgreSQL on 127.0.0.1:54329), "
                 "or set ALLIANCE_TEST_POSTGRES_URL=postgresql://user@host:port/database")

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}

# Fast hashing in tests only; the real settings keep Argon2 first.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _postgres_url() -> tuple[str | None, str | None]:
    url = os.environ.get("ALLIANCE_TEST_POSTGRES_URL")
    if not url and POSTGRES_URL_FILE.exists():
        url = POSTGRES_URL_FILE.read_text(encoding="utf-8").strip()
    if not url:
        return None, f"no PostgreSQL server configured for the tests; to enable: {HOW_TO_ENABLE}"
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=5):
            pass
    except Exception as error:  # any failure means: no usable server
        return None, f"PostgreSQL at {url} does not answer ({str(error).strip()}); to enable: {HOW_TO_ENABLE}"
    return url, None


POSTGRES_URL, POSTGRES_UNAVAILABLE = _postgres_url()
if POSTGRES_URL:
    DATABASES["postgres"] = database_from_url(POSTGRES_URL)
    # One test database per test process, so that parallel runs on one server do not collide.
    DATABASES["postgres"]["TEST"] = {"NAME": f"test_alliance_{os.getpid()}"}
