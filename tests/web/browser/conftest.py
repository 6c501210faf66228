"""Browser tests: Playwright's Python API driving Debian's Chromium against a live server.

The browser is Debian's ``chromium`` at ``/usr/bin/chromium`` (installed by
``scripts/test-services.sh``), never one downloaded by ``playwright install``. Without Chromium
or the ``playwright`` package the tests are skipped with a message saying how to enable them,
except under ``CI=true``, where that is a failure.

The server is pytest-django's ``live_server`` (a real HTTP server in a thread, on the test
database); tests using it need a transactional database, so each is marked
``django_db(transaction=True)``.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HOW_TO_ENABLE = ("to enable them: `apt-get install chromium` (or run scripts/test-services.sh as root) and "
                 "`pip install playwright` (the Python package only; `playwright install` is not needed)")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1100, "height": 900}

# Playwright's sync API keeps an asyncio loop in this thread; Django refuses ORM calls from a thread
# with a running loop unless told that this is safe — it is here: the test thread is not async code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or ``None`` when they can."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"Debian's Chromium is not installed ({CHROMIUM} is missing)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("the playwright Python package is not installed")
    return "; ".join(missing) or None


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole run."""
    missing = missing_browser()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true requires the browser tests: {missing}; {HOW_TO_ENABLE}")
        pytest.skip(f"browser tests skipped: {missing}; {HOW_TO_ENABLE}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser, live_server):
    """Make pages in fresh browser contexts (own cookies) on the live server: ``new_page(viewport=PHONE)``."""
    contexts = []

    def make(viewport: dict | None = None):
        context = browser.new_context(base_url=live_server.url, viewport=viewport or DESKTOP, accept_downloads=True)
        context.set_default_timeout(20_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()
