"""Every hook Kith offers to plugins. The hook reference in the docs is generated from here.

Conventions: every hook starts with ``kith_``. ``register``-style hooks collect: Kith calls each
implementation with a ``register`` callback and the plugin calls it once per thing it adds.
Hooks marked *may be async* (decorated with :func:`may_be_async`) accept implementations that
return an awaitable; Kith awaits them. Every other hook is sync only: the plugin manager refuses an
``async def`` implementation of it when the plugin registers, because nobody would await it. No
``firstresult`` hook may be async (pluggy would return the coroutine of whichever ran first).
Plugins that add hookspecs of their own (:func:`kith_add_hookspecs`) use the same markers.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

if TYPE_CHECKING:
    import click
    import msgspec
    from kith.actor import Actor
    from kith.cards import CardSection
    from kith.events import EventType
    from kith.mail import MailTransport
    from kith.navigation import NavLink
    from kith.notices import UserNotice
    from kith.personal import PersonalField
    from kith.protection import FieldProtector, KeyProvider
    from kith.runtime import Kith
    from kith.schemas import FieldCreate, InteractionOut
    from kith.settings import Settings
    from kith.subjects import (
        Access,
        ConsentGiven,
        ConsentLine,
        ConsentReceipt,
        ErasureOutcome,
        ExportSection,
        Purpose,
        Recipient,
        RecipientAction,
        RecipientNotice,
        SubjectHold,
        Subscriber,
    )
    from piccolo.conf.apps import AppConfig

PROJECT = "kith"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

ASYNC_MARK = "kith_may_be_async"
_F = TypeVar("_F", bound=Callable[..., Any])


def may_be_async(function: _F) -> _F:
    """Mark a hookspec whose implementations may be ``async def`` (Kith awaits what they
    return). Hookspecs without it are sync only; a ``firstresult`` hookspec cannot have it."""
    setattr(function, ASYNC_MARK, True)
    return function


def is_async_hook(spec_function: Callable[..., Any]) -> bool:
    """Whether a hookspec function was marked with :func:`may_be_async`."""
    return bool(getattr(spec_function, ASYNC_MARK, False))


@hookspec(historic=True)
def kith_add_hookspecs(plugin_manager: pluggy.PluginManager) -> None:
    """Add hookspecs of your own (``plugin_manager.add_hookspecs(MySpecs)``), so that other
    plugins can implement them. Historic: plugins registered later still see the call.
    Collects nothing. Sync only."""


@hookspec
def kith_register_apps(register: Callable[[AppConfig], None]) -> None:
    """Register piccolo apps (tables plus migrations). ``kith migrate`` applies their
    migrations and ``kith serve`` refuses to start while any are pending. Collecting. Sync only."""


@hookspec
def kith_register_routes(register: Callable[[Any], None]) -> None:
    """Register litestar route handlers, controllers or routers. Every handler must declare its
    roles with ``opt=kith.http.roles(...)`` (or ``public()``); undeclared ones answer 403.
    Collecting. Sync only."""


@hookspec
def kith_register_configured_routes(settings: Settings, register: Callable[[Any], None]) -> None:
    """Register route handlers whose paths come from ``kith.toml`` (an address another
    system is set up to call, say), like :func:`kith_register_routes` but called each time the
    HTTP app is built, with the validated settings: read your section with
    ``settings.parsed("name", YourSettings)`` and build the handler with those paths. The same
    rules hold: each handler declares its roles. Collecting. Sync only."""


@hookspec
def kith_register_pages(register: Callable[[Any], None]) -> None:
    """Register litestar route handlers of the web UI: they are served beside its pages, signed
    in by the session cookie (not an API token) and CSRF-protected, and need roles like any
    route (``opt=kith.http.roles(...)``). For what a page shows of a plugin's data (an audio
    player's source). Collecting. Sync only."""


@hookspec
def kith_register_templates(register: Callable[[Path], None]) -> None:
    """Register a folder of Jinja templates for the plugin's pages (``kith_register_pages``),
    rendered with ``kith.web.render``. Core's templates are found first, so name yours under a
    folder of the plugin's own (``telephony/settings.html``); a template may extend core's
    ``base.html``. Collecting. Sync only."""


