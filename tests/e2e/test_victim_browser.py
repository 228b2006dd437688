"""In Chromium: the person's own path — report, confirmation, status, withdrawal — and in-browser hashing,
whose PDQ must agree with the server's (hashing.pdq.pdq_hash) within 4 bits on the test images."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hashing.algorithms import hamming_hex
from hashing.decode import open_image
from hashing.models import BankEntry
from hashing.pdq import pdq_hash
from moderation.models import Report
from tests.conftest import make_image_bytes
from tests.e2e.test_browser import browser, page  # noqa: F401 - the shared Chromium fixtures

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHARED_PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "data" / "detection-eval" / "real"
MAX_BITS_APART = 4  # the bar for browser vs server PDQ


def _generated(tmp_path: Path) -> list[Path]:
    """Safe generated pictures in the formats people pick: JPEG and PNG, several sizes and aspect ratios."""
    paths = []
    for seed, size, fmt in [(1, (256, 192), "JPEG"), (2, (640, 480), "JPEG"), (3, (300, 900), "PNG"),
                            (4, (1024, 768), "PNG"), (5, (64, 64), "PNG"), (6, (1200, 333), "JPEG")]:
        path = tmp_path / f"generated-{seed}.{fmt.lower()}"
        path.write_bytes(make_image_bytes(seed, size=size, fmt=fmt))
        paths.append(path)
    return paths


def _hash_in_browser(tab: Any, paths: list[Path]) -> list[str]:
    from playwright.sync_api import expect

    tab.goto("/report/")
    tab.get_by_label("Choose images on this device (optional)").set_input_files([str(p) for p in paths])
    expect(tab.locator("#own-images")).to_have_attribute("data-hashed", str(len(paths)), timeout=60_000)
    return [tab.locator("#own-images-status li").nth(i).get_attribute("data-hash") for i in range(len(paths))]


def _server_pdq(path: Path) -> str:
    return pdq_hash(open_image(path.read_bytes()))[0]


@pytest.fixture
def watched_requests(page: Any) -> Iterator[list[Any]]:  # noqa: F811
    sent: list[Any] = []
    page.on("request", lambda request: sent.append(request))
    yield sent


def test_the_browser_pdq_agrees_with_the_server_within_4_bits_on_generated_images(
        page: Any, tmp_path: Path, watched_requests: list[Any]) -> None:  # noqa: F811
    paths = _generated(tmp_path)
    browser_hashes = _hash_in_browser(page, paths)
    distances = [hamming_hex(b or "", _server_pdq(p)) for b, p in zip(browser_hashes, paths, strict=True)]
    assert all(d <= MAX_BITS_APART for d in distances), distances
    # Nothing left the page while hashing: only the page itself, its own script and stylesheet were fetched.
    assert {r.url.split("?")[0].rsplit("/", 1)[-1] for r in watched_requests} <= {"", "pdq.js", "site.css"}


@pytest.mark.shared_data
def test_the_browser_pdq_agrees_with_the_server_within_4_bits_on_the_shared_photos(
        page: Any) -> None:  # noqa: F811
    paths = sorted(SHARED_PHOTOS.glob("*.jpg"))[:12]
    browser_hashes = _hash_in_browser(page, paths)
    distances = {p.name: hamming_hex(b or "", _server_pdq(p)) for b, p in zip(browser_hashes, paths, strict=True)}
    assert all(d <= MAX_BITS_APART for d in distances.values()), distances


def test_a_person_hashes_their_own_image_reports_follows_and_withdraws(
        page: Any, tmp_path: Path, watched_requests: list[Any]) -> None:  # noqa: F811
    from playwright.sync_api import expect

    image = tmp_path / "mine.jpg"
    image.write_bytes(make_image_bytes(77, size=(480, 360)))
    [browser_hash] = _hash_in_browser(page, [image])
    expect(page.get_by_text("Your images never leave this device.")).to_be_visible()
    for label, text in {"Your name": "Alex Example", "Your email address": "alex@example.org",
                        "Why should it be removed?": "An AI-made intimate image of me, shared without consent.",
                        "Signature: type your full name": "Alex Example"}.items():
        page.get_by_label(label, exact=True).fill(text)
    for label in ("I am the person depicted", "I believe in good faith", "The person shown is 18 or older."):
        page.get_by_label(label).check()
    page.get_by_role("radio", name="Yes").check()  # optional context: made with AI
    page.get_by_role("button", name="Send report").click()

    expect(page.get_by_role("heading", name="We have your report")).to_be_visible()
    expect(page.locator("#hashes-received")).to_be_visible()
    case_number = page.locator("#case-number").inner_text().strip()
    pin = page.locator("#pin").inner_text().strip()
    # Only the fingerprint was posted: the report request carried no file.
    posts = [r for r in watched_requests if r.method == "POST"]
    assert len(posts) == 1
    body = posts[0].post_data_buffer or b""
    assert browser_hash.encode() in body
    assert re.search(rb'filename="[^"]+"', body) is None  # the empty "attach" field is the only file part
    assert image.read_bytes()[:64] not in body
    report = Report.objects.get(case_number=case_number)
    assert report.context == {"ai_made": "yes"}
    entry = BankEntry.objects.get(source=f"case:{case_number}")
    assert entry.value == browser_hash and entry.status == BankEntry.Status.ACTIVE

    page.get_by_role("link", name="Check the case").click()
    page.get_by_label("Case number").fill(case_number)
    page.get_by_label("PIN").fill(pin)
    page.get_by_role("button", name="Show the case").click()
    expect(page.get_by_role("heading", name=re.compile(re.escape(case_number)))).to_be_visible()
    expect(page.locator("#deadline")).to_be_visible()
    withdraw = page.get_by_role("button", name="Withdraw")
    withdraw.click()  # without ticking the box: asked to confirm, nothing changes
    expect(page.locator("#withdraw .errors")).to_be_visible()
    assert BankEntry.objects.get(pk=entry.pk).status == BankEntry.Status.ACTIVE
    page.get_by_label("Yes, withdraw this case and its fingerprints").check()
    page.get_by_role("button", name="Withdraw").click()
    expect(page.locator("#withdrawn-notice")).to_be_visible()
    expect(page.locator("#case-status")).to_have_text("Withdrawn")
    assert BankEntry.objects.get(pk=entry.pk).status == BankEntry.Status.WITHDRAWN
    assert pin not in page.content()


def test_the_report_form_works_on_a_phone_sized_screen(browser: Any, live_server: Any) -> None:  # noqa: F811
    from playwright.sync_api import expect

    context = browser.new_context(base_url=live_server.url, viewport={"width": 360, "height": 740})
    try:
        phone = context.new_page()
        phone.goto("/report/")
        expect(phone.get_by_role("button", name="Send report")).to_be_visible()
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 360  # no sideways scrolling
    finally:
        context.close()
