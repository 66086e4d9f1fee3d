"""The web forms' rules: forms managed by admins, and public submissions turned into contacts,
``form_submission`` interactions, consent and follow-ups. Routes and commands call these."""

from __future__ import annotations

import datetime as dt
import ipaddress
import uuid
from collections.abc import Mapping
from typing import Any

import msgspec
from kith import (
    SYSTEM,
    Actor,
    Conflict,
    ConsentGiven,
    ContactCreate,
    ContactIntake,
    ContactService,
    EmailIn,
    InteractionCreate,
    InteractionService,
    InvalidInput,
    Kith,
    KithError,
    Mailer,
    MailMessage,
    NotFound,
    PhoneIn,
    Prepared,
    normalize_email,
    normalize_phone,
    record_consent,
    utcnow,
)
from kith.plugins.webforms import signing
from kith.plugins.webforms.privacy import SUBMISSIONS
from kith.plugins.webforms.schemas import (
    CLICK_KEYS,
    HONEYPOT,
    TOKEN_FIELD,
    UTM_KEYS,
    FormCreate,
    FormOut,
    FormStats,
    SubmissionOut,
    WebformSettings,
)
from kith.plugins.webforms.tables import WebForm, WebFormOptIn, WebFormSubmission

SECTION = "webforms"
FORM_ACTOR = Actor(kind="plugin", name="webforms")
# Forms as this process last read them, by id, in the installation's state.
_FORMS = "webforms.forms"
# Whether a remembered form is still the stored one: one row's two columns, per post.
_STAMP = Prepared(
    lambda form_id: (
        WebForm.select(WebForm.active, WebForm.updated_at).where(WebForm.id == form_id).limit(1)
    )
)
_INSERT_SUBMISSION = Prepared(
    lambda **values: WebFormSubmission.insert(WebFormSubmission(**values))
)


def settings_of(kith: Kith) -> WebformSettings:
    return kith.settings.parsed(SECTION, WebformSettings)


class Rejected(KithError):
    """A submission refused as a bot's (honeypot, fill time); nothing of it is stored."""

    status_code = 422
    title = "Submission rejected"


class OriginRefused(KithError):
    status_code = 403
    title = "Origin not allowed"


class LinkExpired(KithError):
    status_code = 410
    title = "Link expired"


