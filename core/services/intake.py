"""Contacts arriving from integrations (a call, a form submission, a message, a 1C document):
the contact who already holds one of the given emails or phones, or a new one.

However many requests about the same new person arrive at once, exactly one contact is made:
each request locks the blind-index keys of the emails and phones it brings, looks, and only
then creates (see ``Database.lock``)."""

from __future__ import annotations

import uuid

import msgspec
from kith.actor import SYSTEM, Actor
from kith.schemas import ContactCreate, ContactOut
from kith.services.contacts import ContactService


class Intake(msgspec.Struct, frozen=True, kw_only=True):
    """What ``ContactIntake.find_or_create`` did."""

    contact: ContactOut
    created: bool
    # How an existing contact was found ("email" or "phone"); None for a new one.
    matched_by: str | None = None


class ContactIntake:
    """Find-or-create by email and phone, for every channel that brings in contacts."""

    def __init__(self, contacts: ContactService) -> None:
        self.contacts = contacts
        self.kith = contacts.kith

    def _keys(self, data: ContactCreate) -> list[tuple[str, str]]:
        """(kind, normalised value) of every email, then every phone, in the given order."""
        points = self.contacts._points(data.emails, data.phones)
        return [(kind, value) for kind, value, _, _ in points]

    async def match(self, data: ContactCreate) -> tuple[uuid.UUID, str] | None:
        """The contact holding one of ``data``'s emails or phones. Emails before phones (a phone
        may be shared by an office); among several holders, the one for whom the value is
        primary, then the oldest."""
        for kind, value in self._keys(data):
            primary = await self.contacts.find_ids_by(kind, value, primary_only=True)
            holders = primary or await self.contacts.find_ids_by(kind, value)
            if holders:
                # Contact ids are time-ordered, so the smallest is the oldest.
                return holders[0], kind
        return None

    async def find_or_create(self, data: ContactCreate, actor: Actor = SYSTEM) -> Intake:
        """The existing contact holding one of ``data``'s emails or phones, read as ``actor``
        (and audited so); otherwise a new contact made from ``data``. A suppressed person is
        refused as ``create`` refuses them (``ProcessingRefused``)."""
        keys = self._keys(data)
        async with self.kith.unit_of_work(actor):
            await self.kith.database.lock(
                f"contact-point\x00{kind}\x00{self.kith.protector.lookup_key(kind, value)}"
                for kind, value in keys
            )
            found = await self.match(data)
            if found is None:
                contact = await self.contacts.create(data, actor)
                return Intake(contact=contact, created=True)
        contact_id, matched_by = found
        return Intake(
            contact=await self.contacts.get(contact_id, actor), created=False, matched_by=matched_by
        )
