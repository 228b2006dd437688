"""Bank files in the shape Meta's ThreatExchange tooling reads: one ``<signal type> <value>`` per line.

That is the format of python-threatexchange's local file exchange (``threatexchange.exchanges.impl.
file_api.LocalFileSignalExchangeAPI``), which Hasher-Matcher-Actioner and the ``threatexchange`` CLI use
to load hashes from a file; signal type names are the library's ``SignalType.get_name()``. The tests
show the library reads what :func:`export_lines` writes and that :func:`parse_lines` reads what the
library writes (tests/exchange/test_threatexchange_format.py). This module does not import the library:
it is a test-only dependency.

The file has no statuses: an export holds the bank's active entries, a snapshot.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from hashing.banks import ImportRow
from hashing.models import Bank, BankEntry

# Our algorithm -> the library's signal type name (PdqSignal, VideoMD5Signal, VideoSHA256Signal). The
# library's only MD5 and SHA-256 signals are the video ones (hashes of the file), so exact hashes of
# images go out under those names too: an image's MD5 never equals a video's, so nothing mismatches.
SIGNAL_TYPE_FOR_ALGORITHM = {"pdq": "pdq", "md5": "video_md5", "sha256": "video_sha256"}
ALGORITHM_FOR_SIGNAL_TYPE = {name: algorithm for algorithm, name in SIGNAL_TYPE_FOR_ALGORITHM.items()}
_HEX_LENGTH = {"pdq": 64, "md5": 32, "sha256": 64}
_HEX = re.compile(r"[0-9a-f]+")


@dataclass
class ExportCounts:
    written: int = 0
    unsupported: int = 0  # active entries of algorithms ThreatExchange has no signal type for (pHash, dHash)


def export_lines(bank: Bank, counts: ExportCounts | None = None) -> Iterator[str]:
    """The bank's active entries as file lines (with ``\\n``), oldest first."""
    counts = counts if counts is not None else ExportCounts()
    entries = (BankEntry.objects.filter(bank=bank, status=BankEntry.Status.ACTIVE).order_by("id")
               .values_list("algorithm", "value").iterator(chunk_size=10_000))
    for algorithm, value in entries:
        name = SIGNAL_TYPE_FOR_ALGORITHM.get(algorithm)
        if name is None:
            counts.unsupported += 1
            continue
        counts.written += 1
        yield f"{name} {value}\n"


class LineError(ValueError):
    """A line that cannot be imported; the message says what to fix."""


@dataclass
class ParseResult:
    rows: list[ImportRow] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # "line N: what is wrong"
    unsupported: int = 0  # signal types we do not match (url, raw_text, trend_query, ...)


def parse_line(number: int, text: str, *, signal_type: str | None = None) -> ImportRow | None:
    """One line as an import row; None for a blank line or a signal type we do not match.

    ``signal_type`` is for files of one type without the type on each line (the library's
    ``FileCollaborationConfig.signal_type``). Raises :class:`LineError`.
    """
    line = text.strip()
    if not line:
        return None
    if signal_type is None:
        name, _, value = line.partition(" ")
    else:
        name, value = signal_type, line
    value = value.strip().lower()
    algorithm = ALGORITHM_FOR_SIGNAL_TYPE.get(name)
    if algorithm is None:
        if not value or not re.fullmatch(r"[a-z0-9_]+", name):
            raise LineError(f"expected '<signal type> <hash>', e.g. 'pdq <64 hex>'; got {line[:80]!r}")
        return None
    width = _HEX_LENGTH[algorithm]
    if len(value) != width or not _HEX.fullmatch(value):
        raise LineError(f"a {name} hash is {width} hex characters; got {value[:80]!r}")
    return ImportRow(line=number, algorithm=algorithm, value=value)


def parse_lines(lines: Iterable[str], *, signal_type: str | None = None) -> ParseResult:
    result = ParseResult()
    for number, text in enumerate(lines, start=1):
        try:
            row = parse_line(number, text, signal_type=signal_type)
        except LineError as exc:
            result.errors.append(f"line {number}: {exc}")
            continue
        if row is None:
            if text.strip():
                result.unsupported += 1
            continue
        result.rows.append(row)
    return result

