"""The error file of an import: the records it did not import, each with its line and the
reason, then the record's own columns. Written in UTF-8 with a byte-order mark and the file's
own delimiter, so a spreadsheet opens it as it is and, corrected, it imports again (the
``line`` and ``reason`` columns are not recognised as anything, so they are ignored)."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

ERROR_COLUMNS = ("line", "reason")


class ErrorFile:
    """The rejected records of a job, appended batch by batch and cut back on resume to the
    length its last committed batch recorded."""

    def __init__(self, path: Path, header: Sequence[str], delimiter: str, size: int) -> None:
        self.path = path
        self.delimiter = delimiter
        fresh = size == 0 or not path.exists()
        self._handle = open(path, "r+b" if path.exists() else "w+b")  # noqa: SIM115 - closed by close()
        os.chmod(path, 0o600)
        if fresh:
            self._handle.truncate(0)
            self._handle.write(b"\xef\xbb\xbf")
            self._write([[*ERROR_COLUMNS, *header]])
        else:
            self._handle.truncate(size)
            self._handle.seek(size)
        self._handle.flush()

    @property
    def size(self) -> int:
        return self._handle.tell()

    def _write(self, rows: Sequence[Sequence[str]]) -> None:
        text = io.StringIO()
        writer = csv.writer(text, delimiter=self.delimiter, lineterminator="\r\n")
        writer.writerows(rows)
        self._handle.write(text.getvalue().encode("utf-8"))

    def add(self, rows: Sequence[Sequence[str]]) -> None:
        if rows:
            self._write(rows)
            # Written out before the batch commits: a kill after the commit loses none.
            self._handle.flush()

    def cut(self, size: int) -> None:
        self._handle.truncate(size)
        self._handle.seek(size)
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()
