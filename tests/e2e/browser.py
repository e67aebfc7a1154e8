"""Headless Chromium for the browser tests (Playwright's sync API, Debian's chromium)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connections
from django.middleware.security import SecurityMiddleware

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PASSWORD = "pw-for-tests-only"

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install '.[test]')"
)

BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"{CHROMIUM} missing (apt-get install -y chromium)"
    ),
]


@contextlib.contextmanager
def browser_page(monkeypatch, settings, *, width: int, height: int, shots: Path) -> Iterator:
    """A tab of a fresh headless Chromium on the live server, over plain HTTP on loopback."""
    # Playwright's sync API runs an event loop in this thread; the ORM calls in the test
    # body are still synchronous and safe here.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    # The live server is session-scoped: its SecurityMiddleware was built with production's
    # HTTPS redirect before this test's settings apply. Plain HTTP on loopback for the test.
    monkeypatch.setattr(SecurityMiddleware, "process_request", lambda self, request: None)
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
    shots.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        context = browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(15_000)
        tab = context.new_page()
        try:
            yield tab
        finally:
            context.close()
            browser.close()
            # ORM calls made while Playwright's loop is running may hold their own
            # (context-local) connection: close it, or PostgreSQL cannot drop the test DB
            connections.close_all()


# What a layout check needs: the document loaded (readyState 'complete': its stylesheets,
# scripts and images) and any image or font added after that. Playwright's "networkidle"
# instead waits for 500 ms with no request in flight anywhere, which a browser-initiated
# request (the favicon) or a slow host can hold off past any timeout; its docs advise against
# it for tests.
SETTLED = """() => document.readyState === 'complete'
    && [...document.images].every(i => i.complete)
    && document.fonts.status === 'loaded'"""


def settle(page) -> None:
    """Wait until the page is rendered as the operator sees it (not for network silence)."""
    page.wait_for_function(SETTLED)
