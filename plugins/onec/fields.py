"""The custom fields 1C's counterparties bring: tax ids, addresses, patronymic."""

from __future__ import annotations

import contextlib

from kith import FieldCreate, FieldService, Kith, KithError

SOURCE = "onec"

INN = "inn"
KPP = "kpp"
MIDDLE_NAME = "middle_name"
LEGAL_ADDRESS = "legal_address"
ACTUAL_ADDRESS = "actual_address"

# An individual entrepreneur's ИНН and address are a person's, so they are personal fields
# (encrypted, exported, erased); the ИНН is searchable: counterparties are matched by it.
CUSTOM_FIELDS: tuple[FieldCreate, ...] = (
    FieldCreate(
        name=INN,
        type="text",
        label="ИНН (taxpayer number)",
        personal=True,
        searchable=True,
        category="identity",
        purpose="accounting",
    ),
    FieldCreate(name=KPP, type="text", label="КПП (registration reason code)"),
    FieldCreate(
        name=MIDDLE_NAME,
        type="text",
        label="Patronymic (Отчество)",
        personal=True,
        category="identity",
        purpose="accounting",
    ),
    FieldCreate(
        name=LEGAL_ADDRESS,
        type="text",
        label="Legal address",
        personal=True,
        category="contact_details",
        purpose="accounting",
    ),
    FieldCreate(
        name=ACTUAL_ADDRESS,
        type="text",
        label="Actual address",
        personal=True,
        category="contact_details",
        purpose="accounting",
    ),
)


async def usable_fields(kith: Kith) -> frozenset[str]:
    """The plugin's custom fields an import may fill: each is added first if ``kith migrate``
    has not added it yet; one an admin archived is left out."""
    service = FieldService(kith)
    existing = {field.name: field for field in await service.declared(include_archived=True)}
    for field in CUSTOM_FIELDS:
        if field.name not in existing:
            # Added at the same moment by another import, or refused: read below.
            with contextlib.suppress(KithError):
                existing[field.name] = await service.add(field, SOURCE)
    existing = {field.name: field for field in await service.declared()}
    return frozenset(f.name for f in CUSTOM_FIELDS if f.name in existing)
