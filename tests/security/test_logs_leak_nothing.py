"""No media bytes, PIN, email address or API key reaches the logs: a whole flow runs with every logger at
DEBUG, and every record (message, arguments, extra fields and its text in both log formats, plain and JSON) is
searched for them."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils.module_loading import import_string

from moderation.celery import app as celery_app
from moderation.models import ReviewTask
from moderation.observability.request_id import RequestIdFilter
from moderation.roles import MODERATOR
from moderation.services.api_keys import api_key_create, api_key_revoke
from tests.conftest import make_image_bytes, notice_payload
from tests.moderation.console_helpers import user_with_role

EMAIL_WEB, EMAIL_API = "river.secret@example.org", "quinn.private@example.net"


def json_formatter() -> logging.Formatter:
    """The JSON formatter exactly as settings.LOGGING configures it."""
    config = dict(django_settings.LOGGING["formatters"]["json"])
    return import_string(config.pop("()"))(**config)  # type: ignore[no-any-return]


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s %(pathname)s"))
        self.json = json_formatter()
        self.addFilter(RequestIdFilter())  # as on the console handler: records get their request_id

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


# Loggers that write raw template contexts or SQL parameters at DEBUG; settings.LOGGING keeps them at INFO
# whatever LOG_LEVEL says, and the test checks that it does.
PINNED = {"django.template": logging.INFO, "django.db.backends": logging.INFO}


def test_the_loggers_that_would_dump_contexts_and_sql_stay_above_debug(settings: Any) -> None:
    for name, level in PINNED.items():
        assert logging.getLevelName(settings.LOGGING["loggers"][name]["level"]) == level


@pytest.fixture
def captured() -> Iterator[_Keep]:
    # The first task sent imports the tasks modules, and Celery's Django fix-up then runs django.setup() again,
    # which configures logging anew and would drop the handler below mid-flow: import them first.
    celery_app.loader.import_default_modules()
    handler = _Keep()
    loggers = [logging.getLogger()] + [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    levels = [(lg, lg.level, lg.disabled) for lg in loggers]
    for lg in loggers:  # every logger at DEBUG (Django's request logging too), but the pinned two
        lg.setLevel(PINNED.get(lg.name, logging.DEBUG))
        lg.disabled = False
    logging.getLogger().addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger().removeHandler(handler)
        for lg, level, disabled in levels:
            lg.setLevel(level)
            lg.disabled = disabled


def _texts(record: logging.LogRecord, handler: _Keep) -> list[str]:
    texts = [str(record.msg), repr(record.args)]
    try:
        texts.append(record.getMessage())
        texts.append(handler.format(record))
        texts.append(handler.json.format(record))
    except Exception as exc:  # a broken record is a bug of its own; still search what it holds
        texts.append(repr(exc))
    texts += [repr(v) for k, v in vars(record).items() if k not in ("msg", "args")]
    return texts


@pytest.mark.django_db(transaction=True)
def test_a_whole_flow_logs_no_media_pin_email_or_key(captured: _Keep, demo: Any, settings: Any) -> None:
    settings.AXES_FAILURE_LIMIT = 2
    image_web, image_api = make_image_bytes(31), make_image_bytes(32)
    web = Client()
    page = web.post("/report/", {
        "reporter_name": "River Example", "reporter_email": EMAIL_WEB, "relationship": "self",
        "locations": "demo://content/3\n", "statement": "An AI-made intimate image of me, posted without consent.",
        "good_faith": "on", "adult_confirmed": "on", "signature": "River Example",
        "image": SimpleUploadedFile("me.jpg", image_web, content_type="image/jpeg")}).content.decode()
    case_web = re.search(r'id="case-number">([^<]+)<', page).group(1)  # type: ignore[union-attr]
    pin_web = re.search(r'id="pin">([^<]+)<', page).group(1)  # type: ignore[union-attr]
    api = Client()
    payload = notice_payload(reporter_email=EMAIL_API, locations=["demo://content/4"])
    payload["files"] = [SimpleUploadedFile("p.jpg", image_api, content_type="image/jpeg")]
    created = api.post("/api/v1/reports", payload)
    assert created.status_code == 201, created.content
    case_api, pin_api = created.json()["case_number"], created.json()["pin"]
    assert web.post("/status/", {"case_number": case_web, "pin": pin_web}).status_code == 200
    assert Client().post("/status/", {"case_number": case_web, "pin": "WRNG-WRNG-WRNG"}).status_code == 404
    assert api.get(f"/api/v1/reports/{case_api}", headers={"X-Case-Pin": pin_api}).status_code == 200
    assert api.get(f"/api/v1/reports/{case_api}", headers={"X-Case-Pin": pin_web}).status_code == 404

    row, key = api_key_create(kind="platform", name="host")
    scan = Client(headers={"Authorization": f"Api-Key {key}"})
    assert scan.post("/api/v1/scan", {"file": SimpleUploadedFile("u.jpg", image_web)}).status_code == 200
    api_key_revoke(prefix=row.prefix)
    assert scan.post("/api/v1/scan", {"file": SimpleUploadedFile("u.jpg", image_web)}).status_code == 401

    mod = user_with_role("logan-moderator", MODERATOR)
    for _ in range(2):  # wrong passwords, then a lockout (django-axes logs these)
        Client().post("/accounts/login/", {"username": mod.username, "password": pin_web})
    console = Client()
    console.force_login(mod)
    for task in ReviewTask.objects.all():
        page = console.get(f"/console/case/{task.pk}").content.decode()
        for link in re.findall(r'src="(/console/media/[^"]+)"', page):
            assert console.get(link.replace("&amp;", "&")).status_code == 200
        console.post(f"/console/case/{task.pk}/claim")
        console.post(f"/console/case/{task.pk}/decide", {"decision": "takedown", "reason": "ncii",
                                                          "note": "Matches the description."})
    assert captured.records, "the capture saw no records: the test would prove nothing"
    seen = {r.name for r in captured.records}
    assert {"django.request", "axes.handlers.database", "celery.app.trace"} <= seen, seen

    secrets = {"web PIN": pin_web, "API PIN": pin_api, "web email": EMAIL_WEB, "API email": EMAIL_API,
               "API key": key,
               # td_<prefix>_<secret>: the secret may itself hold "_", so split after the prefix, never at the
               # last "_" (a short tail such as "s" would be "found" in any log line).
               "API key secret": key.split("_", 2)[2]}
    for name, image in (("web image", image_web), ("API image", image_api)):
        for at in (0, len(image) // 2, len(image) - 48):
            chunk = image[at:at + 24]
            secrets[f"{name} bytes@{at}"] = repr(chunk)[2:-1]
            secrets[f"{name} hex@{at}"] = chunk.hex()
        secrets[f"{name} base64"] = base64.b64encode(image[:48]).decode()[:40]
    leaks = []
    for record in captured.records:
        for text in _texts(record, captured):
            leaks += [f"{name} in {record.name}: {record.msg!r}"[:300] for name, value in secrets.items()
                      if value in text or value.lower() in text.lower()]
    assert not leaks, "\n".join(sorted(set(leaks)))

    # In the JSON format every record is one object with the fields a log pipeline indexes; what was logged
    # while serving a request carries that request's id: Django's response lines (written after the middleware
    # returned) and django-axes' lines about login requests (not those about the test's force_login).
    lines = [json.loads(captured.json.format(record)) for record in captured.records]
    assert all({"time", "level", "logger", "message", "request_id"} <= set(line) for line in lines)
    served = [line for line in lines if line["logger"] == "django.request"
              or (line["logger"].startswith("axes.") and "/accounts/login/" in line["message"])]
    assert served and all(re.fullmatch(r"[0-9a-f]{32}", line["request_id"] or "") for line in served), [
        line for line in served if not line["request_id"]]
