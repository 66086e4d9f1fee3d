"""Files encrypted in chunks: AES-256-GCM over 64 KiB pieces, written and read as streams.

A sealed file is the caller's header (stored in clear, and authenticated with every chunk)
followed by the chunks. Chunk ``i`` of plaintext (64 KiB, the last one shorter, possibly empty)
is stored as its ciphertext and 16-byte tag, under the nonce ``i`` (8 bytes, big-endian), three
zero bytes and a last-chunk flag. The key is used for one file only, so counter nonces never
repeat; the flag and the index make a reordered, dropped or truncated chunk fail to
authenticate (the STREAM construction). Memory stays flat whatever the file's size.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import IO

from cryptography.exceptions import InvalidTag
from kith.privacy.encryption.primitives import TAG_BYTES, aes_gcm

CHUNK_BYTES = 64 * 1024
_MAX_CHUNKS = 1 << 64


class SealedFileError(ValueError):
    """A sealed file that does not decrypt: changed, cut short, or under another key."""


def _nonce(index: int, last: bool) -> bytes:
    if index >= _MAX_CHUNKS:  # pragma: no cover - 2^64 chunks of 64 KiB
        raise SealedFileError("a sealed file cannot be that large")
    return index.to_bytes(8, "big") + b"\x00\x00\x00" + (b"\x01" if last else b"\x00")


class SealedWriter(io.RawIOBase):
    """A write-only, unseekable binary file that encrypts what is written into ``sink``.

    :meth:`close` seals the last chunk; a file whose writer was never closed does not open."""

    def __init__(self, sink: IO[bytes], key: bytes, header: bytes) -> None:
        super().__init__()
        self._sink = sink
        self._cipher = aes_gcm(key)
        self._header = header
        self._buffer = bytearray()
        self._index = 0
        self._written = 0
        sink.write(header)

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        """How many plaintext bytes were written (what a ZIP writer counts offsets in)."""
        return self._written

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        if self.closed:
            raise ValueError("write to a closed sealed file")
        view = memoryview(data).cast("B")
        self._buffer += view
        self._written += len(view)
        while len(self._buffer) > CHUNK_BYTES:
            self._seal(bytes(self._buffer[:CHUNK_BYTES]), last=False)
            del self._buffer[:CHUNK_BYTES]
        return len(view)

    def _seal(self, chunk: bytes, *, last: bool) -> None:
        self._sink.write(self._cipher.encrypt(_nonce(self._index, last), chunk, self._header))
        self._index += 1

    def close(self) -> None:
        if not self.closed:
            # The last chunk is the one flagged: at most CHUNK_BYTES, possibly empty.
            self._seal(bytes(self._buffer), last=True)
            self._buffer.clear()
            self._sink.flush()
        super().close()


def read_sealed(source: IO[bytes], key: bytes, header: bytes) -> Iterator[bytes]:
    """The plaintext of a sealed file whose ``header`` was already read from ``source``, chunk
    by chunk; raises :class:`SealedFileError` at the first chunk that does not authenticate or
    when the file ends before its last chunk."""
    cipher = aes_gcm(key)
    block = CHUNK_BYTES + TAG_BYTES
    index = 0
    current = source.read(block)
    while True:
        following = source.read(block) if len(current) == block else b""
        last = not following
        try:
            yield cipher.decrypt(_nonce(index, last), current, header)
        except InvalidTag:
            raise SealedFileError(
                "the sealed file does not decrypt: it was changed or cut short, or it is "
                "sealed under another key"
            ) from None
        if last:
            return
        current = following
        index += 1
