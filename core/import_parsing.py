"""Parsing an import's records ahead of the writer: normalising emails and phones, checking
values and computing their keyed hashes (:mod:`kith.import_digests`) cost about as much CPU as
encrypting and storing them, so on a machine with a second core a large file's batches are
parsed in a worker process while the previous batch is being written (one writer, as the
database wants)."""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from kith.import_digests import DigestKeys, digest
from kith.import_rows import ContactRow, RowError, RowSpec, contact_row, interaction_row

Record = tuple[int, list[str]]
# Below this many records a worker process costs more to start than it saves.
POOL_MIN_RECORDS = 10_000


def parse_batch(
    kind: str, batch: Sequence[Record], spec: RowSpec, keys: DigestKeys | None = None
) -> list[Any]:
    """Each record as a parsed row, or ``(line, reason)`` when it does not parse; with
    ``keys``, each contact row with its digests (:mod:`kith.import_digests`)."""
    parse = contact_row if kind == "contacts" else interaction_row
    parsed: list[Any] = []
    # Name tokens of the batch's rows (names share prefixes: one keyed hash each).
    known: dict[tuple[str, str], int] = {}
    for line, cells in batch:
        try:
            row = parse(line, cells, spec)
        except RowError as exc:
            parsed.append((line, exc.reason))
            continue
        if keys is not None and isinstance(row, ContactRow):
            data = row.data
            row.digests = digest(
                data.kind, data.name, data.given_name, data.family_name, row.keys, keys, known
            )
        parsed.append(row)
    return parsed


def batches(records: Iterator[Record], size: int) -> Iterator[list[Record]]:
    while batch := list(itertools.islice(records, size)):
        yield batch


class BatchParser:
    """Batches of records with their parsed rows, the next batch parsed while the caller
    writes the current one (in a worker process when ``pooled``)."""

    def __init__(
        self, kind: str, spec: RowSpec, pooled: bool, keys: DigestKeys | None = None
    ) -> None:
        self.kind = kind
        self.spec = spec
        # Given to the worker with each batch, through the process pipe.
        self.keys = keys
        self._pool = (
            ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            if pooled and (os.cpu_count() or 1) > 1
            else None
        )

    def _submit(self, batch: list[Record]) -> asyncio.Future[list[Any]]:
        loop = asyncio.get_running_loop()
        if self._pool is None:
            done: asyncio.Future[list[Any]] = loop.create_future()
            done.set_result(parse_batch(self.kind, batch, self.spec, self.keys))
            return done
        return loop.run_in_executor(self._pool, parse_batch, self.kind, batch, self.spec, self.keys)

    async def parsed(
        self, records: Iterator[Record], size: int
    ) -> AsyncIterator[tuple[list[Record], list[Any]]]:
        chunks = batches(records, size)
        current = next(chunks, None)
        pending = self._submit(current) if current is not None else None
        while current is not None and pending is not None:
            following = next(chunks, None)
            ahead = self._submit(following) if following is not None else None
            yield current, await pending
            current, pending = following, ahead

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
