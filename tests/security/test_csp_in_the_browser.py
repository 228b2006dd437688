"""In a real Chromium, the main pages run under the Content-Security-Policy without one violation: the
report page's in-browser fingerprinting (pdq.js), the console's reveal and shortcuts (console.js), the
dashboard's charts and the API docs all work with scripts and styles from files only."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User

from moderation.models import MediaExposure, ReviewTask
from moderation.roles import SENIOR
from tests.conftest import make_image_bytes
from tests.moderation.console_helpers import user_with_role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = Path(os.environ.get("TAKEDOWN_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
LISTEN = """document.addEventListener("securitypolicyviolation", function (e) {
  (window.__csp = window.__csp || []).push(e.violatedDirective + " " + e.blockedURI + " " + e.sourceFile); });"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if settings.TAKEDOWN_REQUIRE_SERVICES:
            pytest.fail(f"Chromium not installed at {CHROMIUM} (apt-get install chromium)")
        pytest.skip("Chromium not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # the live server's ORM calls from Playwright's loop
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            try:
                yield chromium
            finally:
                chromium.close()


class Watched:
    """A page whose CSP violations (DOM events and console reports) are collected."""

    def __init__(self, browser: Any, base_url: str) -> None:
        self.context = browser.new_context(base_url=base_url)
        self.context.set_default_timeout(10_000)
        self.context.add_init_script(LISTEN)
        self.page = self.context.new_page()
        self.console: list[str] = []
        self.page.on("console", lambda m: self.console.append(m.text) if "Content Security Policy" in m.text else None)

    def visit(self, path: str) -> Any:
        response = self.page.goto(path)
        assert response is not None and response.status < 500, path
        assert "Content-Security-Policy" in {k.title(): v for k, v in response.headers.items()}, path
        return response

    def violations(self) -> list[str]:
        return list(self.page.evaluate("() => window.__csp || []")) + self.console


def test_the_victim_pages_run_without_a_csp_violation(browser: Any, live_server: Any, tmp_path: Path) -> None:
    watched = Watched(browser, live_server.url)
    found: list[str] = []
    try:
        for path in ("/", "/status/", "/demo/content/"):
            watched.visit(path)
            found += [f"{path}: {v}" for v in watched.violations()]
        watched.visit("/report/")
        picture = tmp_path / "mine.png"
        picture.write_bytes(make_image_bytes(3, fmt="PNG"))
        page = watched.page
        picker = page.locator("input[type=file][multiple], #own-images").first
        picker.set_input_files(str(picture))
        page.wait_for_function("() => document.querySelector('input[name=client_hashes]').value.length > 10")
        found += [f"/report/: {v}" for v in watched.violations()]
    finally:
        watched.context.close()
    assert not found, "\n".join(found)


def test_the_console_pages_run_without_a_csp_violation(browser: Any, live_server: Any) -> None:
    from moderation.models import Media
    from moderation.services.media import media_store
    from tests.moderation.console_helpers import make_case

    senior: User = user_with_role("sara-senior", SENIOR)
    task = make_case()
    item = task.report.items.get()
    item.media = media_store(data=make_image_bytes(4), origin=Media.Origin.UPLOAD)
    item.save()
    watched = Watched(browser, live_server.url)
    page = watched.page
    found: list[str] = []
    try:
        watched.visit("/accounts/login/")
        page.fill("input[name=username]", senior.username)
        page.fill("input[name=password]", "pw-sara-senior")
        page.click("button[type=submit], input[type=submit]")
        page.wait_for_url("**/console/")
        for path in ("/console/", f"/console/case/{task.pk}", "/console/dashboard", "/console/audit",
                     "/console/preferences", "/api/docs/"):
            watched.visit(path)
            if path.startswith("/console/case/"):
                assert page.eval_on_selector(".media-wrap img", "img => getComputedStyle(img).filter").startswith(
                    "blur(")  # console.js set the blur from the moderator's preference
                page.click("button.reveal")
                page.wait_for_function("() => !document.querySelector('.media-wrap').classList.contains('concealed')")
                assert page.eval_on_selector(".media-wrap img", "img => img.naturalWidth") > 0  # the signed link
            if path == "/api/docs/":
                page.wait_for_selector(".swagger-ui .info", timeout=10_000)
            found += [f"{path}: {v}" for v in watched.violations()]
    finally:
        watched.context.close()
    assert MediaExposure.objects.filter(user=senior).count() == 1
    assert ReviewTask.objects.filter(pk=task.pk).exists()
    assert not found, "\n".join(found)


def test_the_watcher_does_see_a_violation_when_a_page_runs_inline_script(browser: Any, live_server: Any) -> None:
    """The control for the two tests above: an injected inline script is blocked and reported."""
    watched = Watched(browser, live_server.url)
    try:
        watched.visit("/")
        watched.page.evaluate("""() => { var s = document.createElement("script");
            s.textContent = "window.__ran = true"; document.body.appendChild(s); }""")
        watched.page.wait_for_function("() => (window.__csp || []).length > 0")
        assert watched.page.evaluate("() => window.__ran === undefined")
        assert any(v.startswith("script-src") for v in watched.violations())
    finally:
        watched.context.close()
