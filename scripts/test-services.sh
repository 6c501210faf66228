#!/usr/bin/env bash
# Install and start what the test suite needs beyond Python packages.
#
# PostgreSQL: the storage tests run against SQLite and against a real PostgreSQL server. This
# script installs Debian's `postgresql` package when it is missing, starts a throwaway cluster on
# 127.0.0.1:${ALLIANCE_TEST_POSTGRES_PORT:-54329} (data in /tmp, trust authentication, fsync off),
# creates the role and database `alliance_test`, and writes the server's URL to
# var/test-postgres.url, which the tests read. A second run reuses the running server. It also
# creates `alliance_app`, an ordinary login role that owns nothing: the app role of the two-role
# setup (docs/storage.md), which tests/web/test_audit_roles.py connects as.
#
# Setting ALLIANCE_TEST_POSTGRES_URL points the tests at another server and skips all of this.
# Under CI=true every failure is fatal; elsewhere the script says how to enable PostgreSQL and
# carries on, and the PostgreSQL tests are skipped.
#
# Chromium: the browser tests (tests/web/browser) drive Debian's `chromium` (/usr/bin/chromium)
# with Playwright's Python package; Playwright's own browser download is never used. This script
# installs the package with apt-get when it is missing (as root); under CI=true a missing Chromium
# is fatal, elsewhere the browser tests are skipped with a message saying how to enable them.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PORT="${ALLIANCE_TEST_POSTGRES_PORT:-54329}"
RUN_DIR="/tmp/alliance-test-postgres-${PORT}"
PGDATA="${RUN_DIR}/data"
URL_FILE="${ROOT}/var/test-postgres.url"
ROLE="alliance_test"
URL="postgresql://${ROLE}@127.0.0.1:${PORT}/${ROLE}"

say() { echo "test-services: $*"; }

give_up() {
    # Without PostgreSQL the PostgreSQL tests are skipped locally, but CI must test both backends.
    say "$1"
    rm -f "${URL_FILE}"
    if [[ "${CI:-}" == "true" ]]; then
        say "CI=true: PostgreSQL is required; failing."
        exit 1
    fi
    say "PostgreSQL tests will be skipped. To enable them: run this script as root (it installs"
    say "Debian's postgresql package with apt-get), or 'sudo apt-get install postgresql' and run it"
    say "again, or set ALLIANCE_TEST_POSTGRES_URL=postgresql://user@host:port/database."
    exit 0
}

ensure_chromium() {
    if [[ -x /usr/bin/chromium ]]; then
        say "Chromium ready: /usr/bin/chromium"
        return 0
    fi
    if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "installing Debian's chromium package"
        if DEBIAN_FRONTEND=noninteractive apt-get update -qq \
           && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null \
           && [[ -x /usr/bin/chromium ]]; then
            say "Chromium installed: /usr/bin/chromium"
            return 0
        fi
        say "apt-get could not install chromium."
    else
        say "Chromium is not installed, and installing it needs root and apt-get."
    fi
    if [[ "${CI:-}" == "true" ]]; then
        say "CI=true: the browser tests need Chromium; failing."
        exit 1
    fi
    say "Browser tests will be skipped. To enable them: 'sudo apt-get install chromium' and"
    say "'pip install playwright' (the Python package only; 'playwright install' is not needed)."
}

ensure_chromium

if [[ -n "${ALLIANCE_TEST_POSTGRES_URL:-}" ]]; then
    say "using ALLIANCE_TEST_POSTGRES_URL; not starting a server"
    exit 0
fi

find_bindir() {
    # Debian keeps the server programs out of PATH, one folder per major version; take the newest.
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -n "${dir}" && -x "${dir}/initdb" ]]; then
        echo "${dir}"
    elif command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
    fi
}

BINDIR="$(find_bindir)"
if [[ -z "${BINDIR}" ]]; then
    if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        give_up "PostgreSQL is not installed, and installing it needs root and apt-get."
    fi
    say "installing Debian's postgresql package"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
           && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }; then
        give_up "apt-get could not install postgresql."
    fi
    BINDIR="$(find_bindir)"
    [[ -n "${BINDIR}" ]] || give_up "postgresql is installed but initdb was not found."
fi

# As root the server must run as the unprivileged `postgres` user (PostgreSQL refuses root).
if [[ "$(id -u)" -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || give_up "running as root but there is no 'postgres' user to run the server as."
    as_server() { runuser -u postgres -- "$@"; }
else
    as_server() { "$@"; }
fi

psql_admin() {
    "${BINDIR}/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "${PORT}" -U postgres -d postgres "$@"
}

mkdir -p "${RUN_DIR}" "${ROOT}/var"
[[ "$(id -u)" -eq 0 ]] && chown postgres: "${RUN_DIR}"

# Two `make test` runs at once (parallel sessions, CI) must not both initialise the cluster.
exec 9>"${RUN_DIR}.lock"
flock 9

if "${BINDIR}/pg_isready" -q -h 127.0.0.1 -p "${PORT}"; then
    say "reusing the PostgreSQL server on 127.0.0.1:${PORT}"
else
    if [[ ! -f "${PGDATA}/PG_VERSION" ]]; then
        say "creating a throwaway cluster in ${PGDATA}"
        as_server "${BINDIR}/initdb" -D "${PGDATA}" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"${RUN_DIR}/initdb.log" 2>&1 \
            || { cat "${RUN_DIR}/initdb.log"; give_up "initdb failed."; }
    fi
    say "starting PostgreSQL on 127.0.0.1:${PORT}"
    # fsync off: the cluster is thrown away, and tests should not wait on the disk.
    as_server "${BINDIR}/pg_ctl" -D "${PGDATA}" -l "${RUN_DIR}/server.log" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -p ${PORT} -k ${RUN_DIR} -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        >/dev/null 9>&- || { tail -n 20 "${RUN_DIR}/server.log" || true; give_up "PostgreSQL did not start."; }
fi

# Idempotent: the role may create databases because the test runner creates and drops its own.
psql_admin >/dev/null <<SQL || give_up "could not create the role and database ${ROLE}."
SELECT 'CREATE ROLE ${ROLE} LOGIN CREATEDB'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${ROLE}') \gexec
SELECT 'CREATE DATABASE ${ROLE} OWNER ${ROLE}'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '${ROLE}') \gexec
SELECT 'CREATE ROLE alliance_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'alliance_app') \gexec
SQL

echo "${URL}" > "${URL_FILE}"
say "PostgreSQL ready: ${URL} (written to var/test-postgres.url)"
