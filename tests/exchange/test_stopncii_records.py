"""The StopNCII hash record shape: reading, writing, and the export / import commands."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from exchange.entries import case_ref_for, feedback_record
from exchange.partners import partner_create
from exchange.stopncii.records import CaseStatus, FeedbackValue, HashRecord, RecordError, SignalType
from hashing.banks import bank_add_entries, bank_get_or_create, bank_withdraw_entries
from hashing.models import Bank, BankEntry

pytestmark = pytest.mark.django_db

FIELDS = {"signalType", "hashValue", "hashStatus", "caseNumbers", "lastModtimestamp", "CSPFeedbacks"}
# A record as python-threatexchange's tests show the live API sending one.
LIVE = {"lastModtimestamp": 1625175071, "hashValue": "9def0b7dafa86a1c90f2abd78e79ceb25ec3d1a4b3d4bc7a4354baf7717ea038",
        "hashStatus": "Active", "caseNumbers": {"cc592711-7068-442f-b5d2-24d50d389751": "Active"},
        "signalType": "ImagePDQ", "hashRegions": ["UK"],
        "CSPFeedbacks": [{"source": "Facebook", "feedbackValue": "Blocked", "tags": ["Nude", "Objectionable"]}]}


def pdq(n: int) -> str:
    return hashlib.sha256(f"pdq-{n}".encode()).hexdigest()


def md5(n: int) -> str:
    return hashlib.md5(f"md5-{n}".encode()).hexdigest()  # noqa: S324 - a test value


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_a_live_record_reads_into_typed_fields_and_writes_back_with_the_documented_names() -> None:
    record = HashRecord.from_json(LIVE)

    assert (record.signal_type, record.status, record.algorithm) == (SignalType.IMAGE_PDQ, CaseStatus.ACTIVE, "pdq")
    assert record.case_numbers == {"cc592711-7068-442f-b5d2-24d50d389751": CaseStatus.ACTIVE}
    assert record.feedbacks[0].source == "Facebook" and record.feedbacks[0].tags == ("Nude", "Objectionable")
    written = record.to_json()
    assert set(written) == FIELDS
    assert written == {k: v for k, v in LIVE.items() if k != "hashRegions"}


def test_an_empty_case_list_reads_as_no_cases() -> None:
    assert HashRecord.from_json({**LIVE, "caseNumbers": []}).case_numbers == {}


@pytest.mark.parametrize(("change", "message"), [
    ({"hashStatus": None}, "hashStatus must be one of Unknown, Received, Active, Withdrawn, Deleted"),
    ({"signalType": "PDQ"}, "signalType must be one of Unknown, ImagePDQ"),
    ({"lastModtimestamp": "yesterday"}, "lastModtimestamp must be a whole number"),
    ({"lastModtimestamp": True}, "lastModtimestamp must be a whole number"),
    ({"caseNumbers": ["a"]}, "caseNumbers must be an object"),
    ({"caseNumbers": {"a": "Open"}}, "caseNumbers['a'] must be one of"),
    ({"CSPFeedbacks": [{"tags": []}]}, "CSPFeedbacks[0].feedbackValue is missing"),
    ({"CSPFeedbacks": [{"feedbackValue": "Blocked", "tags": "Nude"}]}, "CSPFeedbacks[0].tags must be a list"),
    ({"hashValue": ""}, "hashValue must be a non-empty string"),
])
def test_a_record_with_a_wrong_field_is_refused_naming_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(RecordError) as error:
        HashRecord.from_json({**LIVE, **change})
    assert message in str(error.value)


def test_a_feedback_value_outside_the_enum_keeps_the_record_and_reads_as_unknown() -> None:
    record = HashRecord.from_json({**LIVE, "CSPFeedbacks": [{"source": "TikTok", "feedbackValue": "Undefined"}]})
    assert record.hash_value == LIVE["hashValue"]
    assert record.feedbacks[0].value == FeedbackValue.UNKNOWN


def test_a_record_missing_fields_names_them() -> None:
    with pytest.raises(RecordError, match="missing fields: hashValue, hashStatus"):
        HashRecord.from_json({"signalType": "ImagePDQ", "lastModtimestamp": 1})


@pytest.fixture
def confirmed(db: Any) -> Bank:
    bank = bank_get_or_create(name="confirmed-takedowns")
    bank_add_entries(bank=bank, hashes=[("pdq", pdq(1)), ("md5", md5(1)), ("pdq", pdq(2)), ("dhash", "0f" * 8)],
                     source="case:TD-2026-0001")
    bank_withdraw_entries(bank=bank, hashes=[("pdq", pdq(2))])
    return bank


def test_export_writes_one_documented_record_per_line_without_our_case_numbers(confirmed: Bank, tmp_path: Path) -> None:
    partner = partner_create(name="northwind", organisation="Northwind Social")
    entry = BankEntry.objects.get(value=pdq(1))
    feedback_record(entry=entry, partner=partner, verdict="not_blocked", tags=["reviewed"])
    feedback_record(entry=entry, partner=None, verdict="blocked")
    output = tmp_path / "out.jsonl"

    _, err = run("exchange_export", "--format", "stopncii", "--bank", confirmed.name, "--output", str(output))

    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert [(r["signalType"], r["hashValue"], r["hashStatus"]) for r in lines] == [
        ("ImagePDQ", pdq(1), "Active"), ("VideoMD5", md5(1), "Active")]
    assert all(set(r) == FIELDS for r in lines)
    assert lines[0]["caseNumbers"] == {case_ref_for("case:TD-2026-0001"): "Active"}
    assert "TD-2026" not in output.read_text()
    assert lines[0]["CSPFeedbacks"] == [
        {"feedbackValue": "NotBlocked", "tags": ["reviewed"], "source": "northwind"},
        {"feedbackValue": "Blocked", "tags": [], "source": "127.0.0.1"}]
    assert "Exported 2 entries of confirmed-takedowns as stopncii; 1 of algorithms" in err


def test_export_all_includes_withdrawn_entries_with_their_status(confirmed: Bank) -> None:
    out, _ = run("exchange_export", "--format", "stopncii", "--bank", confirmed.name, "--all")
    statuses = {json.loads(line)["hashValue"]: json.loads(line)["hashStatus"] for line in out.splitlines()}
    assert statuses == {pdq(1): "Active", md5(1): "Active", pdq(2): "Withdrawn"}


def test_export_of_an_unknown_bank_names_the_banks_there_are(confirmed: Bank) -> None:
    with pytest.raises(CommandError, match="no bank named 'nope' \\(banks: confirmed-takedowns\\)"):
        run("exchange_export", "--format", "stopncii", "--bank", "nope")


def test_what_we_export_imports_into_another_bank_unchanged(confirmed: Bank, tmp_path: Path) -> None:
    output = tmp_path / "out.jsonl"
    run("exchange_export", "--format", "stopncii", "--bank", confirmed.name, "--all", "--output", str(output))

    out, _ = run("stopncii", "import", str(output), "--bank", "copy")

    copy = Bank.objects.get(name="copy")
    assert set(BankEntry.objects.filter(bank=copy, status="active").values_list("algorithm", "value")) == {
        ("pdq", pdq(1)), ("md5", md5(1))}
    assert "2 added" in out and "0 malformed" in out


def test_import_reports_malformed_lines_by_number_and_imports_the_rest(tmp_path: Path) -> None:
    existing = bank_get_or_create(name="stopncii")
    bank_add_entries(bank=existing, hashes=[("pdq", pdq(7))], source="stopncii")
    rows = [json.dumps({**LIVE, "hashValue": pdq(1)}), "{not json", json.dumps({**LIVE, "hashValue": pdq(2)}),
            json.dumps({**LIVE, "hashValue": "abc"}), "", json.dumps({**LIVE, "signalType": "Text", "hashValue": "hi"}),
            json.dumps({**LIVE, "hashValue": pdq(7), "hashStatus": "Withdrawn"}),
            json.dumps({**LIVE, "hashValue": md5(3), "signalType": "VideoMD5", "hashStatus": "Bogus"})]
    path = tmp_path / "stopncii.jsonl"
    path.write_text("\n".join(rows) + "\n")

    out, err = run("stopncii", "import", str(path))

    assert err.splitlines() == [
        "line 2: not JSON: Expecting property name enclosed in double quotes",
        "line 4: hashValue of a ImagePDQ record is 64 hex characters; got 'abc'",
        "line 8: hashStatus must be one of Unknown, Received, Active, Withdrawn, Deleted; got 'Bogus'",
    ]
    statuses = dict(BankEntry.objects.filter(bank=existing).values_list("value", "status"))
    assert statuses == {pdq(1): "active", pdq(2): "active", pdq(7): "withdrawn"}
    assert "2 added, 0 already there, 1 withdrawn or deleted, 1 of signal types we do not match" in out


def test_import_reads_a_fetchhashes_answer_saved_as_one_json_document(tmp_path: Path) -> None:
    page = {"count": 2, "nextPageToken": None, "nextSetTimestamp": 1, "hasMoreRecords": False,
            "hashRecords": [{**LIVE, "hashValue": pdq(1)}, {**LIVE, "hashValue": pdq(2), "hashStatus": "Nope"}]}
    path = tmp_path / "page.json"
    path.write_text(json.dumps(page, indent=2))

    _, err = run("stopncii", "import", str(path), "--bank", "saved")

    assert err.startswith("record 1: hashStatus must be one of")
    assert list(BankEntry.objects.filter(bank__name="saved").values_list("value", flat=True)) == [pdq(1)]


def test_metas_reference_client_parses_the_records_we_export(confirmed: Bank) -> None:
    import enum

    import dacite
    from threatexchange.exchanges.clients.stopncii import api as reference

    out, _ = run("exchange_export", "--format", "stopncii", "--bank", confirmed.name, "--all")
    page = {"count": 3, "nextPageToken": "", "nextSetTimestamp": 1, "hasMoreRecords": False,
            "hashRecords": [json.loads(line) for line in out.splitlines()]}

    parsed = dacite.from_dict(reference.FetchHashesResponse, page, config=dacite.Config(cast=[enum.Enum, set]))

    assert [(r.signalType, r.hashValue, r.hashStatus) for r in parsed.hashRecords] == [
        (reference.StopNCIISignalType.ImagePDQ, pdq(1), reference.StopNCIICaseStatus.Active),
        (reference.StopNCIISignalType.VideoMD5, md5(1), reference.StopNCIICaseStatus.Active),
        (reference.StopNCIISignalType.ImagePDQ, pdq(2), reference.StopNCIICaseStatus.Withdrawn)]