@hookspec
def kith_register_navigation(register: Callable[[NavLink], None]) -> None:
    """Register links in the web UI's navigation to the plugin's pages
    (:class:`kith.NavLink`: path, label, the roles who see it, order). Collecting. Sync
    only."""


@hookspec
@may_be_async
def kith_timeline_audio(
    kith: Kith, interactions: list[InteractionOut]
) -> Mapping[uuid.UUID, str] | Awaitable[Mapping[uuid.UUID, str]] | None:
    """Say which entries of a contact's timeline in the web UI play audio (a call's
    recording): interaction id -> the address of a page registered with
    ``kith_register_pages`` that streams it. The card shows an audio player there.
    Collecting (the answers are joined). May be async."""


@hookspec
def kith_register_commands(register: Callable[[click.Command], None]) -> None:
    """Register click commands or groups; they appear under ``kith``. Collecting. Sync only."""


@hookspec
def kith_register_event_types(register: Callable[[EventType], None]) -> None:
    """Declare event types this plugin publishes (a dotted name, a description, the payload's
    keys). Publishing an undeclared name is an error. Collecting. Sync only."""


@hookspec
def kith_register_subscribers(register: Callable[[Subscriber], None]) -> None:
    """Subscribe handlers to events. A handler receives the event and may be async; it is
    retried with backoff when it raises and dead-lettered after its last attempt; it must be
    idempotent by ``event.id``. Collecting. Sync only (the handlers may be async)."""


@hookspec
def kith_register_settings(register: Callable[[str, type[msgspec.Struct]], None]) -> None:
    """Declare a settings section: ``register("webforms", WebformSettings)`` validates the
    ``[webforms]`` table of ``kith.toml`` into that Struct at start-up; the plugin reads it with
    ``kith.settings.parsed("webforms", WebformSettings)``, and ``KITH_WEBFORMS_<KEY>``
    variables override single keys. Plugins of one family (``privacy.rights``,
    ``privacy.requests``...) may share a section, each declaring its own keys. Collecting.
    Sync only."""


@hookspec
def kith_register_personal_fields(register: Callable[[PersonalField], None]) -> None:
    """Declare every column of this plugin's tables that holds personal data. An undeclared
    personal column is a start-up error. Collecting. Sync only."""


@hookspec
def kith_register_custom_fields(register: Callable[[FieldCreate], None]) -> None:
    """Declare the custom fields of contacts this plugin needs (``register(FieldCreate(
    name="loyalty_tier", type="choice", choices=["gold", "silver"]))``). ``kith migrate``
    adds each one that does not exist yet, recorded as declared by the plugin, and reports
    it; a field that exists already is never changed (an admin may have changed it), and
    the report says how it differs. A field of the same name in ``[[fields]]`` of
    ``kith.toml`` wins over a plugin's. Values are read and written like any custom field's
    (``ContactService``, ``fields`` of ``ContactCreate``). Collecting. Sync only."""


@hookspec
def kith_register_purposes(register: Callable[[Purpose], None]) -> None:
    """Declare the purposes this plugin processes personal data for, each with its lawful basis
    (``register(Purpose(name="newsletter", description=..., lawful_basis="consent"))``).
    Personal fields, consent events and retention rules refer to purposes by name; a purpose of
    the same name in ``[privacy.purposes.<name>]`` of ``kith.toml`` overrides a plugin's.
    Collecting. Sync only."""


@hookspec
def kith_register_recipients(register: Callable[[Recipient], None]) -> None:
    """Declare every recipient this plugin sends personal data to (a provider, another system,
    a webhook consumer), for the record of processing and so that rectification, restriction
    and erasure can be passed on (Art. 19). Collecting. Sync only."""


@hookspec(firstresult=True)
def kith_field_protector(kith: Kith) -> FieldProtector | None:
    """Provide the protector that encrypts personal fields (``privacy.encryption`` does). First
    result wins. Sync only."""


@hookspec(firstresult=True)
def kith_key_provider(settings: Settings) -> KeyProvider | None:
    """Provide the key-encryption keys (KEKs) of this installation: an object implementing
    :class:`kith.protection.KeyProvider` (wrap, unwrap, derive, create and retire KEKs by id).

    The ``privacy.encryption`` plugin's provider, registered to run last, keeps the KEKs in a
    key file in
    ``KITH_HOME`` (mode 0600). A plugin that keeps them in a KMS, an HSM or Vault returns its
    provider here and wins; return None to leave the choice to the next plugin (for example
    when the plugin's ``[mykms]`` section is not configured). Called once when Kith opens. First
    result wins. Sync only (the provider's own methods are async)."""


