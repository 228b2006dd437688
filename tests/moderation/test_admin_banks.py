"""The console's hash-bank pages: the list with counts, settings, import from a file and export."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from hashing.banks import bank_add_entries, bank_withdraw_entries
from hashing.models import Bank, BankEntry
from moderation.models import AuditEvent
from moderation.services import admin_banks

pytestmark = pytest.mark.django_db

PDQ = "f" * 64


@pytest.fixture
def bank() -> Bank:
    bank = Bank.objects.create(name="known-items", kind=Bank.Kind.LOCAL)
    bank_add_entries(bank=bank, hashes=[("md5", "a" * 32), ("md5", "b" * 32), ("pdq", PDQ)], source="test")
    bank_withdraw_entries(bank=bank, hashes=[("md5", "b" * 32)])
    return bank


@pytest.fixture
def admin_client(admin_user: User, client: Client) -> Client:
    client.force_login(admin_user)
    return client


def _upload(name: str, text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/plain")


def test_the_list_shows_each_bank_with_its_entries_by_status_and_algorithm(bank: Bank, admin_client: Client) -> None:
    page = admin_client.get("/console/admin/banks")
    assert page.status_code == 200
    row = next(r for r in page.context["rows"] if r.bank.pk == bank.pk)
    assert row.counts == {"md5": {"active": 1, "withdrawn": 1}, "pdq": {"active": 1}}
    assert row.by_status == {"active": 2, "withdrawn": 1, "deleted": 0}
    html = page.content.decode()
    assert 'data-bank="known-items"' in html and "md5</span> 1 / 1 / 0" in html


def test_the_bank_list_costs_the_same_few_queries_for_many_banks(admin_client: Client,
                                                                  django_assert_max_num_queries: Any) -> None:
    for n in range(30):
        many = Bank.objects.create(name=f"bank-{n}")
        bank_add_entries(bank=many, hashes=[("md5", f"{n:032x}"), ("pdq", f"{n:064x}")], source="test")
    with django_assert_max_num_queries(8):  # session, user, permissions, banks, counts
        page = admin_client.get("/console/admin/banks")
    assert len(page.context["rows"]) == 30


def test_an_admin_turns_a_bank_off_and_sets_its_match_distances(bank: Bank, admin_client: Client) -> None:
    response = admin_client.post(f"/console/admin/banks/{bank.pk}/settings", {
        "blocks_uploads": "on", "on_stream_match": "case", "threshold_pdq": "20", "threshold_phash": ""})
    assert response.status_code == 302
    bank.refresh_from_db()
    assert (bank.enabled, bank.blocks_uploads, bank.thresholds) == (False, True, {"pdq": 20})
    event = AuditEvent.objects.get(action="bank.configured")
    assert event.before["enabled"] is True and event.after == {
        "enabled": False, "blocks_uploads": True, "thresholds": {"pdq": 20}, "on_stream_match": "case"}
    assert event.role == "admin"


def test_a_match_distance_out_of_range_is_refused_with_its_range(bank: Bank, admin_client: Client) -> None:
    response = admin_client.post(f"/console/admin/banks/{bank.pk}/settings", {
        "enabled": "on", "on_stream_match": "case", "threshold_pdq": "200"})
    assert response.status_code == 400
    assert "from 0 to 127" in response.content.decode()
    bank.refresh_from_db()
    assert bank.thresholds == {} and not AuditEvent.objects.filter(action="bank.configured").exists()


def test_the_blocking_policy_and_the_scanning_policy_are_saved(bank: Bank, admin_client: Client) -> None:
    admin_client.post(f"/console/admin/banks/{bank.pk}/settings", {"enabled": "on", "on_stream_match": "takedown"})
    bank.refresh_from_db()
    assert (bank.blocks_uploads, bank.on_stream_match) == (False, "takedown")


def test_saving_unchanged_settings_writes_no_audit_event(bank: Bank, admin_client: Client) -> None:
    admin_client.post(f"/console/admin/banks/{bank.pk}/settings",
                      {"enabled": "on", "blocks_uploads": "on", "on_stream_match": "case"})
    assert not AuditEvent.objects.filter(action="bank.configured").exists()


def test_an_import_adds_good_rows_and_names_the_bad_ones_by_line(bank: Bank, admin_client: Client) -> None:
    text = "\n".join([json.dumps({"algorithm": "md5", "value": "c" * 32}),
                      json.dumps({"algorithm": "md5", "value": "a" * 32}),  # already there
                      json.dumps({"algorithm": "sha256", "value": "short"}),
                      json.dumps({"algorithm": "md5", "value": "d" * 32, "status": "withdrawn"}),
                      "not json"]) + "\n"
    page = admin_client.post(f"/console/admin/banks/{bank.pk}/import", {"file": _upload("rows.jsonl", text)})
    assert page.status_code == 200
    outcome = page.context["outcome"]
    assert (outcome.added, outcome.unchanged, outcome.skipped, outcome.malformed) == (1, 1, 1, 2)
    assert outcome.errors[0].startswith("line 3: a sha256 value is 64 hex characters")
    assert outcome.errors[1].startswith("line 5: not JSON")
    assert BankEntry.objects.filter(bank=bank, value="c" * 32, source="import:rows.jsonl").exists()
    event = AuditEvent.objects.get(action="bank.imported")
    assert event.data == {"name": "known-items", "file": "rows.jsonl", "format": "jsonl", "added": 1,
                          "unchanged": 1, "skipped": 1, "malformed": 2, "via": "console"}
    assert 'data-count="added">1<' in page.content.decode()


def test_a_csv_import_reads_the_commands_columns(bank: Bank, admin_client: Client) -> None:
    text = f"algorithm,value,source\npdq,{'e' * 64},partner-file\n"
    page = admin_client.post(f"/console/admin/banks/{bank.pk}/import", {"file": _upload("hashes.csv", text)})
    assert page.context["outcome"].added == 1
    assert BankEntry.objects.get(bank=bank, value="e" * 64).source == "partner-file"


def test_a_csv_without_the_value_column_is_refused_and_nothing_is_imported(bank: Bank, admin_client: Client) -> None:
    before = BankEntry.objects.count()
    page = admin_client.post(f"/console/admin/banks/{bank.pk}/import",
                             {"file": _upload("hashes.csv", "algorithm,hash\nmd5,x\n")})
    assert page.status_code == 400
    assert "missing: value" in page.content.decode()
    assert BankEntry.objects.count() == before and not AuditEvent.objects.filter(action="bank.imported").exists()


def test_a_file_whose_format_cannot_be_told_asks_for_the_format(bank: Bank, admin_client: Client) -> None:
    page = admin_client.post(f"/console/admin/banks/{bank.pk}/import", {"file": _upload("hashes.txt", "x\n")})
    assert page.status_code == 400 and "choose JSON lines or CSV" in page.content.decode()
    chosen = admin_client.post(f"/console/admin/banks/{bank.pk}/import", {
        "file": _upload("hashes.txt", json.dumps({"algorithm": "md5", "value": "9" * 32}) + "\n"), "format": "jsonl"})
    assert chosen.context["outcome"].added == 1


def test_the_export_downloads_the_active_entries_as_the_command_writes_them(bank: Bank, admin_client: Client) -> None:
    response = admin_client.get(f"/console/admin/banks/{bank.pk}/export?format=csv")
    assert response["Content-Disposition"] == 'attachment; filename="known-items.csv"'
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert sorted((r["algorithm"], r["value"], r["status"]) for r in rows) == [
        ("md5", "a" * 32, "active"), ("pdq", PDQ, "active")]
    assert AuditEvent.objects.get(action="bank.exported").data["format"] == "csv"


def test_an_export_of_every_entry_includes_the_withdrawn_ones_as_json_lines(bank: Bank, admin_client: Client) -> None:
    response = admin_client.get(f"/console/admin/banks/{bank.pk}/export?format=jsonl&all=1")
    records = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert {r["status"] for r in records} == {"active", "withdrawn"} and len(records) == 3


def test_an_exported_file_imports_back_into_another_bank(bank: Bank, admin_client: Client) -> None:
    exported = b"".join(admin_client.get(f"/console/admin/banks/{bank.pk}/export?format=jsonl").streaming_content)
    copy = Bank.objects.create(name="copy")
    page = admin_client.post(f"/console/admin/banks/{copy.pk}/import",
                             {"file": SimpleUploadedFile("known-items.jsonl", exported)})
    assert page.context["outcome"].added == 2


def test_the_service_refuses_a_moderator_even_when_called_directly(bank: Bank, moderator: User) -> None:
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        admin_banks.bank_settings_save(user=moderator, bank_id=bank.pk, enabled=False, blocks_uploads=True,
                                       thresholds={}, on_stream_match="case")
    with pytest.raises(PermissionDenied):
        admin_banks.bank_import_file(user=moderator, bank_id=bank.pk, handle=io.StringIO(""), fmt="jsonl",
                                     filename="x.jsonl")


def test_an_unknown_bank_is_not_found(admin_client: Client) -> None:
    assert admin_client.get("/console/admin/banks/999999").status_code == 404
