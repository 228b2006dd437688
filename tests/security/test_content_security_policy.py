"""Every page carries a strict Content-Security-Policy and the other security headers, and has no inline
script, inline event handler or inline style for the policy to block."""

from __future__ import annotations

import pytest
from django.test import Client

from moderation.security.headers import csp_header_value
from tests.security.pages import html_pages, markup
from tests.security.test_access_matrix import World, world  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db

REQUIRED = ["default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'",
            "base-uri 'none'", "form-action 'self'", "style-src 'self'"]
# The API docs page (Swagger UI) styles elements from its own script; its scripts are still files.
STYLE_EXEMPT = ("/api/docs/",)


def _directives(header: str) -> dict[str, str]:
    return {part.strip().split(" ", 1)[0]: part.strip() for part in header.split(";") if part.strip()}


def test_the_policy_allows_no_inline_script_and_no_plugins() -> None:
    directives = _directives(csp_header_value())
    assert directives["script-src"] == "script-src 'self'"
    assert "'unsafe-inline'" not in csp_header_value() and "'unsafe-eval'" not in csp_header_value()
    for wanted in REQUIRED:
        assert wanted in directives.values(), wanted


def test_every_page_sends_the_policy_and_the_security_headers(world: World) -> None:  # noqa: F811
    pages = list(html_pages(world, extra=[("/admin/login/", "anonymous")]))
    assert len(pages) >= 19, [p.path for p in pages]
    for page in pages:
        headers = {k.lower(): v for k, v in page.headers.items()}
        csp = _directives(headers.get("content-security-policy", ""))
        assert csp.get("script-src") == "script-src 'self'", page.path
        for wanted in REQUIRED:
            if wanted.startswith("style-src") and page.path.startswith(STYLE_EXEMPT):
                continue
            assert wanted in csp.values(), (page.path, wanted)
        assert headers.get("x-content-type-options") == "nosniff", page.path
        assert headers.get("referrer-policy") == "same-origin", page.path
        assert "camera=()" in headers.get("permissions-policy", ""), page.path
        assert headers.get("x-frame-options") == "DENY", page.path


def test_no_page_has_inline_scripts_event_handlers_or_inline_styles(world: World) -> None:  # noqa: F811
    problems: list[str] = []
    for page in html_pages(world, extra=[("/admin/login/", "anonymous")]):
        found = markup(page)
        problems += [f"{page.path}: {x}" for x in found.inline_scripts + found.handlers]
        if not page.path.startswith(STYLE_EXEMPT):
            problems += [f"{page.path}: {x}" for x in found.inline_styles]
    assert not problems, "\n".join(problems)


def test_api_and_error_answers_carry_the_policy_too(client: Client) -> None:
    for path in ("/api/v1/queue", "/healthz", "/no-such-page"):
        assert "default-src 'self'" in client.get(path)["Content-Security-Policy"], path