@hookspec(firstresult=True)
def kith_mail_transport(settings: Settings) -> MailTransport | None:
    """Provide the transport outgoing email goes through (:class:`kith.Mailer` queues it; the
    event bus sends it and retries a send that raises). Return an object with
    ``async send(message)`` taking an :class:`email.message.EmailMessage`, for a mail API or a
    provider's SDK; return None to leave the choice to the next plugin (for example when your
    own settings section is not configured). Without an answer Kith sends through the SMTP
    server of ``[mail]``. Called for each message. First result wins. Sync only (the
    transport's ``send`` is async)."""


@hookspec
@may_be_async
def kith_after_migrate(kith: Kith) -> Awaitable[None] | None:
    """Called by ``kith migrate`` (and ``kith init``) on an opened Kith once every app's schema
    migrations are applied: data migrations that need Kith's services run here (the privacy
    plugin encrypts personal data stored before encryption existed). It runs again after an
    interrupted run, so it must be idempotent and resumable. Collecting. May be async."""


@hookspec
@may_be_async
def kith_startup(kith: Kith) -> Awaitable[None] | None:
    """Called once when Kith opens (server, worker or CLI), after the database is connected,
    and only when it is fully migrated, so a plugin's own tables exist (``kith migrate`` opens
    Kith before they do). Collecting. May be async."""


@hookspec
@may_be_async
def kith_shutdown(kith: Kith) -> Awaitable[None] | None:
    """Called once when Kith closes (server shutdown, end of a command, worker stop), before
    the database is closed: write what the plugin still holds in memory and stop its
    background work. An error is logged and does not keep the others from running.
    Collecting. May be async."""


@hookspec
@may_be_async
def kith_subject_export(
    kith: Kith, contact_id: uuid.UUID
) -> Awaitable[ExportSection | None] | ExportSection | None:
    """Return everything this plugin holds about one data subject, for an access or
    portability request. Every plugin that holds personal data must answer. Collecting.
    May be async."""


@hookspec
@may_be_async
def kith_subject_erase(
    kith: Kith, contact_id: uuid.UUID
) -> Awaitable[list[ErasureOutcome]] | list[ErasureOutcome] | None:
    """Erase (or anonymise, or keep under a recorded legal hold) everything this plugin holds
    about one data subject, and say what was done where. Must be idempotent: an interrupted
    erasure calls it again. Collecting. May be async."""


@hookspec
@may_be_async
def kith_subject_erase_preview(
    kith: Kith, contact_id: uuid.UUID
) -> Awaitable[list[ErasureOutcome]] | list[ErasureOutcome] | None:
    """Say what :func:`kith_subject_erase` would do for one data subject, changing nothing:
    the same sources, locations, methods, counts and grounds it would report now. Erasure
    previews show it before a compliance officer approves, and a test compares the two.
    Collecting. May be async."""


@hookspec
@may_be_async
def kith_subject_holds(
    kith: Kith, contact_id: uuid.UUID
) -> Awaitable[list[SubjectHold]] | list[SubjectHold] | None:
    """Which of a data subject's interactions a law requires to keep through an erasure (a
    legal hold, e.g. orders kept for tax law). Core's own erasure and its preview ask before
    they delete interactions: held ones are re-encrypted under the hold's key and kept, and
    the contact stays as a nameless shell while any are kept. ``privacy.rights`` answers from
    ``[privacy.legal_holds]``. Collecting. May be async."""


