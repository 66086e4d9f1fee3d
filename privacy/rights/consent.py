"""The consent ledger: notices, consent given and withdrawn, and ``can_process``.

Consent is a ledger, not a checkbox: every "given" and "withdrawn" is an event that is never
changed, recording the purpose, its lawful basis, the exact notice text (version and SHA-256),
the channel, the source interaction, the time and who recorded it. The current state of a
contact is derived from its events, latest first.

Plugins ask before processing through core (``kith.check_processing`` with the activity
``purpose:<name>``), which the rights plugin answers from here.

Rules by lawful basis: ``consent`` needs a current "given"; ``legitimate_interests`` and
``public_task`` allow processing until a "withdrawn" event (an objection, Art. 21); the other
bases (contract, legal obligation, vital interests) do not depend on consent. A restriction
(Art. 18) and a recorded objection to marketing refuse on top.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import time
import uuid
import weakref
from typing import Annotated, Any, Literal

import msgspec
from kith import (
    SYSTEM,
    Actor,
    ContactService,
    ErasureOutcome,
    InteractionService,
    InvalidInput,
    Kith,
    KithError,
    NotFound,
    get_logger,
    new_id,
    utcnow,
)
from kith.privacy.encryption.primitives import hmac_sha256
from kith.privacy.encryption.secret_files import read_or_create
from kith.privacy.rights import registry
from kith.privacy.rights.audit import AuditLog
from kith.privacy.rights.restriction import RestrictionService
from kith.privacy.rights.settings import rights_settings
from kith.privacy.rights.suppression import SuppressionList, marketing_objection_purposes
from kith.privacy.rights.tables import ConsentEvent, ConsentSource, ConsentSubject, Notice
from kith.storage.prepared import Prepared

# The ledger's write path: built once, not per event.
_INSERT_EVENT = Prepared(lambda **values: ConsentEvent.insert(ConsentEvent(**values)))
_LATEST_NOTICE = Prepared(
    lambda purpose: (
        Notice.select()
        .where(Notice.purpose == purpose)
        .order_by(Notice.version, ascending=False)
        .limit(1)
    )
)
_INSERT_SUBJECT = Prepared(lambda **values: ConsentSubject.insert(ConsentSubject(**values)))
_INSERT_SOURCE = Prepared(lambda **values: ConsentSource.insert(ConsentSource(**values)))
# Newest first: a contact that others were merged into records under its newest pseudonym.
_PSEUDONYMS = Prepared(
    lambda contact_id: (
        ConsentSubject.select(ConsentSubject.pseudonym)
        .where(ConsentSubject.contact == contact_id)
        .order_by(ConsentSubject.created_at, ascending=False)
    )
)

ConsentAction = Literal["given", "withdrawn"]
ConsentStatus = Literal["given", "withdrawn", "none"]

# Bases under which a withdrawal is an objection that stops processing (Art. 21 GDPR).
OBJECTION_BASES = frozenset({"legitimate_interests", "public_task"})
LINK_KEY_FILE = "consent-links.key"
DATA_SUBJECT = "data_subject"
MAX_NOTICE_CHARS = 100_000

log = get_logger("kith.privacy.rights.consent")

# The latest notice of each purpose as this process last read or published it, by database and
# purpose, with when it was read. Every Kith of the process on that database shares it, and
# publishing a notice replaces it; a notice published by another process is seen once the
# entry is older than NOTICE_TTL_S (until then consent refers to a version of exactly the text
# shown, the one the entry holds).
_NOTICES: dict[tuple[str, str], tuple[float, NoticeOut]] = {}
NOTICE_TTL_S = 30.0
# Pseudonyms made in a transaction, by its unit of work, for contacts made in it too: a second
# consent of such a contact needs no look-up.
_MADE: weakref.WeakKeyDictionary[Any, dict[uuid.UUID, uuid.UUID]] = weakref.WeakKeyDictionary()


class NoticeOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    purpose: str
    version: int
    text: str
    sha256: str
    created_at: dt.datetime
    created_by: str


class ConsentEventOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    purpose: str
    action: ConsentAction
    lawful_basis: str
    notice_version: int | None
    notice_sha256: str | None
    channel: str
    source_interaction_id: uuid.UUID | None
    occurred_at: dt.datetime
    recorded_at: dt.datetime
    actor: str


class ConsentState(msgspec.Struct, kw_only=True):
    """Where a contact stands for one purpose, derived from the ledger."""

    purpose: str
    lawful_basis: str
    status: ConsentStatus
    may_process: bool
    since: dt.datetime | None = None
    notice_version: int | None = None
    channel: str | None = None


class ConsentRecord(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A consent event to record (API and CLI input)."""

    purpose: str
    action: ConsentAction
    channel: str = "api"
    notice_version: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)] | None = None
    source_interaction_id: uuid.UUID | None = None
    occurred_at: dt.datetime | None = None


