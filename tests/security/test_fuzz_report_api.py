"""Fuzzing ``POST /api/v1/reports`` and the web report form: JSON and multipart bodies with fields of the
wrong type, length or character set, missing or unknown, files of random or mutated bytes, and bodies
that are not what their Content-Type says.

The properties: the API answers 201 or a 4xx in the project's error shape (``{"detail": ..., "errors":
{field: [...]}}``; a body that cannot be parsed at all has ``detail`` alone) and never 500; a 4xx saves
nothing; a 201 saves exactly one report. The web form answers 200 or 400, never 500.

Bounded like test_fuzz_decode.py: ``TAKEDOWN_FUZZ_EXAMPLES`` (200 by default), derandomized.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moderation.models import AuditEvent, Media, Report, ReportedItem
from tests.conftest import notice_payload
from tests.security.hostile_corpus import corpus

EXAMPLES = int(os.environ.get("TAKEDOWN_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])
API = "/api/v1/reports"
FORM = "/report/"
BOUNDARY = "----takedown-fuzz-b0undary"
VALID: dict[str, Any] = notice_payload()

# Strings people and scripts send: control characters, NUL, lone surrogates, right-to-left overrides,
# combining marks, emoji, markup, very long values.
ODD_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
    st.sampled_from(["", " ", "\x00", "a\x00b", "\ud800", "x\udfffy", "\u202etxt.exe", "e\u0301\u0301\u0301",
                     "📷🔥", "<script>alert(1)</script>", "' OR 1=1 --", "../../etc/passwd", "\r\n\r\n",
                     "null", "true", "1e999", "﷽" * 50]),
    st.integers(1, 30_000).map(lambda n: "x" * n),
)
JSON_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), ODD_TEXT),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children,
                                                                               max_size=4)),
    max_leaves=8,
)


def counts() -> tuple[int, int, int, int]:
    return (Report.objects.count(), ReportedItem.objects.count(), Media.objects.count(), AuditEvent.objects.count())


def check_answer(response: Any, before: tuple[int, int, int, int]) -> None:
    assert response.status_code in (201, 400, 413, 415), (response.status_code, response.content[:300])
    body = response.json()
    assert isinstance(body, dict)
    if response.status_code == 201:
        assert set(body) == {"case_number", "pin", "status"}
        assert Report.objects.filter(case_number=body["case_number"]).exists()
        assert counts()[0] == before[0] + 1
        return
    assert isinstance(body.get("detail"), str) and body["detail"], body
    if "errors" in body:
        errors = body["errors"]
        assert isinstance(errors, dict) and errors
        assert all(isinstance(k, str) and isinstance(v, list) and all(isinstance(m, str) for m in v)
                   for k, v in errors.items()), errors
    else:  # only a body that could not be parsed at all has no field to name
        assert response.status_code != 400 or "parse error" in body["detail"], body
    assert counts() == before, "a refused request saved something"


@st.composite
def json_reports(draw: st.DrawFn) -> dict[str, Any]:
    """The valid notice with some fields replaced by arbitrary JSON, some removed, some added."""
    report = dict(VALID)
    for name in list(report):
        choice = draw(st.sampled_from(["keep", "keep", "replace", "drop"]))
        if choice == "replace":
            report[name] = draw(JSON_VALUE)
        elif choice == "drop":
            del report[name]
    for _ in range(draw(st.integers(0, 2))):
        report[draw(st.sampled_from(["files", "source", "context", "client_hashes", "pin", "status", "id"]))] = \
            draw(JSON_VALUE)
    return report


@pytest.mark.django_db
@FUZZ
@given(report=json_reports())
def test_the_report_api_answers_any_json_notice_with_201_or_a_4xx_in_one_shape(report: dict[str, Any]) -> None:
    before = counts()
    response = Client().post(API, data=json.dumps(report), content_type="application/json")
    check_answer(response, before)


def multipart_body(fields: list[tuple[str, str]], files: list[tuple[str, str, bytes]]) -> bytes:
    parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
             + value.encode("utf-8", "surrogatepass") + b"\r\n" for name, value in fields]
    parts += [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; filename="f.jpg"\r\n'
              f"Content-Type: image/jpeg\r\n\r\n".encode() + data + b"\r\n" for field, _name, data in files]
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


@st.composite
def multipart_reports(draw: st.DrawFn) -> tuple[list[tuple[str, str]], list[tuple[str, str, bytes]]]:
    fields: list[tuple[str, str]] = []
    for name, value in VALID.items():
        if name == "locations":
            value = draw(st.sampled_from([[], ["demo://content/3"], value]))
            fields += [("locations", v) for v in value]
            continue
        text = "true" if value is True else str(value)
        choice = draw(st.sampled_from(["keep", "keep", "replace", "drop", "twice"]))
        if choice == "keep":
            fields.append((name, text))
        elif choice == "replace":
            fields.append((name, draw(ODD_TEXT)))
        elif choice == "twice":
            fields += [(name, text), (name, draw(ODD_TEXT))]
    hostile = [item.data for item in corpus() if len(item.data) < 200_000]
    files = [("files", "f.jpg", draw(st.one_of(st.sampled_from(hostile), st.binary(max_size=300))))
             for _ in range(draw(st.integers(0, 3)))]
    return fields, files


@pytest.mark.django_db
@FUZZ
@given(report=multipart_reports())
def test_the_report_api_answers_any_multipart_notice_with_201_or_a_4xx_in_one_shape(
        report: tuple[list[tuple[str, str]], list[tuple[str, str, bytes]]]) -> None:
    fields, files = report
    before = counts()
    response = Client().post(API, data=multipart_body(fields, files),
                             content_type=f"multipart/form-data; boundary={BOUNDARY}")
    check_answer(response, before)


@pytest.mark.django_db
@settings(FUZZ, max_examples=max(EXAMPLES // 2, 10))
@given(body=st.one_of(st.binary(max_size=300), st.sampled_from([
           b"[" * 100_000, b'{"a":' * 50_000, b"\xef\xbb\xbf{}", b'{"reporter_name": "\\ud800"}', b"{}" * 1000,
           b'{"good_faith": NaN}', b'{"statement": 1e999}', b"null", b'"string"', b"[]"])),
       content_type=st.sampled_from(["application/json", "application/json; charset=latin-1", "text/plain",
                                     "application/x-www-form-urlencoded", "multipart/form-data",
                                     f"multipart/form-data; boundary={BOUNDARY}", "application/xml", ""]))
def test_the_report_api_answers_a_malformed_body_with_a_4xx_never_a_500(body: bytes, content_type: str) -> None:
    before = counts()
    response = Client().generic("POST", API, data=body, content_type=content_type)
    check_answer(response, before)


@pytest.mark.django_db
@settings(FUZZ, max_examples=max(EXAMPLES // 2, 10))
@given(fields=st.dictionaries(st.sampled_from(["reporter_name", "reporter_email", "relationship", "locations",
                                               "statement", "good_faith", "adult_confirmed", "signature",
                                               "ai_made", "first_seen", "other_places", "client_hashes"]),
                              ODD_TEXT, max_size=12),
       hashes=st.one_of(st.none(), JSON_VALUE.map(json.dumps), st.just("[" * 5000)))
def test_the_web_report_form_answers_any_fields_with_a_page_never_a_500(
        fields: dict[str, str], hashes: str | None) -> None:
    if hashes is not None:
        fields["client_hashes"] = hashes
    before = counts()
    data = {k: v.encode("utf-8", "surrogatepass").decode("utf-8", "replace") for k, v in fields.items()}
    response = Client().post(FORM, data=data)
    assert response.status_code in (200, 400), response.status_code
    if response.status_code == 400:
        assert counts() == before
