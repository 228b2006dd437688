"""manage.py bank list|export|import|configure and manage.py match."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from hashing.banks import ImportRow, bank_add_entries, bank_get_or_create, bank_import_entries
from hashing.models import Bank, BankChange, BankEntry
from tests.conftest import AS_ADMIN

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("admin_user")]


def pdq(seed: int) -> str:
    return f"{random.Random(seed).getrandbits(256):064x}"


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_import_reports_malformed_rows_by_line_number_and_imports_the_rest(tmp_path: Path) -> None:
    bank_get_or_create(name="partner-x")
    lines = [
        json.dumps({"algorithm": "pdq", "value": pdq(1)}),
        "not json at all",
        json.dumps({"algorithm": "pdq", "value": "abc"}),
        "",
        json.dumps({"algorithm": "sha1", "value": "0" * 40}),
        json.dumps({"algorithm": "md5", "value": "F" * 32, "source": "partner:x"}),
        json.dumps({"algorithm": "pdq", "value": pdq(2), "status": "withdrawn"}),
    ]
    path = tmp_path / "bank.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out, err = run("bank", "import", *AS_ADMIN, "partner-x", str(path))
    assert "line 2: not JSON" in err
    assert "line 3: a pdq value is 64 hex characters" in err
    assert "line 5: unknown algorithm 'sha1'" in err
    assert "line 1" not in err and "line 6" not in err
    assert "2 added, 0 already there, 1 not active (skipped), 3 malformed" in out
    entries = dict(BankEntry.objects.filter(bank__name="partner-x").values_list("value", "source"))
    assert entries == {pdq(1): "import:bank.jsonl", "f" * 32: "partner:x"}
    assert BankChange.objects.filter(entry_id__in=BankEntry.objects.values("id")).count() == 2

    out, _ = run("bank", "import", *AS_ADMIN, "partner-x", str(path))  # again: nothing new
    assert "0 added, 2 already there" in out


def test_csv_export_and_import_round_trip_between_banks(tmp_path: Path) -> None:
    bank = bank_get_or_create(name="ours")
    bank_add_entries(bank=bank, hashes=[("pdq", pdq(3)), ("phash", "0123456789abcdef")], source="case:TD-9")
    path = tmp_path / "ours.csv"
    run("bank", "export", "ours", "--format", "csv", "--output", str(path))
    rows = list(csv.DictReader(path.open()))
    assert [(r["algorithm"], r["value"], r["status"], r["source"]) for r in rows] == [
        ("pdq", pdq(3), "active", "case:TD-9"), ("phash", "0123456789abcdef", "active", "case:TD-9")]
    out, _ = run("bank", "import", *AS_ADMIN, "copy", str(path), "--create", "--kind", "partner")
    assert "2 added" in out
    assert Bank.objects.get(name="copy").kind == "partner"
    assert sorted(BankEntry.objects.filter(bank__name="copy").values_list("algorithm", flat=True)) == ["pdq", "phash"]


def test_export_leaves_out_withdrawn_entries_unless_asked() -> None:
    bank = bank_get_or_create(name="ours")
    bank_add_entries(bank=bank, hashes=[("md5", "1" * 32), ("md5", "2" * 32)], source="t")
    BankEntry.objects.filter(value="2" * 32).update(status=BankEntry.Status.WITHDRAWN)
    out, _ = run("bank", "export", "ours")
    assert [json.loads(line)["value"] for line in out.splitlines()] == ["1" * 32]
    out, _ = run("bank", "export", "ours", "--all")
    assert [json.loads(line)["status"] for line in out.splitlines()] == ["active", "withdrawn"]


def test_a_big_import_shows_a_progress_bar_and_commits_in_batches(tmp_path: Path) -> None:
    bank_get_or_create(name="big")
    path = tmp_path / "big.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["algorithm", "value"])
        for i in range(1200):
            writer.writerow(["pdq", pdq(1000 + i)])
    _, err = run("bank", "import", *AS_ADMIN, "big", str(path), "--progress")
    assert "importing into big" in err and "100%" in err
    assert BankEntry.objects.filter(bank__name="big").count() == 1200


def test_import_service_reactivates_withdrawn_entries_in_batches() -> None:
    bank = bank_get_or_create(name="ours")
    bank_add_entries(bank=bank, hashes=[("pdq", pdq(4))], source="t")
    BankEntry.objects.update(status=BankEntry.Status.WITHDRAWN)
    rows = [ImportRow(line=i, algorithm="pdq", value=pdq(4 + i)) for i in range(5)]
    result = bank_import_entries(bank=bank, rows=rows, source="import:x", batch_rows=2)
    assert (result.added, result.unchanged) == (5, 0)
    assert BankEntry.objects.filter(status=BankEntry.Status.ACTIVE).count() == 5


def test_import_into_a_missing_bank_says_how_to_create_it(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text("")
    with pytest.raises(CommandError, match="no bank named 'nope'"):
        run("bank", "import", *AS_ADMIN, "nope", str(path))
    with pytest.raises(CommandError, match="--format"):
        run("bank", "import", *AS_ADMIN, "nope", str(tmp_path / "x.txt"), "--create")


def test_list_shows_each_bank_with_its_counts() -> None:
    bank = bank_get_or_create(name="ours")
    bank_add_entries(bank=bank, hashes=[("md5", "1" * 32), ("md5", "2" * 32)], source="t")
    BankEntry.objects.filter(value="2" * 32).update(status=BankEntry.Status.WITHDRAWN)
    out, _ = run("bank", "list", "--json")
    assert json.loads(out.splitlines()[0]) == {
        "name": "ours", "kind": "local", "enabled": True, "blocks_uploads": True, "active_entries": 1,
        "inactive_entries": 1, "thresholds": {}, "on_stream_match": "case"}


def test_configure_sets_a_banks_thresholds_and_enables_or_disables_it() -> None:
    bank = bank_get_or_create(name="partner-y")
    out, _ = run("bank", "configure", *AS_ADMIN, "partner-y", "--threshold", "pdq=24", "--threshold", "PHash=8",
                 "--disable")
    assert out.strip() == "partner-y: disabled, thresholds: pdq=24, phash=8"
    bank.refresh_from_db()
    assert bank.thresholds == {"pdq": 24, "phash": 8} and not bank.enabled

    out, _ = run("bank", "configure", *AS_ADMIN, "partner-y", "--threshold", "pdq=10")  # replaces, keeps the state
    assert out.strip() == "partner-y: disabled, thresholds: pdq=10"
    out, _ = run("bank", "configure", *AS_ADMIN, "partner-y", "--enable", "--default-thresholds")
    assert out.strip() == "partner-y: enabled, thresholds: defaults"
    bank.refresh_from_db()
    assert bank.thresholds == {} and bank.enabled


def test_configure_refuses_unusable_thresholds_and_changes_nothing() -> None:
    bank_get_or_create(name="partner-z")
    for args, message in [
        (["--threshold", "md5=1"], "perceptual hashes .* not 'md5'"),
        (["--threshold", "pdq=128"], "from 0 to 127"),
        (["--threshold", "pdq"], "ALGORITHM=DISTANCE"),
        (["--threshold", "pdq=-1"], "ALGORITHM=DISTANCE"),
        ([], "Nothing to change"),
    ]:
        with pytest.raises(CommandError, match=message):
            run("bank", "configure", *AS_ADMIN, "partner-z", *args)
    bank = Bank.objects.get(name="partner-z")
    assert bank.thresholds == {} and bank.enabled
    with pytest.raises(CommandError, match="no bank named 'nope'"):
        run("bank", "configure", *AS_ADMIN, "nope", "--disable")


def test_match_prints_each_files_matches_as_a_json_line(tmp_path: Path) -> None:
    from hashing.algorithms import hash_file
    from tests.conftest import make_image_bytes

    known, other = tmp_path / "known.jpg", tmp_path / "other.jpg"
    known.write_bytes(make_image_bytes(seed=1))
    other.write_bytes(make_image_bytes(seed=2))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    bank = bank_get_or_create(name="known")
    bank_add_entries(bank=bank, hashes=[("pdq", hash_file(known).pdq)], source="test")
    out, _ = run("match", str(known), str(other), str(broken))
    lines = [json.loads(line) for line in out.splitlines()]
    assert [m["bank"] for m in lines[0]["matches"]] == ["known"] and lines[0]["matches"][0]["distance"] == 0
    assert lines[1] == {"path": str(other), "matches": []}
    assert lines[2]["path"] == str(broken) and "error" in lines[2]
