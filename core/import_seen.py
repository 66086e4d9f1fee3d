"""Digests of the emails and phones a dry run has seen so far, kept out of memory.

A dry run stores nothing in Kith, yet must tell a row that repeats an earlier row of the same
file. Keeping a digest of every value in a Python set costs about 100 bytes each, some 200 MB
at a million rows; a scratch SQLite database keeps them on disk with a bounded page cache, so a
dry run's memory stays flat whatever the size of the file. SQLite deletes an anonymous
database's file as soon as it is opened, so nothing is left behind, even by a killed run.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

# The scratch database's page cache, in KiB (SQLite's unit for a negative cache_size).
_CACHE_KIB = 8192
# SQLite's default limit on the parameters of one statement is 32,766; stay well under it.
_CHUNK = 900


class SeenDigests:
    """A set of 64-bit integers on disk: ``seen`` asks for many at once, ``add`` adds many."""

    def __init__(self) -> None:
        # "" opens a private temporary database on disk (":memory:" would hold it all in RAM).
        self._db = sqlite3.connect("", isolation_level=None)
        self._db.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute("CREATE TABLE seen (digest INTEGER PRIMARY KEY) WITHOUT ROWID")

    def seen(self, digests: Iterable[int]) -> set[int]:
        """The ones among ``digests`` added before."""
        wanted = list(set(digests))
        found: set[int] = set()
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT digest FROM seen WHERE digest IN ({marks})", chunk)
            found.update(row[0] for row in rows)
        return found

    def add(self, digests: Iterable[int]) -> None:
        self._db.executemany(
            "INSERT OR IGNORE INTO seen (digest) VALUES (?)", ((d,) for d in digests)
        )

    def close(self) -> None:
        self._db.close()