@hookspec
@may_be_async
def kith_subject_merge(
    kith: Kith,
    merge_id: uuid.UUID,
    survivor: uuid.UUID,
    losers: list[uuid.UUID],
    choices: dict[str, uuid.UUID],
) -> Awaitable[Any] | Any:
    """Contacts ``losers`` are being merged into ``survivor`` (``kith contacts merge``,
    ``POST /api/contacts/{id}/merge``): move every row this plugin holds about a loser to the
    survivor. Every plugin that holds rows about data subjects must answer.

    Called inside the merge's transaction, before core moves its own rows and deletes the
    losers' contact records, so the losers still exist. Personal columns of a moved row must
    end up under the survivor's data key (nothing of the person may stay under a key an
    erasure of the survivor would not destroy): :func:`kith.move_subject_rows` moves rows
    and re-encrypts them in one call. ``choices`` are the caller's picks (``name``,
    ``fields.<name>``... mapped to the contact whose value wins), for a plugin that keeps one
    value per person.

    Return what undoing needs (ids of the rows moved, rows removed with their values), as
    plain data that encodes to JSON, or None when nothing was moved: Kith keeps it in the merge
    record, encrypted under the survivor's key, and hands it back to
    :func:`kith_subject_unmerge`. Raise a :class:`kith.errors.KithError` (e.g. ``Conflict``)
    to refuse the merge; nothing is changed then. Collecting. May be async."""


@hookspec
@may_be_async
def kith_subject_unmerge(
    kith: Kith,
    merge_id: uuid.UUID,
    survivor: uuid.UUID,
    losers: list[uuid.UUID],
    note: Any,
) -> Awaitable[None] | None:
    """Undo this plugin's part of a merge (``POST /api/merges/{id}/undo``): ``note`` is what
    its :func:`kith_subject_merge` returned for this merge (None if it returned nothing).
    Move the rows back to the losers, re-encrypted under each loser's key
    (:func:`kith.move_subject_rows` again), and restore rows the merge removed.

    Called inside the undo's transaction after core has re-created the losers' contact
    records with their ids, emails, phones, custom fields and interactions. Rows created for
    the survivor after the merge stay with it. Raise a :class:`kith.errors.KithError` to
    refuse the undo; nothing is changed then. Collecting. May be async."""


@hookspec
@may_be_async
def kith_check_new_contact(
    kith: Kith,
    contact_id: uuid.UUID,
    emails: list[str],
    phones: list[str],
    override_reason: str | None,
    actor: Actor,
) -> Awaitable[None] | None:
    """Called by ``ContactService.create`` inside its transaction, before the contact is
    written, with the normalised emails and phones and the id the contact will get; and by
    ``ContactService.update`` when a change gives a contact emails or phones it did not hold,
    with its id and only those new values (before anything is written). Raise a
    :class:`kith.errors.KithError` (e.g. ``Conflict``) to refuse the contact or the change; a
    ``field`` such as ``emails[0]`` counts in the lists passed, and core renames it to the
    position in the request. ``privacy.rights`` refuses addresses on its suppression list
    (people who asked to be erased) unless ``override_reason`` is given, and then records the
    override in the same transaction. Collecting. May be async."""


@hookspec
@may_be_async
def kith_contact_card_sections(
    kith: Kith, contact_id: uuid.UUID, actor: Actor, csrf_input: str, language: str
) -> Awaitable[CardSection | None] | CardSection | None:
    """A section of the web UI's contact card for the contact ``contact_id`` as ``actor``
    sees it (a conversation and its reply form, say), or None to add nothing. The section's
    ``html`` is put in the card as it is, so the plugin escapes every value it shows; a form
    in it carries ``csrf_input`` (the hidden field the web UI checks) and posts to a route of
    the plugin. ``language`` is the reader's: ``kith.web.translator(language)`` translates the
    section's own words (the title is translated by the card). Sections follow the card's
    own, in the order of ``order``, then ``key``. Collecting. May be async."""


@hookspec
@may_be_async
def kith_check_processing(
    kith: Kith, contact_id: uuid.UUID, activity: str
) -> Awaitable[str | None] | str | None:
    """May a contact's personal data be processed for ``activity`` now? Return a reason
    (a sentence without personal data) to refuse, or None. Core asks before changing a
    contact or its interactions (``contact.update``, ``contact.archive``,
    ``interaction.log``, ``interaction.update``) and answers 409 with the reason; before
    exporting a contact to CSV (``contact.export``) and reading its emails and phones for the
    data quality report (``contact.quality_check``), leaving out the contacts refused; plugins
    ask before sending data out (``webhook.delivery``...). An activity ``purpose:<name>`` asks
    whether the contact's data may be used for a declared purpose (consent, objections). The
    ``privacy.rights`` plugin refuses for a restricted contact (Art. 18 GDPR) and, for ``purpose:``
    activities, when the consent ledger gives no basis.
    :func:`kith.check_processing` calls it. Collecting. May be async."""


