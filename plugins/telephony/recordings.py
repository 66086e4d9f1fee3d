"""Call recordings kept in Kith: fetched from the provider once it has one, sealed piece by
piece under the contact's data key in the database, played back, and deleted by retention,
erasure and never left behind.

The pieces live in the database rather than in files: a backup then holds them with the calls
they belong to, a deleted call never leaves a file behind, every worker reaches them without a
shared folder, and erasure deletes them in the transaction that deletes the calls. Pieces of
256 KiB keep memory flat whatever a recording's length.
"""

from __future__ import annotations

import base64
import datetime as dt
import mimetypes
import posixpath
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import msgspec
from kith import (
    SYSTEM,
    Actor,
    Event,
    Kith,
    KithError,
    NotFound,
    Subscriber,
    get_logger,
    new_id,
    protect_bytes,
    record_access,
    reveal_bytes,
    utcnow,
)
from kith.plugins.telephony import mango, zadarma
from kith.plugins.telephony.settings import TelephonySettings, settings_of
from kith.plugins.telephony.tables import TelephonyCall, TelephonyRecordingPiece

PIECE_BYTES = 256 * 1024
TIMEOUT_S = 60.0
# Attempts of a fetch before it is dead-lettered (``kith events replay`` tries again): the
# provider may still be processing the file at the first tries.
FETCH_ATTEMPTS = 6
SUBSCRIBER = "telephony.recordings"
TABLE = str(TelephonyRecordingPiece._meta.tablename)
READ_RECORDING = "read_call_recording"
log = get_logger("kith.plugins.telephony")
_AUDIO = ("audio/", "video/ogg", "application/ogg")


class RecordingGone(KithError):
    """The call had a recording, but it was deleted (retention) or can no longer be opened
    (its contact's key was destroyed)."""

    status_code = 410
    title = "Gone"


class FetchFailed(Exception):
    """A recording could not be fetched this time; the bus tries again later."""


def _context(call_id: uuid.UUID, seq: int) -> bytes:
    return b"%s\x00%s\x00%d" % (TABLE.encode(), call_id.bytes, seq)


def _rebased(ref: str, api_url: str) -> str:
    """The provider's URL of a recording on the configured API address: the account's
    credentials are only ever sent there."""
    path = urlsplit(ref).path if "://" in ref else ref
    return api_url.rstrip("/") + "/" + path.lstrip("/")


def _media_type(given: str, name: str) -> str:
    media = given.split(";")[0].strip().lower()
    if media.startswith(_AUDIO):
        return media
    guessed = mimetypes.guess_type(name)[0] or ""
    if media in ("", "application/octet-stream", "binary/octet-stream") and guessed.startswith(
        "audio/"
    ):
        return guessed
    raise FetchFailed(f"the provider answered with {media or 'no media type'}, not audio")


