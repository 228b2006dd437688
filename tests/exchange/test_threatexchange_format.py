"""Meta's ThreatExchange library reads our export (its local file exchange), and we import what it writes."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from threatexchange.exchanges.impl.file_api import FileCollaborationConfig, LocalFileSignalExchangeAPI
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal
from threatexchange.signal_type.sha256 import VideoSHA256Signal

from exchange.threatexchange_format import SIGNAL_TYPE_FOR_ALGORITHM, ParseResult, parse_lines
from hashing.algorithms import hash_bytes
from hashing.banks import ImportResult, bank_add_entries, bank_get_or_create, bank_import_entries, bank_withdraw_entries
from hashing.matching import match_hashes
from hashing.models import Bank, BankEntry

pytestmark = pytest.mark.django_db

PDQ_1 = hashlib.sha256(b"one").hexdigest()
PDQ_2 = hashlib.sha256(b"two").hexdigest()
PDQ_GONE = hashlib.sha256(b"gone").hexdigest()
MD5 = hashlib.md5(b"video").hexdigest()  # noqa: S324 - a test value
SHA256 = hashlib.sha256(b"video").hexdigest()


def import_lines(*, bank: Bank, lines: Iterable[str], source: str,
                 signal_type: str | None = None) -> tuple[ImportResult, ParseResult]:
    """Add a ThreatExchange file's hashes to ``bank`` (through ``hashing.banks``, so matchers see them)."""
    parsed = parse_lines(lines, signal_type=signal_type)
    return bank_import_entries(bank=bank, rows=parsed.rows, source=source), parsed


def library(path: Path) -> LocalFileSignalExchangeAPI:
    return LocalFileSignalExchangeAPI.for_collab(
        FileCollaborationConfig(name="takedown-export", api=LocalFileSignalExchangeAPI.get_name(),
                                enabled=True, filename=str(path)))


@pytest.fixture
def bank(db: Any) -> Bank:
    bank = bank_get_or_create(name="confirmed-takedowns")
    bank_add_entries(bank=bank, hashes=[("pdq", PDQ_1), ("md5", MD5), ("sha256", SHA256), ("pdq", PDQ_2),
                                        ("phash", "0f" * 8), ("pdq", PDQ_GONE)], source="case:TD-1")
    bank_withdraw_entries(bank=bank, hashes=[("pdq", PDQ_GONE)])
    return bank


def test_our_signal_type_names_are_the_librarys() -> None:
    assert SIGNAL_TYPE_FOR_ALGORITHM == {"pdq": PdqSignal.get_name(), "md5": VideoMD5Signal.get_name(),
                                         "sha256": VideoSHA256Signal.get_name()}


def test_the_librarys_file_exchange_reads_our_export_as_pdq_and_md5_signals(bank: Bank, tmp_path: Path) -> None:
    path = tmp_path / "confirmed.te"
    err = io.StringIO()
    call_command("exchange_export", "--format", "threatexchange", "--bank", bank.name, "--output", str(path),
                 stderr=err)
    api = library(path)

    deltas = list(api.fetch_iter([PdqSignal, VideoMD5Signal, VideoSHA256Signal], None))
    signals = api.naive_convert_to_signal_type([PdqSignal, VideoMD5Signal, VideoSHA256Signal], api.collab,
                                               deltas[0].updates)

    assert set(signals[PdqSignal]) == {PDQ_1, PDQ_2}  # the withdrawn one is not in the snapshot
    assert set(signals[VideoMD5Signal]) == {MD5}
    assert set(signals[VideoSHA256Signal]) == {SHA256}
    assert "Exported 4 entries of confirmed-takedowns as threatexchange; 1 of algorithms" in err.getvalue()


def test_we_import_the_signal_lines_the_librarys_hash_command_prints_and_uploads_then_match(
        tmp_path: Path, image_bytes: Callable[..., bytes]) -> None:
    # The library's own file writer (LocalFileSignalExchangeAPI.report_opinion) opens its file in mode
    # "wta", which Python refuses; its `threatexchange hash` command prints the same "<type> <hash>" lines.
    photo = tmp_path / "photo.png"
    photo.write_bytes(image_bytes(seed=3, fmt="PNG"))
    video = tmp_path / "clip.bin"
    video.write_bytes(b"not really a video, but the MD5 signal hashes bytes")
    lines: list[str] = []
    for kind, path in (("photo", photo), ("video", video)):
        done = subprocess.run([sys.executable, "-m", "threatexchange", "hash", kind, str(path)], capture_output=True,
                              text=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)}, check=True)
        lines += done.stdout.splitlines()
    lines.append("url https://example.org/page")
    lines.append("pdq nothex")
    target = bank_get_or_create(name="from-threatexchange")

    imported, parsed = import_lines(bank=target, lines=lines, source="threatexchange")

    printed = dict(line.split(" ", 1) for line in lines[:-2])
    assert set(printed) == {"pdq", "video_md5", "video_sha256"}
    assert set(BankEntry.objects.filter(bank=target).values_list("algorithm", "value")) == {
        ("pdq", printed["pdq"]), ("md5", printed["video_md5"]), ("sha256", printed["video_sha256"])}
    assert (imported.added, parsed.unsupported, parsed.errors) == (
        3, 1, [f"line {len(lines)}: a pdq hash is 64 hex characters; got 'nothex'"])
    # Our own hashing of the same photo finds the imported entry: the library's PDQ and ours agree.
    ours = hash_bytes(photo.read_bytes())
    assert [m.bank_name for m in match_hashes([("pdq", ours.pdq)])] == ["from-threatexchange"]


def test_a_one_type_file_without_type_names_imports_with_the_type_given(tmp_path: Path) -> None:
    target = bank_get_or_create(name="pdq-only")
    imported, parsed = import_lines(bank=target, lines=[PDQ_1.upper(), "", PDQ_2], source="file",
                                    signal_type="pdq")
    assert imported.added == 2 and parsed.errors == []
    assert set(BankEntry.objects.filter(bank=target).values_list("value", flat=True)) == {PDQ_1, PDQ_2}
