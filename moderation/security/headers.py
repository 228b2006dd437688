"""Security headers on every response: a strict Content-Security-Policy and a Permissions-Policy.

No page runs inline script: every script is a static file (``script-src 'self'``), so injected markup
cannot run code. ``Referrer-Policy``, ``X-Content-Type-Options`` and ``Cross-Origin-Opener-Policy`` come
from Django's ``SecurityMiddleware`` (settings ``SECURE_*``).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

DEFAULT_CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data: blob:",  # blob:/data: for the previews the report page makes in the browser
    "media-src": "'self' blob:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "frame-src": "'none'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
}
# Swagger UI (the API docs page) sets style attributes from its own script; its scripts stay strict.
INLINE_STYLE_PATHS = ("/api/docs/",)
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"


def csp_header_value(*, inline_styles: bool = False) -> str:
    policy: dict[str, str] = {**DEFAULT_CSP, **getattr(settings, "TAKEDOWN_CSP_OVERRIDES", {})}
    if inline_styles:
        policy["style-src"] = "'self' 'unsafe-inline'"
    return "; ".join(f"{name} {value}" for name, value in policy.items())


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self.csp = csp_header_value()
        self.csp_inline_styles = csp_header_value(inline_styles=True)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        relaxed = request.path.startswith(INLINE_STYLE_PATHS)
        response.headers.setdefault("Content-Security-Policy", self.csp_inline_styles if relaxed else self.csp)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response