class RecordingService:
    """Recordings of calls: fetch (the bus's subscriber), playback, retention and erasure."""

    def __init__(self, kith: Kith) -> None:
        self.kith = kith
        self.settings: TelephonySettings = settings_of(kith)

    # -- fetching ------------------------------------------------------------------------------

    async def _request(self, client: httpx.AsyncClient, provider: str, ref: str) -> httpx.Request:
        """The request that downloads the recording ``ref`` of ``provider``'s call."""
        settings = self.settings
        if provider == "twilio":
            twilio = settings.twilio
            url = _rebased(ref, twilio.api_url)
            if not posixpath.splitext(urlsplit(url).path)[1]:
                url += ".mp3"
            token = base64.b64encode(f"{twilio.account_sid}:{twilio.auth_token}".encode())
            return client.build_request(
                "GET", url, headers={"Authorization": "Basic " + token.decode()}
            )
        if provider == "zadarma":
            return client.build_request("GET", await self._zadarma_link(client, ref))
        if provider == "mango":
            payload = msgspec.json.encode({"recording_id": ref, "action": "download"}).decode()
            form = {
                "vpbx_api_key": settings.mango.api_key,
                "sign": mango.sign(settings.mango.api_key, payload, settings.mango.api_salt),
                "json": payload,
            }
            url = settings.mango.api_url.rstrip("/") + "/queries/recording/post"
            return client.build_request("POST", url, data=form)
        if provider == "asterisk" and settings.recordings.asterisk_url:
            name = posixpath.basename(ref.replace("\\", "/"))
            url = settings.recordings.asterisk_url.rstrip("/") + "/" + quote(name)
            return client.build_request("GET", url)
        raise NotFound(f"recordings of {provider} are not fetched")

    async def _zadarma_link(self, client: httpx.AsyncClient, ref: str) -> str:
        """Zadarma hands out a temporary link to a recording through its API."""
        settings = self.settings.zadarma
        method = "/v1/pbx/record/request/"
        params = {"call_id": ref}
        auth = f"{settings.api_key}:" + zadarma.api_signature(settings.api_secret, method, params)
        response = await client.get(
            settings.api_url.rstrip("/") + method, params=params, headers={"Authorization": auth}
        )
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        link = answer.get("link") or next(iter(answer.get("links") or []), None)
        if response.status_code >= 400 or answer.get("status") != "success" or not link:
            raise FetchFailed(f"Zadarma gave no recording link (HTTP {response.status_code})")
        return str(link)

    async def fetch(self, call_id: uuid.UUID) -> bool:
        """Download the call's recording and store it sealed; False when there is nothing to
        fetch (fetching is off, nobody to seal it for, already stored or past retention).
        Raises :class:`FetchFailed` when the provider does not hand it over."""
        if not self.settings.recordings.fetch:
            return False
        row = await TelephonyCall.select().where(TelephonyCall.id == call_id).first()
        if (
            row is None
            or row["contact_id"] is None
            or row["recording_ref"] is None
            or row["recording_stored_at"] is not None
            or row["recording_deleted_at"] is not None
        ):
            return False
        contact_id: uuid.UUID = row["contact_id"]
        opened = await self.kith.protector.reveal(
            contact_id,
            str(TelephonyCall._meta.tablename),
            call_id,
            {"recording_ref": row["recording_ref"]},
        )
        ref = opened["recording_ref"] or ""
        limit = self.settings.recordings.max_megabytes * 1024 * 1024
        # A failed attempt may have left pieces: they go before this one starts.
        await TelephonyRecordingPiece.delete().where(TelephonyRecordingPiece.call == call_id)
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT_S, follow_redirects=True) as client:
                request = await self._request(client, row["provider"], ref)
                response = await client.send(request, stream=True)
                try:
                    if response.status_code >= 400:
                        raise FetchFailed(
                            f"{row['provider']} refused the recording (HTTP {response.status_code})"
                        )
                    media = _media_type(
                        response.headers.get("content-type", ""), urlsplit(str(request.url)).path
                    )
                    size = await self._store(response, call_id, contact_id, limit)
                finally:
                    await response.aclose()
        except httpx.HTTPError as exc:
            await self._discard(call_id)
            raise FetchFailed(f"the recording could not be fetched: {type(exc).__name__}") from None
        except BaseException:
            await self._discard(call_id)
            raise
        await TelephonyCall.update(
            {
                TelephonyCall.recording_type: media,
                TelephonyCall.recording_bytes: size,
                TelephonyCall.recording_stored_at: utcnow(),
            }
        ).where(TelephonyCall.id == call_id)
        log.info("telephony.recording_stored", call_id=str(call_id), size=size)
        return True

    async def _store(
        self, response: httpx.Response, call_id: uuid.UUID, contact_id: uuid.UUID, limit: int
    ) -> int:
        buffer = bytearray()
        seq = size = 0
        async for data in response.aiter_bytes():
            size += len(data)
            if size > limit:
                raise FetchFailed(f"the recording is larger than {limit // 1024 // 1024} MB")
            buffer += data
            while len(buffer) >= PIECE_BYTES:
                await self._piece(call_id, contact_id, seq, bytes(buffer[:PIECE_BYTES]))
                del buffer[:PIECE_BYTES]
                seq += 1
        if buffer or seq == 0:
            await self._piece(call_id, contact_id, seq, bytes(buffer))
        return size

    async def _piece(
        self, call_id: uuid.UUID, contact_id: uuid.UUID, seq: int, data: bytes
    ) -> None:
        sealed = await protect_bytes(self.kith.protector, contact_id, _context(call_id, seq), data)
        await TelephonyRecordingPiece.insert(
            TelephonyRecordingPiece(
                id=new_id(), call=call_id, contact_id=contact_id, seq=seq, data=sealed
            )
        )

    async def _discard(self, call_id: uuid.UUID) -> None:
        await TelephonyRecordingPiece.delete().where(TelephonyRecordingPiece.call == call_id)

    # -- playback ------------------------------------------------------------------------------

    async def open(
        self, call_id: uuid.UUID, actor: Actor = SYSTEM, channel: str = "api"
    ) -> tuple[str, int, AsyncIterator[bytes]]:
        """The call's stored recording: its media type, size and the audio, piece by piece.
        The read is recorded in the contact's audit log. 404 when there is none, 410 when it
        was deleted or can no longer be opened."""
        row = (
            await TelephonyCall.select(
                TelephonyCall.contact_id,
                TelephonyCall.recording_type,
                TelephonyCall.recording_bytes,
                TelephonyCall.recording_stored_at,
                TelephonyCall.recording_deleted_at,
            )
            .where(TelephonyCall.id == call_id)
            .first()
        )
        if row is None:
            raise NotFound(f"call {call_id} does not exist")
        if row["recording_deleted_at"] is not None:
            raise RecordingGone(f"the recording of call {call_id} was deleted after its retention")
        if row["recording_stored_at"] is None or row["contact_id"] is None:
            raise NotFound(f"call {call_id} has no recording stored in Kith")
        contact_id: uuid.UUID = row["contact_id"]
        first = await self._open_piece(call_id, contact_id, 0)
        await record_access(
            self.kith,
            contact_id,
            READ_RECORDING,
            actor,
            channel=channel,
            call_id=str(call_id),
            fields=["recording"],
        )

        async def pieces() -> AsyncIterator[bytes]:
            yield first
            seq = 1
            while True:
                try:
                    yield await self._open_piece(call_id, contact_id, seq)
                except NotFound:
                    return
                seq += 1

        return str(row["recording_type"]), int(row["recording_bytes"] or 0), pieces()

    async def _open_piece(self, call_id: uuid.UUID, contact_id: uuid.UUID, seq: int) -> bytes:
        piece = (
            await TelephonyRecordingPiece.select(TelephonyRecordingPiece.data)
            .where((TelephonyRecordingPiece.call == call_id) & (TelephonyRecordingPiece.seq == seq))
            .first()
        )
        if piece is None:
            raise NotFound(f"call {call_id} has no recording stored in Kith")
        data = await reveal_bytes(
            self.kith.protector, contact_id, _context(call_id, seq), bytes(piece["data"])
        )
        if data is None:
            raise RecordingGone(f"the recording of call {call_id} was erased")
        return data

    # -- retention, erasure, merges ------------------------------------------------------------

    async def delete_old(self, now: dt.datetime | None = None) -> int:
        """Delete recordings (reference and audio) past ``recording_retention_days``; how many
        calls lost theirs."""
        days = self.settings.recording_retention_days
        if days <= 0:
            return 0
        now = now or utcnow()
        cutoff = now - dt.timedelta(days=days)
        where = (
            TelephonyCall.recording_ref.is_not_null()
            | TelephonyCall.recording_stored_at.is_not_null()
        ) & (TelephonyCall.recording_at < cutoff)
        ids = [row["id"] for row in await TelephonyCall.select(TelephonyCall.id).where(where)]
        if not ids:
            return 0
        async with self.kith.unit_of_work():
            await TelephonyRecordingPiece.delete().where(TelephonyRecordingPiece.call.is_in(ids))
            await TelephonyCall.update(
                {
                    TelephonyCall.recording_ref: None,
                    TelephonyCall.recording_type: None,
                    TelephonyCall.recording_bytes: None,
                    TelephonyCall.recording_stored_at: None,
                    TelephonyCall.recording_deleted_at: now,
                }
            ).where(TelephonyCall.id.is_in(ids))
        return len(ids)

    async def reseal(self, call_ids: list[uuid.UUID], old: uuid.UUID, new: uuid.UUID) -> None:
        """Seal the recordings of calls moved from contact ``old`` to ``new`` (a merge or its
        undoing) under ``new``'s key."""
        if not call_ids:
            return
        pieces = await TelephonyRecordingPiece.select().where(
            TelephonyRecordingPiece.call.is_in(call_ids)
            & (TelephonyRecordingPiece.contact_id == old)
        )
        for piece in pieces:
            context = _context(piece["call"], piece["seq"])
            data = await reveal_bytes(self.kith.protector, old, context, bytes(piece["data"]))
            if data is None:
                await TelephonyRecordingPiece.delete().where(
                    TelephonyRecordingPiece.id == piece["id"]
                )
                continue
            sealed = await protect_bytes(self.kith.protector, new, context, data)
            await TelephonyRecordingPiece.update(
                {TelephonyRecordingPiece.data: sealed, TelephonyRecordingPiece.contact_id: new}
            ).where(TelephonyRecordingPiece.id == piece["id"])


