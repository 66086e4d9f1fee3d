"""The plugin module named by the ``kith`` entry point: Kith registers it with pluggy, so each
function below marked ``@hookimpl`` is called for the hook of the same name.

The register-style hooks run once, when Kith loads its plugins; they only declare things. The
code that does the work (the subscriber, the routes, the command) runs later.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import click
import msgspec
from kith import (
    ErasureOutcome,
    EventType,
    ExportSection,
    FieldCreate,
    Kith,
    PersonalField,
    Subscriber,
    hookimpl,
)
from piccolo.conf.apps import AppConfig

from kith_example.welcomes import (
    TABLE,
    WELCOME_CHANNEL,
    WELCOMED,
    ExampleSettings,
    on_contact_created,
    open_note,
)


@hookimpl
def kith_register_apps(register: Callable[[AppConfig], None]) -> None:
    from kith_example.piccolo_app import APP_CONFIG

    register(APP_CONFIG)


@hookimpl
def kith_register_routes(register: Callable[[Any], None]) -> None:
    from kith_example.routes import list_welcomes, welcome_note, welcomed

    register(list_welcomes)
    register(welcomed)
    register(welcome_note)


@hookimpl
def kith_register_commands(register: Callable[[click.Command], None]) -> None:
    # Imported here: the CLI module pulls in Kith's command-line plumbing, which only the
    # `kith` command needs.
    from kith_example.cli import example

    register(example)


@hookimpl
def kith_register_event_types(register: Callable[[EventType], None]) -> None:
    register(EventType(WELCOMED, "A contact on the welcome list was welcomed.", ("contact_id",)))


@hookimpl
def kith_register_subscribers(register: Callable[[Subscriber], None]) -> None:
    # The name is stored with every delivery in the outbox: keep it stable.
    register(
        Subscriber(name="example.welcome", events=("contact.created",), handler=on_contact_created)
    )


@hookimpl
def kith_register_settings(register: Callable[[str, type[msgspec.Struct]], None]) -> None:
    register("example", ExampleSettings)


@hookimpl
def kith_register_personal_fields(register: Callable[[PersonalField], None]) -> None:
    # Declared, the column is encrypted at rest, exported, erased and listed in the record of
    # processing; Kith refuses to start with a secret=True column nobody declares.
    register(
        PersonalField(
            table=TABLE,
            column="note",
            category="communications",
            purposes=("customer_relationship",),
            description="An agent's note on how to welcome the contact",
            owner="example",
        )
    )


@hookimpl
def kith_register_custom_fields(register: Callable[[FieldCreate], None]) -> None:
    # `kith migrate` adds the field when it is missing and reports it. It is an ordinary
    # custom field from then on: an admin may change or archive it, and Kith never changes it
    # back to this declaration.
    register(
        FieldCreate(
            name=WELCOME_CHANNEL,
            type="choice",
            label="How the contact likes to be welcomed",
            choices=["email", "phone", "visit"],
        )
    )


# A welcome row says something about a person (that they are on the list, when they were
# welcomed, and how to welcome them), so the plugin answers for it in access requests and
# erasure like any plugin holding data about a data subject.


@hookimpl
async def kith_subject_export(kith: Kith, contact_id: uuid.UUID) -> ExportSection | None:
    from kith_example.tables import Welcome

    rows = await Welcome.select().where(Welcome.contact_id == contact_id)
    if not rows:
        return None
    return ExportSection(
        source="example",
        description="Whether you are on our welcome list, when you were welcomed, and our note "
        "on how to welcome you",
        tables={
            "welcomes": [
                {
                    "added_at": row["created_at"].isoformat(),
                    "welcomed_at": row["welcomed_at"].isoformat() if row["welcomed_at"] else None,
                    "note": await open_note(kith, row),
                }
                for row in rows
            ]
        },
    )


async def _erase(contact_id: uuid.UUID, dry_run: bool) -> list[ErasureOutcome]:
    from kith_example.tables import Welcome

    where = Welcome.contact_id == contact_id
    if dry_run:
        count = await Welcome.count().where(where)
    else:
        count = len(await Welcome.delete().where(where).returning(Welcome.id))
    return [
        ErasureOutcome(
            source="example",
            location="kith_example_welcome",
            method="deleted" if count else "not_present",
            count=count,
        )
    ]


@hookimpl
async def kith_subject_erase_preview(kith: Any, contact_id: uuid.UUID) -> list[ErasureOutcome]:
    return await _erase(contact_id, dry_run=True)


@hookimpl
async def kith_subject_erase(kith: Any, contact_id: uuid.UUID) -> list[ErasureOutcome]:
    return await _erase(contact_id, dry_run=False)


# When duplicate contacts are merged, a plugin holding rows about them moves those rows to the
# surviving contact, and moves them back if the merge is undone.


@hookimpl
async def kith_subject_merge(
    kith: Kith,
    merge_id: uuid.UUID,
    survivor: uuid.UUID,
    losers: list[uuid.UUID],
    choices: dict[str, uuid.UUID],
) -> Any:
    from kith_example.merging import merge

    return await merge(kith, survivor, losers)


@hookimpl
async def kith_subject_unmerge(
    kith: Kith, merge_id: uuid.UUID, survivor: uuid.UUID, losers: list[uuid.UUID], note: Any
) -> None:
    from kith_example.merging import unmerge

    await unmerge(kith, survivor, note)