class WithdrawLink(msgspec.Struct, kw_only=True):
    """A signed one-click withdrawal link: ``url`` to hand out (under the ``public_url``
    setting), ``path`` the same relative to the server."""

    token: str
    url: str
    path: str
    contact_id: uuid.UUID
    purpose: str
    expires_at: dt.datetime


class LinkInvalid(KithError):
    status_code = 400
    title = "Invalid link"


class LinkExpired(KithError):
    status_code = 410
    title = "Link expired"


def notice_hash(text: str) -> str:
    """SHA-256 of the notice text as stored (UTF-8), in hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_channel(channel: str) -> str:
    value = channel.strip().lower()
    if not value or len(value) > 50 or not all(c.isalnum() or c in "_-." for c in value):
        raise InvalidInput(
            "a channel is a short word like form, email, phone, api, cli or link",
            field="channel",
        )
    return value


def _notice_out(row: dict[str, object]) -> NoticeOut:
    return msgspec.convert(row, NoticeOut, from_attributes=False)


def _event_out(row: dict[str, object], source: uuid.UUID | None) -> ConsentEventOut:
    return ConsentEventOut(
        id=row["id"],  # type: ignore[arg-type]
        purpose=row["purpose"],  # type: ignore[arg-type]
        action=row["action"],  # type: ignore[arg-type]
        lawful_basis=row["lawful_basis"],  # type: ignore[arg-type]
        notice_version=row["notice_version"],  # type: ignore[arg-type]
        notice_sha256=row["notice_sha256"],  # type: ignore[arg-type]
        channel=row["channel"],  # type: ignore[arg-type]
        source_interaction_id=source,
        occurred_at=row["occurred_at"],  # type: ignore[arg-type]
        recorded_at=row["recorded_at"],  # type: ignore[arg-type]
        actor=row["actor"],  # type: ignore[arg-type]
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ConsentService:
    """Notices, the consent ledger and processing checks of one installation."""

    def __init__(self, kith: Kith) -> None:
        self.kith = kith

    # -- notices -----------------------------------------------------------------------------

    async def publish_notice(self, purpose: str, text: str, actor: Actor = SYSTEM) -> NoticeOut:
        """A new notice version for ``purpose``; publishing the current text again returns the
        current version instead of a copy."""
        registry.purpose(self.kith, purpose)
        text = text.strip()
        if not text:
            raise InvalidInput("a notice needs its text", field="text")
        if len(text) > MAX_NOTICE_CHARS:
            raise InvalidInput(f"a notice is at most {MAX_NOTICE_CHARS} characters", field="text")
        digest = notice_hash(text)
        async with self.kith.unit_of_work(actor) as uow:
            latest = await self._latest_notice(purpose)
            if latest is not None and latest.sha256 == digest:
                self._remember(uow, latest)
                return latest
            version = 1 if latest is None else latest.version + 1
            notice_id = new_id()
            now = utcnow()
            await Notice.insert(
                Notice(
                    id=notice_id,
                    purpose=purpose,
                    version=version,
                    text=text,
                    sha256=digest,
                    created_at=now,
                    created_by=actor.ref,
                )
            ).run()
            uow.publish("privacy.notice_published", None, purpose=purpose, version=version)
            self._remember(
                uow,
                NoticeOut(
                    id=notice_id,
                    purpose=purpose,
                    version=version,
                    text=text,
                    sha256=digest,
                    created_at=now,
                    created_by=actor.ref,
                ),
            )
        row = await Notice.select().where(Notice.id == notice_id).first()
        assert row is not None
        return _notice_out(row)

    def _remember(self, uow: Any, notice: NoticeOut) -> None:
        # Once committed: a notice of a transaction rolled back must not be referred to.
        async def remember() -> None:
            key = (self.kith.settings.database_url, notice.purpose)
            known = _NOTICES.get(key)
            # A transaction that read an older version may commit after one that published.
            if known is None or known[1].version <= notice.version:
                _NOTICES[key] = (time.monotonic(), notice)

        uow.after_commit(remember)

    async def notice_for_text(self, purpose: str, text: str, actor: Actor = SYSTEM) -> NoticeOut:
        """The notice version of ``text`` for ``purpose``: the current one when its text is
        the same, else ``text`` published as a new version (as :meth:`publish_notice`), but
        without a read when this process knows the current one."""
        known = _NOTICES.get((self.kith.settings.database_url, purpose))
        if (
            known is not None
            and time.monotonic() - known[0] < NOTICE_TTL_S
            and known[1].sha256 == notice_hash(text.strip())
        ):
            return known[1]
        return await self.publish_notice(purpose, text, actor)

    async def _latest_notice(self, purpose: str) -> NoticeOut | None:
        row = await _LATEST_NOTICE.first(purpose=purpose)
        return _notice_out(row) if row else None

    async def current_notice(self, purpose: str) -> NoticeOut | None:
        """The notice now shown for ``purpose``. A notice text in settings is published as a
        new version the first time it is needed after it changed."""
        info = registry.purpose(self.kith, purpose)
        latest = await self._latest_notice(purpose)
        if info.notice is not None and (
            latest is None or latest.sha256 != notice_hash(info.notice.strip())
        ):
            return await self.publish_notice(purpose, info.notice)
        return latest

    async def notice(self, purpose: str, version: int) -> NoticeOut:
        row = (
            await Notice.select()
            .where((Notice.purpose == purpose) & (Notice.version == version))
            .first()
        )
        if row is None:
            raise InvalidInput(
                f"purpose {purpose!r} has no notice version {version}", field="notice_version"
            )
        return _notice_out(row)

    async def notices(self, purpose: str | None = None) -> list[NoticeOut]:
        query = Notice.select().order_by(Notice.purpose).order_by(Notice.version)
        if purpose is not None:
            registry.purpose(self.kith, purpose)
            query = query.where(Notice.purpose == purpose)
        return [_notice_out(row) for row in await query]

    # -- the ledger --------------------------------------------------------------------------

    async def _pseudonyms(self, contact_id: uuid.UUID) -> list[uuid.UUID]:
        rows = await _PSEUDONYMS.run(contact_id=contact_id)
        return [row["pseudonym"] for row in rows]

    async def _new_pseudonym(self, contact_id: uuid.UUID) -> uuid.UUID:
        # Random, not time-ordered: the pseudonym must not hint at when the contact arrived.
        pseudonym = uuid.uuid4()
        # At once: a second consent in this transaction looks it up.
        await _INSERT_SUBJECT.run(pseudonym=pseudonym, contact=contact_id, created_at=utcnow())
        return pseudonym

    async def record(
        self, contact_id: uuid.UUID, data: ConsentRecord, actor: Actor = SYSTEM
    ) -> ConsentEventOut:
        """Append one consent event. Giving consent for a purpose under the ``consent`` basis
        ties it to a notice version (the current one unless another is named)."""
        return await self._record(contact_id, data, actor.ref, actor)

    async def _record(
        self,
        contact_id: uuid.UUID,
        data: ConsentRecord,
        actor_ref: str,
        actor: Actor,
        *,
        notice: NoticeOut | None = None,
        created_here: bool = False,
    ) -> ConsentEventOut:
        """``notice``: the one the consent refers to, already resolved. ``created_here``: the
        caller made the contact and the source interaction in the transaction this runs in,
        so they are not looked up again."""
        info = registry.purpose(self.kith, data.purpose)
        channel = _check_channel(data.channel)
        now = utcnow()
        occurred_at = data.occurred_at or now
        if occurred_at.tzinfo is None:
            raise InvalidInput("occurred_at needs a time zone", field="occurred_at")
        if occurred_at > now + dt.timedelta(minutes=5):
            raise InvalidInput("occurred_at lies in the future", field="occurred_at")
        if notice is not None:
            pass  # resolved by the caller
        elif data.notice_version is not None:
            notice = await self.notice(data.purpose, data.notice_version)
        elif data.action == "given":
            notice = await self.current_notice(data.purpose)
            if notice is None and info.lawful_basis == "consent":
                raise InvalidInput(
                    f"consent for {data.purpose!r} must refer to the notice the person saw; "
                    'publish one first (kith privacy notices publish, or notice = "..." in '
                    f"[privacy.purposes.{data.purpose}])",
                    field="notice_version",
                )
        event_id = new_id()
        async with self.kith.unit_of_work(actor) as uow:
            made = _MADE.setdefault(uow, {})
            if created_here:
                # A contact made in this transaction has only the pseudonym it made.
                pseudonyms = [made[contact_id]] if contact_id in made else []
            else:
                pseudonyms = await self._pseudonyms(contact_id)
            # A pseudonym's row holds a foreign key to its contact: with one, the contact is there.
            if (
                not pseudonyms
                and not created_here
                and not await ContactService(self.kith).exists(contact_id)
            ):
                raise NotFound(f"contact {contact_id} does not exist")
            if (
                data.source_interaction_id is not None
                and not created_here
                and not await InteractionService(self.kith).exists(
                    data.source_interaction_id, contact_id
                )
            ):
                raise InvalidInput(
                    f"contact {contact_id} has no interaction {data.source_interaction_id}",
                    field="source_interaction_id",
                )
            if pseudonyms:
                pseudonym = pseudonyms[0]
            elif created_here:
                # Written with the event; later consents of this transaction find it in `made`.
                pseudonym = made[contact_id] = uuid.uuid4()
                await _INSERT_SUBJECT.defer(
                    pseudonym=pseudonym, contact=contact_id, created_at=utcnow()
                )
            else:
                pseudonym = await self._new_pseudonym(contact_id)
            row: dict[str, Any] = {
                "id": event_id,
                "subject": pseudonym,
                "purpose": data.purpose,
                "action": data.action,
                "lawful_basis": info.lawful_basis,
                "notice": notice.id if notice else None,
                "notice_version": notice.version if notice else None,
                "notice_sha256": notice.sha256 if notice else None,
                "channel": channel,
                # As both engines give stored times back.
                "occurred_at": occurred_at.astimezone(dt.UTC),
                "recorded_at": now,
                "actor": actor_ref,
            }
            # Nothing reads it back here: written with the audit entry and the outbox event
            # (one round trip on PostgreSQL).
            await _INSERT_EVENT.defer(**row)
            if data.source_interaction_id is not None:
                # After the event it refers to, in the same batch.
                await _INSERT_SOURCE.defer(
                    id=new_id(), event=event_id, interaction=data.source_interaction_id
                )
            uow.publish(
                f"consent.{data.action}",
                contact_id,
                contact_id=str(contact_id),
                purpose=data.purpose,
                event_id=str(event_id),
            )
            # Consent is personal data too: giving or withdrawing it is on the audit trail,
            # in this transaction (the ledger event and its record stand or fall together).
            await AuditLog(self.kith).record(
                contact_id,
                f"consent_{data.action}",
                actor=actor_ref,
                channel=channel,
                details={"purpose": data.purpose, "event": str(event_id)},
            )
        # What was just written, as a read would return it, without reading it back.
        return _event_out(row, data.source_interaction_id)

    async def give(
        self,
        contact_id: uuid.UUID,
        purpose: str,
        *,
        channel: str,
        notice_version: int | None = None,
        source_interaction_id: uuid.UUID | None = None,
        occurred_at: dt.datetime | None = None,
        actor: Actor = SYSTEM,
    ) -> ConsentEventOut:
        """Record that the contact gave consent for ``purpose`` (e.g. from a web form)."""
        record = ConsentRecord(
            purpose=purpose,
            action="given",
            channel=channel,
            notice_version=notice_version,
            source_interaction_id=source_interaction_id,
            occurred_at=occurred_at,
        )
        return await self.record(contact_id, record, actor)

    async def given_under(
        self,
        contact_id: uuid.UUID,
        notice: NoticeOut,
        *,
        channel: str,
        source_interaction_id: uuid.UUID | None = None,
        occurred_at: dt.datetime | None = None,
        actor: Actor = SYSTEM,
        created_here: bool = False,
    ) -> ConsentEventOut:
        """Record consent given under ``notice`` (as :meth:`give` with its version, without
        reading it again). ``created_here``: the caller made the contact and the source
        interaction in its current transaction, so they are not looked up again."""
        record = ConsentRecord(
            purpose=notice.purpose,
            action="given",
            channel=channel,
            notice_version=notice.version,
            source_interaction_id=source_interaction_id,
            occurred_at=occurred_at,
        )
        return await self._record(
            contact_id, record, actor.ref, actor, notice=notice, created_here=created_here
        )

    async def withdraw(
        self,
        contact_id: uuid.UUID,
        purpose: str,
        *,
        channel: str,
        source_interaction_id: uuid.UUID | None = None,
        occurred_at: dt.datetime | None = None,
        actor: Actor = SYSTEM,
    ) -> ConsentEventOut:
        """Record that the contact withdrew consent for (or objected to) ``purpose``."""
        record = ConsentRecord(
            purpose=purpose,
            action="withdrawn",
            channel=channel,
            source_interaction_id=source_interaction_id,
            occurred_at=occurred_at,
        )
        return await self.record(contact_id, record, actor)

    async def history(self, contact_id: uuid.UUID) -> list[ConsentEventOut]:
        """Every consent event of a contact, oldest first."""
        pseudonyms = await self._pseudonyms(contact_id)
        if not pseudonyms:
            if not await ContactService(self.kith).exists(contact_id):
                raise NotFound(f"contact {contact_id} does not exist")
            return []
        rows = (
            await ConsentEvent.select()
            .where(ConsentEvent.subject.is_in(pseudonyms))
            .order_by(ConsentEvent.occurred_at)
            .order_by(ConsentEvent.id)
        )
        sources = {}
        if rows:
            links = await ConsentSource.select(
                ConsentSource.event, ConsentSource.interaction
            ).where(ConsentSource.event.is_in([row["id"] for row in rows]))
            sources = {link["event"]: link["interaction"] for link in links}
        return [_event_out(row, sources.get(row["id"])) for row in rows]

    async def current(self, contact_id: uuid.UUID) -> list[ConsentState]:
        """The contact's standing for every declared purpose (and any with events)."""
        declared = registry.purposes(self.kith)
        latest: dict[str, ConsentEventOut] = {}
        for past in await self.history(contact_id):
            latest[past.purpose] = past
        states = []
        for name in sorted(set(declared) | set(latest)):
            event = latest.get(name)
            basis = declared[name].lawful_basis if name in declared else "undeclared"
            status: ConsentStatus = event.action if event else "none"
            states.append(
                ConsentState(
                    purpose=name,
                    lawful_basis=basis,
                    status=status,
                    may_process=name in declared and _allowed(basis, status),
                    since=event.occurred_at if event else None,
                    notice_version=event.notice_version if event else None,
                    channel=event.channel if event else None,
                )
            )
        return states

    async def status(self, contact_id: uuid.UUID, purpose: str) -> ConsentStatus:
        """The latest action for one purpose, or ``none``."""
        pseudonyms = await self._pseudonyms(contact_id)
        if not pseudonyms:
            return "none"
        row = (
            await ConsentEvent.select(ConsentEvent.action)
            .where(ConsentEvent.subject.is_in(pseudonyms) & (ConsentEvent.purpose == purpose))
            .order_by(ConsentEvent.occurred_at, ascending=False)
            .order_by(ConsentEvent.id, ascending=False)
            .first()
        )
        return row["action"] if row else "none"

    async def can_process(self, contact_id: uuid.UUID, purpose: str) -> bool:
        """Whether personal data of this contact may be processed for ``purpose`` now.
        A refusal is logged with the contact id and the reason, never with personal data."""
        declared = registry.purposes(self.kith)
        info = declared.get(purpose)
        reason: str | None
        if info is None:
            reason = "purpose is not declared"
        else:
            status = await self.status(contact_id, purpose)
            reason = _refusal(info.lawful_basis, status)
            if reason is None:
                reason = await _other_refusal(self.kith, contact_id, purpose)
        if reason is None:
            return True
        log.info("processing_refused", contact_id=str(contact_id), purpose=purpose, reason=reason)
        return False

    # -- erasure -----------------------------------------------------------------------------

    async def anonymise_subject(
        self, contact_id: uuid.UUID, *, dry_run: bool = False
    ) -> list[ErasureOutcome]:
        """Cut the ledger's link to a contact: its events stay, naming a pseudonym nothing
        maps to any more, without their source interactions. Idempotent. With ``dry_run``
        it only says what it would do (the erasure preview), in the same words."""
        async with self.kith.unit_of_work():
            pseudonyms = await self._pseudonyms(contact_id)
            event_ids: list[uuid.UUID] = []
            links = 0
            if pseudonyms:
                event_ids = [
                    row["id"]
                    for row in await ConsentEvent.select(ConsentEvent.id).where(
                        ConsentEvent.subject.is_in(pseudonyms)
                    )
                ]
                if event_ids:
                    links = await ConsentSource.count().where(ConsentSource.event.is_in(event_ids))
                if not dry_run:
                    if event_ids:
                        await ConsentSource.delete().where(ConsentSource.event.is_in(event_ids))
                    await ConsentSubject.delete().where(ConsentSubject.contact == contact_id)
        if not pseudonyms:
            return [
                ErasureOutcome(
                    source="kith.privacy",
                    location=ConsentEvent._meta.tablename,
                    method="not_present",
                )
            ]
        return [
            ErasureOutcome(
                source="kith.privacy",
                location=ConsentEvent._meta.tablename,
                method="anonymised",
                count=len(event_ids),
                ground="kept as evidence of consent (Art. 7(1)), linked to no one",
            ),
            ErasureOutcome(
                source="kith.privacy",
                location=ConsentSource._meta.tablename,
                method="deleted",
                count=links,
            ),
            ErasureOutcome(
                source="kith.privacy",
                location=ConsentSubject._meta.tablename,
                method="deleted",
                count=len(pseudonyms),
            ),
        ]

    async def export_subject(self, contact_id: uuid.UUID) -> list[dict[str, Any]]:
        """The contact's consent events as plain rows, for an access or portability export."""
        return [
            {
                "id": str(event.id),
                "purpose": event.purpose,
                "action": event.action,
                "lawful_basis": event.lawful_basis,
                "notice_version": event.notice_version,
                "notice_sha256": event.notice_sha256,
                "channel": event.channel,
                "source_interaction_id": str(event.source_interaction_id)
                if event.source_interaction_id
                else None,
                "occurred_at": event.occurred_at.isoformat(),
                "recorded_at": event.recorded_at.isoformat(),
            }
            for event in await self.history(contact_id)
        ]

    # -- one-click withdrawal links ----------------------------------------------------------

    def _link_key(self) -> bytes:
        return read_or_create(self.kith.settings.home / LINK_KEY_FILE, lambda: os.urandom(32))

    def withdraw_link(
        self,
        contact_id: uuid.UUID,
        purpose: str,
        valid_days: int | None = None,
        base: str | None = None,
    ) -> WithdrawLink:
        """A signed link that withdraws one purpose for one contact, for emails and forms;
        absolute, under ``public_url`` (or ``base`` while that is not set)."""
        registry.purpose(self.kith, purpose)
        days = valid_days or rights_settings(self.kith.settings).withdraw_link_days
        if not 1 <= days <= 3660:
            raise InvalidInput("a link is valid for 1 to 3660 days", field="valid_days")
        expires = utcnow().replace(microsecond=0) + dt.timedelta(days=days)
        payload = json.dumps(
            {"c": str(contact_id), "p": purpose, "e": int(expires.timestamp()), "v": 1},
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
        signature = hmac_sha256(self._link_key(), payload)
        token = f"{_b64(payload)}.{_b64(signature)}"
        path = f"/api/privacy/consent/withdraw?token={token}"
        return WithdrawLink(
            token=token,
            url=self.kith.settings.link(path, base),
            path=path,
            contact_id=contact_id,
            purpose=purpose,
            expires_at=expires,
        )

    def read_link(self, token: str) -> tuple[uuid.UUID, str]:
        """The contact and purpose a withdrawal link names; :class:`LinkInvalid` if it was not
        issued by this installation, :class:`LinkExpired` once it has expired."""
        invalid = LinkInvalid(
            "this withdrawal link is not valid; use the latest link you received, or contact us"
        )
        body, _, signature = token.strip().partition(".")
        if not body or not signature or len(token) > 1000:
            raise invalid
        try:
            payload = _unb64(body)
            given = _unb64(signature)
        except (ValueError, TypeError):
            raise invalid from None
        expected = hmac_sha256(self._link_key(), payload)
        if not hmac.compare_digest(expected, given):
            raise invalid
        try:
            claims = json.loads(payload)
            contact_id = uuid.UUID(claims["c"])
            purpose = str(claims["p"])
            expires = int(claims["e"])
        except (ValueError, KeyError, TypeError):
            raise invalid from None
        if utcnow().timestamp() > expires:
            raise LinkExpired(
                "this withdrawal link has expired; use a newer one, or contact us to withdraw"
            )
        return contact_id, purpose

    async def withdraw_by_link(self, token: str) -> tuple[ConsentEventOut | None, str]:
        """Withdraw what a link names. Returns the new event (None when it was already
        withdrawn, so clicking twice records once) and the purpose."""
        contact_id, purpose = self.read_link(token)
        if await self.status(contact_id, purpose) == "withdrawn":
            return None, purpose
        record = ConsentRecord(purpose=purpose, action="withdrawn", channel="link")
        event = await self._record(contact_id, record, DATA_SUBJECT, SYSTEM)
        return event, purpose


async def _other_refusal(kith: Kith, contact_id: uuid.UUID, purpose: str) -> str | None:
    """Beyond consent: a restriction (Art. 18) stops processing for every purpose, and an
    objection to marketing on the suppression list stops it for marketing purposes."""
    reason = await RestrictionService(kith).refusal(contact_id, f"purpose:{purpose}")
    return reason or await _objection_refusal(kith, contact_id, purpose)


async def _objection_refusal(kith: Kith, contact_id: uuid.UUID, purpose: str) -> str | None:
    """A marketing purpose is refused for a contact whose email or phone carries an objection
    recorded earlier (even under another, since erased, contact), unless the contact gave
    consent for it after the objection was recorded."""
    if not marketing_objection_purposes(kith, [purpose]):
        return None
    suppression = SuppressionList(kith)
    latest: dict[str, Any] | None = None
    for kind, value in await suppression.values_of(contact_id):
        row = await suppression.match(kind, value, "objection")
        if row is not None and (latest is None or row["created_at"] > latest["created_at"]):
            latest = row
    if latest is None:
        return None
    for event in reversed(await ConsentService(kith).history(contact_id)):
        if event.purpose == purpose and event.action == "given":
            if event.occurred_at > latest["created_at"]:
                return None
            break
    return "the person objected to marketing earlier (suppression list)"


def _refusal(lawful_basis: str, status: ConsentStatus) -> str | None:
    if lawful_basis == "consent" and status != "given":
        return "no consent given" if status == "none" else "consent withdrawn"
    if lawful_basis in OBJECTION_BASES and status == "withdrawn":
        return "the person objected"
    return None


def _allowed(lawful_basis: str, status: ConsentStatus) -> bool:
    return _refusal(lawful_basis, status) is None


async def can_process(kith: Kith, contact_id: uuid.UUID, purpose: str) -> bool:
    """Whether ``contact_id``'s data may be processed for ``purpose`` (see the module doc)."""
    return await ConsentService(kith).can_process(contact_id, purpose)


async def anonymise_subject_consents(kith: Kith, contact_id: uuid.UUID) -> list[ErasureOutcome]:
    """For erasure: keep the ledger as evidence but linked to nobody. Idempotent."""
    return await ConsentService(kith).anonymise_subject(contact_id)
