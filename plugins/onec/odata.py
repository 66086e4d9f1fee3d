"""A client for 1C's standard OData interface (``…/odata/standard.odata``), for two-way sync
of counterparties: pull ``Catalog_Контрагенты`` (and ``Catalog_КонтактныеЛицаПартнеров``
where the configuration has it), push Kith's new organizations and people, and tell 1C of
rectifications and erasures.

Pulls are incremental by ``DataVersion``: a first pass reads only each record's key and
version (paged), and only records whose version changed since the last pull are read in
full. ``DeletionMark`` archives. Conflicts follow the importer's policy: 1C wins legal details
(names, ИНН, КПП, addresses), Kith wins contact details (emails, phones); each is recorded.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
from kith import Kith, KithError, get_logger, new_id, utcnow
from kith.plugins.onec.commerceml import ContactPoint, Counterparty
from kith.plugins.onec.importer import COUNTERPARTY, ImportCounts, OnecImporter
from kith.plugins.onec.mapping import SYNCED_FIELDS, counterparty_values
from kith.plugins.onec.query import counterparty_of, unlinked_contacts
from kith.plugins.onec.settings import OnecSettings, onec_settings
from kith.plugins.onec.tables import OnecExchange, OnecLink, OnecNotice

COUNTERPARTIES = "Catalog_Контрагенты"
CONTACT_PERSONS = "Catalog_КонтактныеЛицаПартнеров"
JSON = {"$format": "json"}

_log = get_logger(__name__)


class OdataError(KithError):
    """1C's OData interface could not be reached or refused a request."""

    status_code = 502
    title = "1C did not answer as expected"


class SyncReport(msgspec.Struct, kw_only=True):
    """What one pull or push did."""

    read: int = 0
    changed: int = 0
    pushed: int = 0
    notices_sent: int = 0
    notices_failed: int = 0
    counts: ImportCounts = msgspec.field(default_factory=ImportCounts)


def _key(ref: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F-]{36}", ref):
        raise OdataError(f"1C sent a key that is not a GUID: {ref[:40]!r}")
    return f"(guid'{ref}')"


def record_counterparty(record: dict[str, Any]) -> Counterparty:
    """An OData counterparty record (or contact person) as a :class:`Counterparty`."""
    legal = str(record.get("ЮридическоеФизическоеЛицо", ""))
    inn = str(record.get("ИНН", "") or "")
    is_person = legal == "ФизическоеЛицо" or (not legal and len(inn) == 12)
    name = str(record.get("Description", "") or "")
    full = str(record.get("НаименованиеПолное", "") or "")
    points: list[ContactPoint] = []
    legal_address = actual_address = ""
    for row in record.get("КонтактнаяИнформация", []) or []:
        kind = str(row.get("Тип", ""))
        shown = str(row.get("Представление", "") or "")
        if kind == "АдресЭлектроннойПочты":
            value = str(row.get("АдресЭП", "") or shown)
            if value:
                points.append(ContactPoint(kind="email", value=value))
        elif kind in ("Телефон", "Факс"):
            value = str(row.get("НомерТелефона", "") or shown)
            if value:
                points.append(
                    ContactPoint(kind="phone", value=value, label="fax" if kind == "Факс" else "")
                )
        elif kind == "Адрес" and shown:
            if "юр" in str(row.get("Вид", "")).lower() and not legal_address:
                legal_address = shown
            elif not actual_address:
                actual_address = shown
            elif not legal_address:
                legal_address = shown
    family = given = middle = ""
    if is_person:
        parts = (full or name).split()
        parts += [""] * (3 - len(parts))
        family, given, middle = parts[0], parts[1], " ".join(parts[2:])
    return Counterparty(
        onec_id=str(record.get("Ref_Key", "")),
        kind="person" if is_person else "organization",
        name=name,
        full_name=full,
        family_name=family,
        given_name=given,
        middle_name=middle,
        inn=inn,
        kpp=str(record.get("КПП", "") or ""),
        legal_address=legal_address,
        actual_address=actual_address,
        points=points,
        deleted=bool(record.get("DeletionMark", False)),
    )