async def _fetch(kith: Kith, event: Event) -> None:
    call_id = event.payload.get("call_id")
    if not call_id:
        return
    try:
        await RecordingService(kith).fetch(uuid.UUID(str(call_id)))
    except NotFound:
        # A provider whose recordings are not fetched (Asterisk without asterisk_url).
        return


SUBSCRIBERS = (
    Subscriber(
        name=SUBSCRIBER,
        events=("call.recording_ready",),
        handler=_fetch,
        max_attempts=FETCH_ATTEMPTS,
    ),
)


def recording_summary(row: dict[str, Any]) -> dict[str, Any] | None:
    """What an access export says of a call's recording (the audio is handed over apart)."""
    if row.get("recording_stored_at") is None and row.get("recording_seconds") is None:
        return None
    return {
        "seconds": row.get("recording_seconds"),
        "stored_in_kith": row.get("recording_stored_at") is not None,
        "media_type": row.get("recording_type"),
        "bytes": row.get("recording_bytes"),
        "playback": f"/api/calls/{row['id']}/recording"
        if row.get("recording_stored_at") is not None
        else None,
    }


async def timeline_audio(interaction_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The web UI's address of the stored recording of each of these timeline entries that
    has one."""
    if not interaction_ids:
        return {}
    rows = await TelephonyCall.select(TelephonyCall.id, TelephonyCall.interaction_id).where(
        TelephonyCall.interaction_id.is_in(interaction_ids)
        & TelephonyCall.recording_stored_at.is_not_null()
    )
    return {row["interaction_id"]: f"/calls/{row['id']}/recording" for row in rows}