def truncate_address(address: str | None) -> str | None:
    """The client address with its host part dropped (IPv4 /24, IPv6 /48)."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)


def _json(value: Any) -> Any:
    # SQLite hands JSON columns back as text, PostgreSQL as text or decoded.
    return msgspec.json.decode(value) if isinstance(value, str | bytes) else value


def _form_out(row: Mapping[str, Any]) -> FormOut:
    return msgspec.convert(
        {
            **_json(row["definition"]),
            "active": row["active"],
            "origin": row["origin"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        },
        FormOut,
    )


class FormService:
    """Forms: create, list, read, disable; and the ``[[webforms.forms]]`` of kith.toml."""

    def __init__(self, kith: Kith) -> None:
        self.kith = kith

    async def create(self, data: FormCreate, origin: str = "api") -> FormOut:
        now = utcnow()
        async with self.kith.unit_of_work():
            if await WebForm.exists().where(WebForm.id == data.id).run():
                raise Conflict(f"a form {data.id!r} exists already", field="id")
            await WebForm.insert(
                WebForm(
                    id=data.id,
                    title=data.title,
                    definition=msgspec.to_builtins(data),
                    active=True,
                    origin=origin,
                    created_at=now,
                    updated_at=now,
                )
            ).run()
        return await self.get(data.id)

    async def get(self, form_id: str) -> FormOut:
        row = await WebForm.select().where(WebForm.id == form_id).first().run()
        if row is None:
            raise NotFound(f"no form {form_id!r}")
        return _form_out(row)

    async def active(self, form_id: str) -> FormOut:
        """The form if it takes submissions. Remembered by the process and used while its
        stored ``updated_at`` is unchanged (every change sets it, in any process), so a post
        costs one small read instead of decoding the definition."""
        forms: dict[str, tuple[Any, FormOut]] = self.kith.state.setdefault(_FORMS, {})
        rows = await _STAMP.run(form_id=form_id)
        if not rows or not rows[0]["active"]:
            forms.pop(form_id, None)
            raise NotFound(f"no form {form_id!r}")
        stamp = rows[0]["updated_at"]
        known = forms.get(form_id)
        if known is not None and known[0] == stamp:
            return known[1]
        form = await self.get(form_id)
        if not form.active:
            raise NotFound(f"no form {form_id!r}")
        forms[form_id] = (stamp, form)
        return form

    def _forget(self, form_id: str) -> None:
        self.kith.state.get(_FORMS, {}).pop(form_id, None)

    async def list(self) -> list[FormOut]:
        rows = await WebForm.select().order_by(WebForm.id).run()
        return [_form_out(row) for row in rows]

    async def disable(self, form_id: str) -> FormOut:
        await self.get(form_id)
        await (
            WebForm.update({WebForm.active: False, WebForm.updated_at: utcnow()})
            .where(WebForm.id == form_id)
            .run()
        )
        self._forget(form_id)
        return await self.get(form_id)

    async def sync_settings(self) -> None:
        """Write the forms of ``[[webforms.forms]]``: each one as kith.toml says now."""
        for form in settings_of(self.kith).forms:
            row = await WebForm.select(WebForm.origin).where(WebForm.id == form.id).first().run()
            if row is None:
                await self.create(form, origin="settings")
            elif row["origin"] == "settings":
                await (
                    WebForm.update(
                        {
                            WebForm.title: form.title,
                            WebForm.definition: msgspec.to_builtins(form),
                            WebForm.updated_at: utcnow(),
                        }
                    )
                    .where(WebForm.id == form.id)
                    .run()
                )
                self._forget(form.id)

    async def stats(self, form_id: str) -> FormStats:
        row = await WebForm.select(WebForm.dropped_suppressed).where(WebForm.id == form_id).first()
        if row is None:
            raise NotFound(f"no form {form_id!r}")
        mine = WebFormSubmission.form_id == form_id
        total = await WebFormSubmission.count().where(mine).run()
        new = await WebFormSubmission.count().where(
            mine & (WebFormSubmission.created_contact == True)  # noqa: E712
        )
        counts: dict[str, dict[str, int]] = {}
        for column in ("utm_source", "utm_medium", "utm_campaign"):
            rows = await WebFormSubmission.raw(
                f"SELECT {column} AS label, COUNT(*) AS n FROM webforms_submission "
                f"WHERE form_id = {{}} GROUP BY {column}",
                form_id,
            ).run()
            counts[column] = {(r["label"] or "(none)"): int(r["n"]) for r in rows}
        return FormStats(
            form_id=form_id,
            submissions=total,
            new_contacts=new,
            dropped_suppressed=row["dropped_suppressed"],
            by_source=counts["utm_source"],
            by_medium=counts["utm_medium"],
            by_campaign=counts["utm_campaign"],
        )


class Submission(msgspec.Struct, kw_only=True):
    """A submission as received: its values, and where and whom it came from."""

    values: dict[str, str]
    client_address: str | None = None
    user_agent: str | None = None
    referrer: str | None = None
    # Query parameters of the post (utm_* may come in the URL).
    query: dict[str, str] = {}


class SubmissionService:
    """Accept a submission: check it, find or create the contact, record everything."""

    def __init__(self, kith: Kith) -> None:
        self.kith = kith
        self.key = signing.signing_key(kith.settings.home)

    def fill_token(self, form_id: str) -> str:
        return signing.fill_token(self.key, form_id)

    def check_bot(self, form_id: str, values: Mapping[str, str]) -> None:
        """Refuse what a bot sends: a filled honeypot, a missing or forged token, a form
        posted faster than a person fills it, or a stale one."""
        if values.get(HONEYPOT, "").strip():
            raise Rejected("the submission was refused")
        settings = settings_of(self.kith)
        age = signing.fill_age(self.key, form_id, values.get(TOKEN_FIELD, ""))
        if age is None:
            raise Rejected("the form's token is missing or invalid; reload the page")
        if age < settings.min_fill_seconds:
            raise Rejected("the form was sent too quickly; please try again")
        if age > settings.max_fill_seconds:
            raise Rejected("the form is too old; reload the page and send it again")

    def _contact_data(
        self, form: FormCreate, values: Mapping[str, str]
    ) -> tuple[ContactCreate, str]:
        """The contact the values describe, validated per field, and the message text."""
        region = self.kith.settings.default_region
        emails: list[EmailIn] = []
        phones: list[PhoneIn] = []
        names: dict[str, str] = {}
        custom: dict[str, Any] = {}
        message: list[str] = []
        for field in form.fields:
            value = (values.get(field.name) or "").strip()
            if not value:
                if field.required:
                    raise InvalidInput(f"{field.label or field.name} is required", field=field.name)
                continue
            if len(value) > 10_000:
                raise InvalidInput("too long", field=field.name)
            target = field.maps_to
            if target == "email":
                emails.append(EmailIn(address=normalize_email(value, field=field.name)))
            elif target == "phone":
                phones.append(PhoneIn(number=normalize_phone(value, region, field=field.name)))
            elif target == "message":
                message.append(value)
            elif target.startswith("custom:"):
                custom[target.removeprefix("custom:")] = value
            else:
                if len(value) > 200:
                    raise InvalidInput("at most 200 characters", field=field.name)
                names[target] = value
        if not emails and not phones:
            raise InvalidInput("an email address or a phone number is needed")
        name = names.get("name") or " ".join(
            part for part in (names.get("given_name"), names.get("family_name")) if part
        )
        data = ContactCreate(
            name=name or (emails[0].address if emails else phones[0].number),
            given_name=names.get("given_name"),
            family_name=names.get("family_name"),
            emails=emails,
            phones=phones,
            source=form.source,
            fields=custom,
        )
        return data, "\n\n".join(message)

    async def submit(
        self, form_id: str, submission: Submission, base_url: str, form: FormOut | None = None
    ) -> SubmissionOut:
        """Accept one submission, all or nothing. A person on the suppression list is
        dropped and counted, and told the same as anyone. ``form``: the active form, when the
        caller has just read it."""
        if form is None:
            form = await FormService(self.kith).active(form_id)
        values = submission.values
        self.check_bot(form_id, values)
        data, message = self._contact_data(form, values)
        ticked = [p for p in form.purposes if _ticked(values.get(f"consent_{p.name}"))]
        for purpose in form.purposes:
            if purpose.required and purpose not in ticked:
                raise InvalidInput(
                    f"consent to {purpose.name} is required", field=f"consent_{purpose.name}"
                )
        done = SubmissionOut(
            ok=True,
            message=form.success_message,
            redirect=form.success_redirect,
            confirm_by_email=bool(form.double_opt_in and ticked),
        )
        try:
            await self._store(form, submission, data, message, ticked, base_url)
        except Conflict:
            # Suppressed (asked to be erased or objected) or restricted: nothing is stored.
            await (
                WebForm.update({WebForm.dropped_suppressed: WebForm.dropped_suppressed + 1})
                .where(WebForm.id == form_id)
                .run()
            )
            done.confirm_by_email = False
        return done

    async def _store(
        self,
        form: FormCreate,
        submission: Submission,
        data: ContactCreate,
        message: str,
        ticked: list[Any],
        base_url: str,
    ) -> None:
        now = utcnow()
        values = submission.values
        attribution = {
            key: (values.get(key) or submission.query.get(key) or None) for key in UTM_KEYS
        }
        clicks = {key: values.get(key) or submission.query.get(key) or None for key in CLICK_KEYS}
        async with self.kith.unit_of_work(FORM_ACTOR) as uow:
            intake = await ContactIntake(ContactService(self.kith)).find_or_create(data, FORM_ACTOR)
            contact_id = intake.contact.id
            campaign = attribution["utm_campaign"] or attribution["utm_source"]
            interaction, _ = await InteractionService(self.kith).log(
                contact_id,
                InteractionCreate(
                    kind="form_submission",
                    direction="inbound",
                    occurred_at=now,
                    summary=f"{form.title}" + (f" ({campaign})" if campaign else ""),
                    body=message,
                    channel="webform",
                    source=form.source,
                ),
                FORM_ACTOR,
                # Of a new contact nothing reads it in this transaction (the consent trusts
                # it was made here); a known contact's consent checks it, so it is written now.
                at_commit=intake.created,
            )
            submission_id = uuid.uuid4()
            sealed = await self.kith.protector.protect(
                contact_id,
                SUBMISSIONS,
                submission_id,
                {
                    **clicks,
                    "page_url": (values.get("page_url") or None),
                    "referrer": values.get("referrer") or submission.referrer,
                    "client_address": truncate_address(submission.client_address),
                    "user_agent": (submission.user_agent or "")[:500] or None,
                },
            )
            # Nothing reads it back in this transaction: written with the others just before
            # the commit (on PostgreSQL in one statement).
            await _INSERT_SUBMISSION.defer(
                id=submission_id,
                form_id=form.id,
                contact_id=contact_id,
                interaction_id=interaction.id,
                created_contact=intake.created,
                submitted_at=now,
                **{k: (v or None) and v[:200] for k, v in attribution.items()},
                **sealed,
            )
            if ticked and form.double_opt_in:
                await self._ask_confirmation(
                    form, contact_id, submission_id, interaction.id, ticked, data, base_url
                )
            else:
                for purpose in ticked:
                    await record_consent(
                        self.kith,
                        contact_id,
                        ConsentGiven(
                            purpose=purpose.name,
                            notice_text=purpose.notice,
                            channel="webform",
                            source_interaction_id=interaction.id,
                            occurred_at=now,
                            created_in_transaction=intake.created,
                        ),
                        FORM_ACTOR,
                    )
            if form.task is not None:
                await InteractionService(self.kith).log(
                    contact_id,
                    InteractionCreate(
                        kind="task",
                        summary=form.task.summary,
                        due_at=now + dt.timedelta(minutes=form.task.due_minutes),
                        source=form.source,
                    ),
                    FORM_ACTOR,
                    at_commit=True,
                )
            if form.notify_email:
                link = self.kith.settings.link(f"/api/contacts/{contact_id}", base_url)
                await Mailer(self.kith).send(
                    MailMessage(
                        to=form.notify_email,
                        subject=f"New submission of {form.title}",
                        text=f"A {'new' if intake.created else 'known'} contact sent "
                        f"{form.title}.\n\n{link}\n",
                    ),
                    contact_id=contact_id,
                )
            uow.publish(
                "form.submitted",
                contact_id,
                form_id=form.id,
                interaction_id=str(interaction.id),
                contact_id=str(contact_id),
                created=intake.created,
            )

    async def _ask_confirmation(
        self,
        form: FormCreate,
        contact_id: uuid.UUID,
        submission_id: uuid.UUID,
        interaction_id: uuid.UUID,
        ticked: list[Any],
        data: ContactCreate,
        base_url: str,
    ) -> None:
        if not data.emails:
            raise InvalidInput("confirming consent needs an email address")
        now = utcnow()
        opt_in_id = uuid.uuid4()
        hours = settings_of(self.kith).opt_in_hours
        await WebFormOptIn.insert(
            WebFormOptIn(
                id=opt_in_id,
                form_id=form.id,
                contact_id=contact_id,
                submission_id=submission_id,
                interaction_id=interaction_id,
                purposes=[msgspec.to_builtins(p) for p in ticked],
                expires_at=now + dt.timedelta(hours=hours),
                created_at=now,
            )
        ).run()
        token = signing.opt_in_token(self.key, opt_in_id)
        link = self.kith.settings.link(f"/f/{form.id}/confirm?token={token}", base_url)
        await Mailer(self.kith).send(
            MailMessage(
                to=data.emails[0].address,
                subject=f"Please confirm: {form.title}",
                text=(
                    f"You asked us for this on our form {form.title!r}:\n\n"
                    + "\n".join(f"- {p.notice}" for p in ticked)
                    + f"\n\nConfirm by opening this link within {hours:g} hours:\n{link}\n\n"
                    "If it was not you, ignore this message: nothing is recorded without it.\n"
                ),
            ),
            contact_id=contact_id,
        )

    async def confirm(self, token: str) -> int:
        """Record the consent an opt-in link confirms; returns how many purposes. A second
        click records nothing more."""
        opt_in_id = signing.read_opt_in_token(self.key, token)
        if opt_in_id is None:
            raise InvalidInput("this confirmation link is not valid", field="token")
        async with self.kith.unit_of_work(FORM_ACTOR):
            row = await WebFormOptIn.select().where(WebFormOptIn.id == opt_in_id).first().run()
            if row is None:
                raise LinkExpired("this confirmation link has expired")
            if row["confirmed_at"] is not None:
                return 0
            now = utcnow()
            if row["expires_at"] < now:
                raise LinkExpired("this confirmation link has expired")
            purposes = _json(row["purposes"])
            for purpose in purposes:
                await record_consent(
                    self.kith,
                    row["contact_id"],
                    ConsentGiven(
                        purpose=purpose["name"],
                        notice_text=purpose["notice"],
                        channel="webform_opt_in",
                        source_interaction_id=row["interaction_id"],
                        occurred_at=now,
                    ),
                    FORM_ACTOR,
                )
            await (
                WebFormOptIn.update({WebFormOptIn.confirmed_at: now})
                .where(WebFormOptIn.id == opt_in_id)
                .run()
            )
            return len(purposes)

    async def expire(self) -> int:
        """Delete opt-ins not confirmed in time: their consent is never recorded."""
        where = (WebFormOptIn.expires_at < utcnow()) & WebFormOptIn.confirmed_at.is_null()
        count = await WebFormOptIn.count().where(where).run()
        if count:
            await WebFormOptIn.delete().where(where).run()
        return count


def _ticked(value: str | None) -> bool:
    return (value or "").strip().lower() in ("on", "yes", "true", "1", "checked")


__all__ = ["SYSTEM", "FormService", "SubmissionService"]
