"""Every HTML page of the site, fetched as a caller who may see it (for the CSP and CSRF tests)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser

from django.test import Client

from moderation.roles import ADMIN
from tests.security.test_access_matrix import REPORTER, ROWS, World, client_as


@dataclass
class Page:
    path: str
    persona: str
    status: int
    headers: dict[str, str]
    html: str


@dataclass
class Markup:
    inline_scripts: list[str] = field(default_factory=list)
    handlers: list[str] = field(default_factory=list)  # on*= attributes and javascript: URLs
    inline_styles: list[str] = field(default_factory=list)
    post_forms: list[str] = field(default_factory=list)  # action of each <form method=post>
    forms_without_token: list[str] = field(default_factory=list)


class _Parser(HTMLParser):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.found = Markup()
        self._form: str | None = None
        self._form_has_token = False
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: (v or "") for k, v in attrs}
        for name, value in values.items():
            if name.startswith("on"):
                self.found.handlers.append(f"<{tag} {name}=...>")
            if name in ("href", "src", "action", "formaction") and value.strip().lower().startswith("javascript:"):
                self.found.handlers.append(f"<{tag} {name}=javascript:...>")
        if "style" in values:
            self.found.inline_styles.append(f"<{tag} style={values['style']!r}>")
        if tag == "style":
            self.found.inline_styles.append("<style> element")
        if tag == "script":
            kind = values.get("type", "").lower()
            if not values.get("src") and kind not in ("application/json", "application/ld+json"):
                self._in_script = True
                self.found.inline_scripts.append("<script> without src")
        if tag == "form" and values.get("method", "get").lower() == "post":
            self._form = values.get("action") or self.path
            self._form_has_token = False
        if tag == "input" and values.get("name") == "csrfmiddlewaretoken" and self._form is not None:
            self._form_has_token = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._form is not None:
            self.found.post_forms.append(self._form)
            if not self._form_has_token:
                self.found.forms_without_token.append(self._form)
            self._form = None


def markup(page: Page) -> Markup:
    parser = _Parser(page.path)
    parser.feed(page.html)
    return parser.found


def _viewer(route: str) -> str:
    if route.startswith("status/"):
        return REPORTER
    return ADMIN


def html_pages(world: World, extra: list[tuple[str, str]] | None = None) -> Iterator[Page]:
    """The HTML answer of every GET row of the access matrix, as a caller who may see it."""
    targets: list[tuple[str, str]] = []
    for route, rows in ROWS.items():
        for row in rows:
            if row.method == "get" and "{media_link}" not in row.path:
                targets.append((row.path.format(**world.values), REPORTER if route == "status/" else _viewer(route)))
    targets += extra or []
    for path, persona in targets:
        client: Client = client_as(persona, world)
        response = client.get(path)
        if "text/html" not in response.get("Content-Type", ""):
            continue
        yield Page(path=path, persona=persona, status=response.status_code, headers=dict(response.headers),
                   html=response.content.decode())
