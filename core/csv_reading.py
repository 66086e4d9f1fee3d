"""Reading CSV files as spreadsheets and other CRMs write them: the encoding detected (UTF-8
with or without a byte-order mark, windows-1251 and what charset-normalizer recognises), the
delimiter sniffed among ``,`` ``;`` and tab, and the records streamed one at a time with the
line each starts on, so a file of any size is read in flat memory."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import charset_normalizer

DELIMITERS = (",", ";", "\t")
# Enough of the file to tell its encoding and delimiter; the full pass that counts the records
# checks the encoding against every byte.
SAMPLE_BYTES = 1 << 20
# A CSV cell holding a whole letter or note; the csv module's default (128 KiB) refuses more.
FIELD_LIMIT = 1 << 20
# What a file that is not UTF-8 most likely is, in the market of 1C and Mango (and what
# charset-normalizer is asked to confirm).
LEGACY_ENCODING = "cp1251"

CYRILLIC_ENCODINGS = ["cp1251", "koi8_r", "cp866", "mac_cyrillic", "iso8859_5"]
_CYRILLIC_WORD = re.compile("[\u0400-\u04ff]{2,}")

csv.field_size_limit(FIELD_LIMIT)


class CsvError(ValueError):
    """A file that cannot be read as CSV: the message says why, for a person."""


@dataclass(frozen=True)
class CsvFormat:
    encoding: str
    delimiter: str


@dataclass(frozen=True)
class FileFacts:
    """What an import records about its file before it starts."""

    fingerprint: str
    size: int
    format: CsvFormat
    header: list[str]
    records: int


def detect_encoding(sample: bytes) -> str:
    """The encoding of a file starting with ``sample``: UTF-8 (``utf-8-sig`` with a BOM) when
    it decodes as such, UTF-16 with a BOM, otherwise charset-normalizer's best guess,
    windows-1251 when it has none. Raises :class:`CsvError` for a file that is not text."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    # Excel's "Unicode text": UTF-16 with a byte-order mark (the codec reads the mark).
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    nuls = sample.count(0)
    # A stray NUL makes a row invalid (see kith.import_rows); many make a file binary.
    if nuls > 2 and nuls * 100 > len(sample):
        raise CsvError("the file is not text (it holds NUL bytes): export it as CSV")
    try:
        # Incremental, so a character cut at the end of the sample is not an error.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    # charset-normalizer alone reads short or repetitive Russian exports as Central European
    # encodings; text whose non-ASCII characters form Cyrillic words is weighed among the
    # Cyrillic encodings only.
    isolation = CYRILLIC_ENCODINGS if _cyrillic_words(sample) else None
    best = charset_normalizer.from_bytes(sample, cp_isolation=isolation).best()
    if best is None:
        return LEGACY_ENCODING
    return codecs.lookup(best.encoding).name


def _cyrillic_words(sample: bytes) -> bool:
    """Whether most non-ASCII bytes, read as windows-1251 (where KOI8-R's letters are
    Cyrillic letters too), are letters of words of two or more: Latin-1 accents stand alone
    between ASCII letters."""
    text = sample.decode(LEGACY_ENCODING, errors="replace")
    non_ascii = sum(1 for ch in text if ord(ch) > 127)
    in_words = sum(len(word) for word in _CYRILLIC_WORD.findall(text))
    return non_ascii > 0 and in_words >= 0.8 * non_ascii


def sniff_delimiter(text: str) -> str:
    """``,``, ``;`` or tab, whichever separates the columns of the sample's first lines."""
    lines = text.splitlines()[:50]
    if not lines:
        raise CsvError("the file is empty")
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        # One column, or a sample the sniffer cannot decide on: the header's most frequent
        # delimiter (a comma when it holds none).
        counts = {d: lines[0].count(d) for d in DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","


def _open_text(path: Path, encoding: str) -> io.TextIOWrapper:
    # newline="" lets the csv module see line breaks inside quoted cells.
    return open(path, encoding=encoding, errors="strict", newline="")


def records(path: Path, fmt: CsvFormat, skip: int = 0) -> Iterator[tuple[int, list[str]]]:
    """Each data record after the header, with the file line it starts on, skipping the first
    ``skip`` (those an interrupted import committed). Blank lines are not records."""
    with _open_text(path, fmt.encoding) as handle:
        reader = csv.reader(handle, delimiter=fmt.delimiter)
        next(reader, None)
        line = reader.line_num
        seen = 0
        for row in reader:
            start, line = line + 1, reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            seen += 1
            if seen > skip:
                yield start, row


def header(path: Path, fmt: CsvFormat) -> list[str]:
    with _open_text(path, fmt.encoding) as handle:
        row = next(csv.reader(handle, delimiter=fmt.delimiter), None)
    if row is None:
        raise CsvError("the file is empty")
    return [cell.strip() for cell in row]


def inspect(path: Path, encoding: str | None = None, delimiter: str | None = None) -> FileFacts:
    """Fingerprint, size, format, header and number of data records of a CSV file, in one
    streaming pass (two when a file that looked like UTF-8 turns out not to be)."""
    with open(path, "rb") as handle:
        sample = handle.read(SAMPLE_BYTES)
    if not sample.strip():
        raise CsvError("the file is empty")
    chosen = encoding or detect_encoding(sample)
    try:
        codecs.lookup(chosen)
    except LookupError:
        raise CsvError(f"{chosen!r} is not an encoding Python knows") from None
    try:
        text = sample.decode(chosen, errors="ignore")
        if delimiter is not None and delimiter not in DELIMITERS:
            raise CsvError("the delimiter must be a comma, a semicolon or a tab")
        fmt = CsvFormat(chosen, delimiter or sniff_delimiter(text))
        return FileFacts(fingerprint(path), path.stat().st_size, fmt, *_count(path, fmt))
    except UnicodeDecodeError:
        if encoding is not None or chosen not in ("utf-8", "utf-8-sig"):
            raise CsvError(
                f"the file is not valid {chosen} text; name its encoding (for example "
                f"{LEGACY_ENCODING} or utf-8)"
            ) from None
        # Plain ASCII at the start, another encoding further on.
        return inspect(path, LEGACY_ENCODING, delimiter)
    except csv.Error as exc:
        raise CsvError(f"the file is not valid CSV: {exc}") from None


def _count(path: Path, fmt: CsvFormat) -> tuple[list[str], int]:
    names = header(path, fmt)
    if not any(names):
        raise CsvError("the first line must name the columns")
    return names, sum(1 for _ in records(path, fmt))


def fingerprint(path: Path) -> str:
    """SHA-256 of the file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
