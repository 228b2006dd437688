"""The console's admin pages in a real browser: an admin imports a file of hashes into a bank, reads the counts,
and downloads the bank again. A screenshot is kept under var/test-artifacts/.

Playwright's sync API drives Debian's Chromium, with the fixtures of test_console_browser.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from hashing.models import Bank, BankEntry
from moderation.models import AuditEvent
from tests.e2e.test_console_browser import browser, log_in, new_page, shot  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_imports_a_file_of_hashes_into_a_bank_and_downloads_it_again(
        new_page: Any, admin_user: User, tmp_path: Path) -> None:  # noqa: F811 - the fixture imported above
    from playwright.sync_api import expect

    bank = Bank.objects.create(name="known-items")
    rows = [{"algorithm": "md5", "value": f"{n:032x}"} for n in range(1, 4)]
    rows.append({"algorithm": "pdq", "value": "not-a-hash"})
    upload = tmp_path / "known.jsonl"
    upload.write_text("".join(json.dumps(r) + "\n" for r in rows))

    page = new_page()
    log_in(page, admin_user)
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Admin").click()
    page.get_by_role("link", name="Hash banks").first.click()
    expect(page.get_by_role("heading", name="Hash banks")).to_be_visible()
    page.get_by_role("link", name="known-items").click()
    page.get_by_label("File of hashes").set_input_files(str(upload))
    page.get_by_role("button", name="Import").click()

    result = page.locator("#import-result")
    expect(result).to_contain_text("3 added")
    expect(result).to_contain_text("1 malformed")
    expect(page.locator("#import-errors")).to_contain_text("line 4: a pdq value is 64 hex characters")
    expect(page.locator('#bank-counts tr[data-algorithm="md5"]')).to_contain_text("3")
    shot(page, "admin-bank-import")
    assert BankEntry.objects.filter(bank=bank, source="import:known.jsonl").count() == 3
    assert AuditEvent.objects.get(action="bank.imported").data["added"] == 3

    with page.expect_download() as download:
        page.get_by_role("link", name="Export active entries (JSON lines)").click()
    exported = Path(download.value.path()).read_text().splitlines()
    assert sorted(json.loads(line)["value"] for line in exported) == [r["value"] for r in rows[:3]]
