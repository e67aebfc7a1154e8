"""`settle`, the browser tests' readiness wait: it waits for what the operator sees (the
document, its images and fonts), not for network silence, so a request that stays open, as a
poll or a browser-initiated one on a slow host can, does not fail a layout check.

A console check once timed out in CI on Playwright's "networkidle" (15 s) on a page that
had loaded; these tests hold a request open on purpose.
"""

from __future__ import annotations

import pytest

from tests.e2e.browser import ARTIFACTS, BROWSER_MARKS, browser_page, settle

pytestmark = [m for m in BROWSER_MARKS if m.name != "django_db"]

ORIGIN = "http://console.test"
PAGE = """<!doctype html><html><body><p id=t>ready</p>
<script>
  window.addEventListener('load', () => {
    fetch('/poll');  // answered only when the test says so
    if (location.hash === '#late-image') {
      const img = new Image(); img.src = '/late.svg'; document.body.appendChild(img);
    }
  });
</script></body></html>"""
SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>'


@pytest.fixture
def page(monkeypatch, settings):
    with browser_page(monkeypatch, settings, width=800, height=600, shots=ARTIFACTS) as tab:
        yield tab


@pytest.fixture
def held(page) -> list:
    """The page served, and the requests it makes after load, held unanswered."""
    requests: list = []
    page.route(f"{ORIGIN}/", lambda r: r.fulfill(body=PAGE, content_type="text/html"))
    page.route(f"{ORIGIN}/poll", lambda r: requests.append(r))
    page.route(f"{ORIGIN}/late.svg", lambda r: requests.append(r))
    return requests


def test_a_request_held_open_after_load_does_not_stall_settle(page, held):
    page.goto(f"{ORIGIN}/")
    # the trap is real: network silence never comes while the poll is open
    with pytest.raises(Exception, match="Timeout"):
        page.wait_for_load_state("networkidle", timeout=1_500)
    settle(page)
    assert page.inner_text("#t") == "ready"
    assert [r.request.url for r in held] == [f"{ORIGIN}/poll"]


def test_settle_waits_for_an_image_added_after_load(page, held):
    page.goto(f"{ORIGIN}/#late-image")
    page.wait_for_function("() => document.images.length === 1")
    # the image is requested and unanswered: not yet what the operator sees
    with pytest.raises(Exception, match="Timeout"):
        page.wait_for_function("() => [...document.images].every(i => i.complete)", timeout=1_000)
    late = next(r for r in held if r.request.url.endswith("/late.svg"))
    late.fulfill(body=SVG, content_type="image/svg+xml")
    settle(page)
    assert page.evaluate("() => document.images[0].naturalWidth") == 4