def counterparty_record(item: Counterparty) -> dict[str, Any]:
    """What Kith sends 1C to create or rectify a counterparty."""
    rows: list[dict[str, Any]] = []
    for point in item.points:
        if point.kind == "email":
            rows.append(
                {
                    "Тип": "АдресЭлектроннойПочты",
                    "Представление": point.value,
                    "АдресЭП": point.value,
                }
            )
        else:
            rows.append(
                {"Тип": "Телефон", "Представление": point.value, "НомерТелефона": point.value}
            )
    for address in (item.legal_address, item.actual_address):
        if address:
            rows.append({"Тип": "Адрес", "Представление": address})
    full = (
        " ".join(p for p in (item.family_name, item.given_name, item.middle_name) if p)
        if item.kind == "person"
        else item.full_name
    )
    return {
        "Description": item.name,
        "НаименованиеПолное": full or item.name,
        "ЮридическоеФизическоеЛицо": "ФизическоеЛицо"
        if item.kind == "person"
        else "ЮридическоеЛицо",
        "ИНН": item.inn,
        "КПП": item.kpp,
        "КонтактнаяИнформация": [{"LineNumber": str(n), **row} for n, row in enumerate(rows, 1)],
    }


class OdataClient:
    """Requests to 1C's OData interface, paged."""

    def __init__(self, settings: OnecSettings, transport: httpx.AsyncBaseTransport | None = None):
        if not settings.odata_url:
            raise OdataError("set odata_url in the [onec] section of kith.toml to sync over OData")
        self.settings = settings
        auth = (settings.odata_user, settings.odata_password) if settings.odata_user else None
        self.http = httpx.AsyncClient(
            base_url=settings.odata_url.rstrip("/") + "/",
            auth=auth,
            timeout=settings.odata_timeout_seconds,
            transport=transport,
            headers={"Accept": "application/json"},
        )

    async def close(self) -> None:
        await self.http.aclose()

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise OdataError(
                f"1C's OData interface is unreachable: {exc.__class__.__name__}"
            ) from None
        return response

    async def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = await self._send(method, path, **kwargs)
        if response.status_code >= 400:
            raise OdataError(
                f"1C answered {method} {path.split('?')[0]} with HTTP {response.status_code}"
            )
        try:
            body = response.json()
        except ValueError:
            raise OdataError(f"1C's answer to {method} {path.split('?')[0]} is not JSON") from None
        if not isinstance(body, dict):
            raise OdataError(f"1C's answer to {method} {path.split('?')[0]} is not an object")
        return body

    async def pages(
        self, entity: str, select: str | None = None
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Every record of ``entity``, a page at a time: by ``odata.nextLink`` when 1C gives
        one, else by ``$skip`` until a short page."""
        size = self.settings.odata_page_size
        skip = 0
        params: dict[str, Any] = {**JSON, "$top": size, "$orderby": "Ref_Key"}
        if select:
            params["$select"] = select
        next_link: str | None = None
        while True:
            if next_link:
                body = await self._json("GET", next_link)
            else:
                body = await self._json("GET", entity, params={**params, "$skip": skip})
            rows = body.get("value", [])
            if not isinstance(rows, list):
                raise OdataError(f"1C's page of {entity} holds no list of records")
            if rows:
                yield rows
            next_link = body.get("odata.nextLink") or body.get("@odata.nextLink")
            if not next_link and len(rows) < size:
                return
            skip += len(rows)
            if not rows:
                return

    async def exists(self, entity: str) -> bool:
        response = await self._send("GET", entity, params={**JSON, "$top": 0})
        return response.status_code < 400

    async def read(self, entity: str, ref: str) -> dict[str, Any]:
        return await self._json("GET", f"{entity}{_key(ref)}", params=JSON)

    async def create(self, entity: str, record: dict[str, Any]) -> dict[str, Any]:
        return await self._json("POST", entity, params=JSON, json=record)

    async def patch(self, entity: str, ref: str, record: dict[str, Any]) -> dict[str, Any]:
        return await self._json("PATCH", f"{entity}{_key(ref)}", params=JSON, json=record)


class OdataSync:
    """Pull, push and notices, as ``kith onec pull|push`` and the worker run them."""

    def __init__(self, kith: Kith, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.kith = kith
        self.settings = onec_settings(kith)
        self.transport = transport

    async def _versions(self) -> dict[str, str]:
        rows = await OnecLink.select(OnecLink.onec_id, OnecLink.data_version).where(
            OnecLink.kind == COUNTERPARTY
        )
        return {row["onec_id"]: row["data_version"] for row in rows}

    async def pull(self) -> SyncReport:
        """Bring 1C's changed counterparties (and contact persons) into Kith."""
        client = OdataClient(self.settings, self.transport)
        report = SyncReport()
        importer = OnecImporter(self.kith)
        try:
            known = await self._versions()
            async for page in client.pages(COUNTERPARTIES, select="Ref_Key,DataVersion"):
                for row in page:
                    report.read += 1
                    ref = str(row.get("Ref_Key", ""))
                    if known.get(ref) == str(row.get("DataVersion", "")):
                        continue
                    record = await client.read(COUNTERPARTIES, ref)
                    await self._apply(importer, record, report)
            if await client.exists(CONTACT_PERSONS):
                async for page in client.pages(CONTACT_PERSONS):
                    for record in page:
                        report.read += 1
                        ref = str(record.get("Ref_Key", ""))
                        if known.get(ref) == str(record.get("DataVersion", "")):
                            continue
                        await self._apply(importer, record, report, person=True)
        finally:
            await client.close()
        await _log_run(self.kith, "pull", report)
        return report

    async def _apply(
        self,
        importer: OnecImporter,
        record: dict[str, Any],
        report: SyncReport,
        person: bool = False,
    ) -> None:
        item = record_counterparty(record)
        if person:
            item.kind = "person"
            parts = [*(item.full_name or item.name).split(), "", ""]
            item.family_name, item.given_name = parts[0], parts[1]
        owner = None
        owner_ref = str(record.get("Owner_Key", "") or "")
        if owner_ref:
            link = (
                await OnecLink.select(OnecLink.kith_id)
                .where((OnecLink.kind == COUNTERPARTY) & (OnecLink.onec_id == owner_ref))
                .first()
            )
            owner = None if link is None else link["kith_id"]
        counts = ImportCounts()
        try:
            async with self.kith.unit_of_work(importer.actor):
                if importer.fields is None:
                    from kith.plugins.onec.fields import usable_fields

                    importer.fields = await usable_fields(self.kith)
                await importer.counterparty(
                    item,
                    counts,
                    organization_id=owner,
                    data_version=str(record.get("DataVersion", "")),
                )
        except KithError as exc:
            counts = ImportCounts(failed=1, errors=[f"counterparty {item.onec_id!r}: {exc}"])
        report.changed += 1 if counts.changed() else 0
        report.counts.add(counts)

    async def push(self) -> SyncReport:
        """Send Kith's new organizations and people to 1C, then the notices owed to it."""
        client = OdataClient(self.settings, self.transport)
        report = SyncReport()
        try:
            for contact in await unlinked_contacts(self.kith, "odata", self.settings.query_limit):
                item = counterparty_of(contact)
                created = await client.create(COUNTERPARTIES, counterparty_record(item))
                ref = str(created.get("Ref_Key", ""))
                _key(ref)
                region = self.settings.phone_region
                values = counterparty_values(item, region)
                importer = OnecImporter(self.kith)
                await OnecLink.insert(
                    OnecLink(
                        id=new_id(),
                        kind=COUNTERPARTY,
                        onec_id=ref,
                        kith_id=contact.id,
                        contact_id=contact.id,
                        synced={f: importer._keyed(f, values[f]) for f in SYNCED_FIELDS},
                        data_version=str(created.get("DataVersion", "")),
                        state="active",
                        updated_at=utcnow(),
                    )
                )
                report.pushed += 1
            await self._notices(client, report)
        finally:
            await client.close()
        await _log_run(self.kith, "push", report)
        return report

    async def _notices(self, client: OdataClient, report: SyncReport) -> None:
        """Rectifications (the contact's current details) and erasures (the deletion mark)."""
        from kith import ContactService

        contacts = ContactService(self.kith, channel="onec")
        rows = await OnecNotice.select().where(OnecNotice.state.is_in(["pending", "failed"]))
        for row in rows:
            try:
                if row["action"] == "erasure":
                    await client.patch(COUNTERPARTIES, row["onec_id"], {"DeletionMark": True})
                else:
                    link = (
                        await OnecLink.select()
                        .where(
                            (OnecLink.kind == COUNTERPARTY) & (OnecLink.onec_id == row["onec_id"])
                        )
                        .first()
                    )
                    if link is not None and await contacts.exists(link["kith_id"]):
                        from kith.plugins.onec.importer import ONEC_ACTOR

                        contact = await contacts.get(link["kith_id"], ONEC_ACTOR)
                        record = counterparty_record(counterparty_of(contact, row["onec_id"]))
                        await client.patch(COUNTERPARTIES, row["onec_id"], record)
            except OdataError as exc:
                report.notices_failed += 1
                await OnecNotice.update(
                    {
                        OnecNotice.state: "failed",
                        OnecNotice.attempts: OnecNotice.attempts + 1,
                        OnecNotice.error: str(exc),
                    }
                ).where(OnecNotice.id == row["id"])
                continue
            report.notices_sent += 1
            await OnecNotice.update(
                {
                    OnecNotice.state: "sent",
                    OnecNotice.attempts: OnecNotice.attempts + 1,
                    OnecNotice.sent_at: utcnow(),
                    OnecNotice.error: "",
                }
            ).where(OnecNotice.id == row["id"])


async def _log_run(kith: Kith, action: str, report: SyncReport) -> None:
    counts = {
        name: value
        for name, value in msgspec.structs.asdict(report.counts).items()
        if name != "errors" and value
    }
    counts.update(
        {
            name: getattr(report, name)
            for name in ("read", "changed", "pushed", "notices_sent", "notices_failed")
            if getattr(report, name)
        }
    )
    now = utcnow()
    await OnecExchange.insert(
        OnecExchange(
            id=new_id(),
            channel="odata",
            action=action,
            state="failed" if report.counts.failed else "done",
            counts=counts,
            error="\n".join(report.counts.errors),
            started_at=now,
            finished_at=now,
        )
    )


async def scheduled_sync(kith: Kith) -> SyncReport | None:
    """The worker's job: pull, then push. An unreachable 1C is logged and tried next time."""
    sync = OdataSync(kith)
    try:
        await sync.pull()
        return await sync.push()
    except OdataError as exc:
        _log.warning("1C OData sync failed", reason=str(exc))
        now = utcnow()
        await OnecExchange.insert(
            OnecExchange(
                id=new_id(),
                channel="odata",
                action="sync",
                state="failed",
                error=str(exc),
                started_at=now,
                finished_at=now,
            )
        )
        return None


async def record_failure(kith: Kith, action: str, reason: str) -> None:
    now = utcnow()
    await OnecExchange.insert(
        OnecExchange(
            id=new_id(),
            channel="odata",
            action=action,
            state="failed",
            error=reason,
            started_at=now,
            finished_at=now,
        )
    )


__all__ = ["OdataClient", "OdataError", "OdataSync", "SyncReport", "uuid"]
