"""The telephony plugin's tables: one row per call, and the provider events already taken in."""

from __future__ import annotations

from kith import new_id
from piccolo.columns import JSON, UUID, Bytea, Integer, Text, Timestamptz, Varchar
from piccolo.table import Table


class TelephonyCall(Table, tablename="telephony_call"):
    """One call as Kith knows it, built from every provider event about it (in any order).

    The other party's number and the recording reference are personal fields, sealed under the
    matched contact's key (a call nobody could be matched to keeps neither). ``published``
    lists the ``call.*`` events already sent, so a repeated or late event never sends one twice.
    """

    # No foreign key: erasure deletes the rows itself, and the privacy registry is told which
    # column names a row's subject.
    kith_subject_column = "contact_id"

    id = UUID(primary_key=True, default=new_id)
    provider = Varchar(length=50)
    call_id = Varchar(length=200)
    contact_id = UUID(null=True, default=None)
    interaction_id = UUID(null=True, default=None)
    direction = Varchar(length=10, default="inbound")
    number = Text(null=True, default=None, secret=True)
    extension = Varchar(length=50, null=True, default=None)
    user_id = UUID(null=True, default=None)
    queue = Varchar(length=100, null=True, default=None)
    started_at = Timestamptz(null=True, default=None)
    answered_at = Timestamptz(null=True, default=None)
    ended_at = Timestamptz(null=True, default=None)
    duration_s = Integer(null=True, default=None)
    talk_s = Integer(null=True, default=None)
    provider_outcome = Varchar(length=20, null=True, default=None)
    outcome = Varchar(length=20, null=True, default=None)
    transfers = JSON(default=[])
    recording_ref = Text(null=True, default=None, secret=True)
    recording_seconds = Integer(null=True, default=None)
    recording_at = Timestamptz(null=True, default=None)
    # The recording fetched into Kith (its pieces are TelephonyRecordingPiece rows): its media
    # type and size, when it was stored, and when its retention deleted it (410 from then on).
    recording_type = Varchar(length=100, null=True, default=None)
    recording_bytes = Integer(null=True, default=None)
    recording_stored_at = Timestamptz(null=True, default=None)
    recording_deleted_at = Timestamptz(null=True, default=None)
    # A missed call's callback task, and the later call that closed it.
    callback_task_id = UUID(null=True, default=None)
    callback_closed_by = UUID(null=True, default=None)
    published = JSON(default=[])
    created_at = Timestamptz()
    updated_at = Timestamptz()


class TelephonyEvent(Table, tablename="telephony_event"):
    """A provider event taken in (its idempotency key), for repeats and ``kith telephony
    status``. Holds no personal data: ids, kinds and times only."""

    id = UUID(primary_key=True, default=new_id)
    provider = Varchar(length=50)
    key = Varchar(length=200)
    call_id = Varchar(length=200)
    kind = Varchar(length=20)
    at = Timestamptz()
    received_at = Timestamptz()


class TelephonyRecordingPiece(Table, tablename="telephony_recording_piece"):
    """One piece (up to 256 KiB) of a call's recording, sealed under the contact's data key
    and bound to its call and position, so that a piece moved or reordered does not open."""

    kith_subject_column = "contact_id"

    id = UUID(primary_key=True, default=new_id)
    call = UUID()
    contact_id = UUID()
    seq = Integer()
    data = Bytea()


TELEPHONY_TABLES: list[type[Table]] = [TelephonyCall, TelephonyEvent, TelephonyRecordingPiece]