@hookspec
@may_be_async
def kith_deliver_notification(kith: Kith, notice: UserNotice) -> Awaitable[None] | None:
    """Deliver a notice to its user through a channel of your plugin (an email, a chat
    message, a push). Core keeps every notice in the in-app list (``GET /api/notifications``)
    and then calls every implementation; when one raises, all are called again later (up to
    eight attempts), so an implementation must be idempotent by ``notice.id``. The notice
    holds ids only; read names through the services (audited) and write no personal value to
    logs. Collecting. May be async."""


@hookspec
@may_be_async
def kith_notify_recipient(
    kith: Kith,
    recipient: Recipient,
    action: RecipientAction,
    contact_id: uuid.UUID,
    notice_id: uuid.UUID,
) -> Awaitable[RecipientNotice | None] | RecipientNotice | None:
    """Tell one recipient that a data subject's data was rectified, restricted (or the
    restriction lifted) or erased (Art. 19 GDPR). Answer only for recipients your plugin
    registered (``recipient.owner``), None otherwise. ``notice_id`` is stable for one notice:
    after a crash the call is repeated with the same id, so use it to send a notice once.
    Say in ``count`` how many of the recipient's endpoints (subscriptions, accounts...) were
    told. Collecting. May be async."""


@hookspec
@may_be_async
def kith_notify_recipient_preview(
    kith: Kith,
    recipient: Recipient,
    action: RecipientAction,
    contact_id: uuid.UUID,
) -> Awaitable[RecipientNotice | None] | RecipientNotice | None:
    """What :func:`kith_notify_recipient` would answer for this subject, telling nobody and
    changing nothing: the outcome and the ``count`` of endpoints that would be told, for the
    preview a compliance officer approves before an erasure, rectification or restriction.
    Answer only for recipients your plugin registered, None otherwise; without an answer the
    preview counts 0. Collecting. May be async."""


@hookspec
@may_be_async
def kith_record_consent(
    kith: Kith, contact_id: uuid.UUID, consent: ConsentGiven, actor: Actor
) -> Awaitable[ConsentReceipt | None] | ConsentReceipt | None:
    """A person gave consent through a plugin's channel (:func:`kith.record_consent` calls
    this): record it in the consent ledger, tied to the notice text they saw (published as a
    new notice version when it differs from the current one), and answer what was recorded.
    Called inside the caller's transaction, so a refused submission records nothing. The
    ``privacy.rights`` plugin answers; None from plugins that keep no ledger. Collecting.
    May be async."""


@hookspec
@may_be_async
def kith_subject_consents(
    kith: Kith, contact_id: uuid.UUID
) -> Awaitable[list[ConsentLine] | None] | list[ConsentLine] | None:
    """Where the contact stands for each purpose, for the contact's card
    (:func:`kith.subject_consents` calls this and reports the read). The ``privacy.rights``
    plugin answers from its consent ledger; None from plugins that keep none. Collecting.
    May be async."""


@hookspec
@may_be_async
def kith_change_consent(
    kith: Kith,
    contact_id: uuid.UUID,
    purpose: str,
    action: str,
    channel: str,
    actor: Actor,
) -> Awaitable[ConsentReceipt | None] | ConsentReceipt | None:
    """A user records that the contact gave (``action`` ``given``, under the purpose's current
    notice) or withdrew (``withdrawn``) consent, from a channel such as the web UI
    (:func:`kith.change_consent` calls this): record it in the consent ledger, exactly as its
    API does, and answer what was recorded. The ``privacy.rights`` plugin answers; None from
    plugins that keep no ledger. Collecting. May be async."""


@hookspec
@may_be_async
def kith_record_access(kith: Kith, access: Access) -> Awaitable[None] | None:
    """Someone read, created, changed, exported or erased a data subject's personal data
    (Kith's services report every read, list, search and change, whatever the channel; the
    ``privacy.rights`` plugin keeps the audit log). Plugins that show
    or change personal data through their own routes report it too, with
    :func:`kith.record_access`. Collecting. May be async."""
