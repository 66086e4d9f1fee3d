"""The CommerceML exchange as 1C drives it ("exchange with the site"): one request per step,
each answered with plain text 1C reads line by line.

    checkauth → success / <cookie name> / <cookie value>
    init      → zip=yes|no / file_limit=<bytes> [/ version=<v>]
    file      → the body appended to <filename> (1C splits large files into chunks)
    import    → progress (call again) ... then success
    query     → Kith's new customers and their orders, as CommerceML in windows-1251
    success   → what the query handed over is now 1C's

Every error is ``failure`` and a reason on the next line. Files wait in a folder of their own
per exchange type until imported, then are deleted: they hold personal data.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
import secrets
import shutil
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from kith import Kith, KithError, UserService, get_logger, new_id, normalize_email, utcnow
from kith.plugins.onec import commerceml
from kith.plugins.onec.importer import ImportCounts, OnecImporter
from kith.plugins.onec.query import QueryBuilder, confirm_offered
from kith.plugins.onec.settings import OnecSettings, onec_settings, work_dir
from kith.plugins.onec.tables import OnecExchange, OnecSession, json_value

COOKIE = "kith_onec"
TYPES = ("sale", "catalog")
# 1C asks for a version; these are the ones Kith reads and writes.
VERSIONS = ("2.03", "2.04", "2.05", "2.06", "2.07", "2.08", "2.09", "2.10", "3.1")
DEFAULT_VERSION = "2.10"
# What the zip files of one exchange may unpack to, whatever their headers claim.
MAX_UNZIPPED_BYTES = 4 * 1024**3
CHUNK = 1024 * 1024

_log = get_logger(__name__)


class ExchangeFailure(Exception):
    """A step 1C asked for that cannot be done: the reason goes back as ``failure``."""


def failure(reason: str) -> str:
    return f"failure\n{reason}"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def safe_filename(raw: str) -> str:
    """The file's own name: any folder 1C puts before it (either slash) is dropped."""
    name = PureWindowsPath(PurePosixPath(raw.strip()).name).name
    if not name or name in (".", "..") or len(name) > 200 or re.search(r"[\x00-\x1f]", name):
        raise ExchangeFailure(f"filename {raw[:100]!r} is not a file name")
    return name


def basic_credentials(header: str) -> tuple[str, str] | None:
    """(user, password) of an ``Authorization: Basic`` header (1C writes UTF-8, older
    versions windows-1251)."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("cp1251")
    user, sep, password = text.partition(":")
    return (user, password) if sep else None


class ExchangeService:
    """One step of an exchange, for the route (or a test) to answer with."""

    def __init__(self, kith: Kith) -> None:
        self.kith = kith
        self.settings: OnecSettings = onec_settings(kith)

    def folder(self, exchange_type: str) -> Path:
        path = work_dir(self.kith) / exchange_type
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    # -- authentication ----------------------------------------------------------------------

    async def _check_password(self, authorization: str) -> None:
        configured = self.settings.exchange_user
        if not configured:
            raise ExchangeFailure(
                "the 1C exchange is off: set exchange_user in the [onec] section of kith.toml"
            )
        given = basic_credentials(authorization)
        if given is None:
            raise ExchangeFailure("send the exchange user's name and password (HTTP Basic)")
        user, password = given
        try:
            same = hmac.compare_digest(
                normalize_email(user).encode(), normalize_email(configured).encode()
            )
        except KithError:
            same = False
        try:
            # Checked even for another user name, so both answers take as long.
            await UserService(self.kith).verify_password(configured, password)
        except KithError:
            same = False
        if not same:
            raise ExchangeFailure("wrong user name or password")

    async def checkauth(self, exchange_type: str, authorization: str) -> str:
        self._check_type(exchange_type)
        await self._check_password(authorization)
        token = secrets.token_urlsafe(32)
        now = utcnow()
        await OnecSession.delete().where(OnecSession.expires_at < now)
        await OnecSession.insert(
            OnecSession(
                id=new_id(),
                token_hash=_hash(token),
                exchange_type=exchange_type,
                created_at=now,
                expires_at=now + dt.timedelta(minutes=self.settings.session_minutes),
            )
        )
        await self._log(exchange_type, "checkauth", "done")
        return f"success\n{COOKIE}\n{token}"

    async def authenticate(self, cookie: str | None, authorization: str) -> None:
        """A step after checkauth: the session cookie, or (as some 1C versions send on
        every request) the exchange user's password again."""
        if cookie:
            found = (
                await OnecSession.select(OnecSession.id)
                .where(
                    (OnecSession.token_hash == _hash(cookie)) & (OnecSession.expires_at > utcnow())
                )
                .first()
            )
            if found is not None:
                return
        if authorization:
            await self._check_password(authorization)
            return
        raise ExchangeFailure("no exchange session: start with mode=checkauth")

    @staticmethod
    def _check_type(exchange_type: str) -> None:
        if exchange_type not in TYPES:
            raise ExchangeFailure(f"type must be sale or catalog (got {exchange_type[:20]!r})")

    # -- steps --------------------------------------------------------------------------------

    async def init(self, exchange_type: str, version: str | None) -> str:
        """A new exchange: files of an earlier one are dropped; Kith's limits are told."""
        self._check_type(exchange_type)
        folder = self.folder(exchange_type)
        for leftover in folder.iterdir():
            if leftover.is_file():
                leftover.unlink()
        await OnecExchange.update(
            {OnecExchange.state: "abandoned", OnecExchange.finished_at: utcnow()}
        ).where(
            (OnecExchange.channel == exchange_type)
            & (OnecExchange.action == "import")
            & (OnecExchange.state == "running")
        )
        lines = [
            f"zip={'yes' if self.settings.zip else 'no'}",
            f"file_limit={self.settings.file_limit_bytes}",
        ]
        if version is not None:
            lines.append(f"version={self.version(version)}")
        await self._log(exchange_type, "init", "done")
        return "\n".join(lines)

    @staticmethod
    def version(asked: str | None) -> str:
        """The version Kith speaks for what 1C asked: the same, or the newest Kith knows."""
        if asked and asked.strip() in VERSIONS:
            return asked.strip()
        return VERSIONS[-1] if asked and asked.strip() > VERSIONS[-1] else DEFAULT_VERSION

    async def file(self, exchange_type: str, filename: str, body: AsyncIterator[bytes]) -> str:
        """Append one request's body to the file (1C sends a large file in several)."""
        self._check_type(exchange_type)
        name = safe_filename(filename)
        path = self.folder(exchange_type) / name
        limit = self.settings.file_limit_bytes
        received = 0
        part = path.with_name(f".{name}.part")
        try:
            with part.open("wb") as out:
                async for chunk in body:
                    received += len(chunk)
                    if received > limit:
                        raise ExchangeFailure(
                            f"the request is larger than file_limit ({limit} bytes); "
                            "send the file in parts"
                        )
                    out.write(chunk)
            # Only a whole request is appended: a broken upload leaves the file as it was.
            with path.open("ab") as whole, part.open("rb") as piece:
                shutil.copyfileobj(piece, whole, CHUNK)
        finally:
            part.unlink(missing_ok=True)
        return "success"

    def _unpack(self, folder: Path) -> None:
        """Unpack every zip of the exchange into its folder (paths inside dropped)."""
        for archive in sorted(folder.glob("*.zip")):
            try:
                with zipfile.ZipFile(archive) as opened:
                    members = [m for m in opened.infolist() if not m.is_dir()]
                    if sum(m.file_size for m in members) > MAX_UNZIPPED_BYTES:
                        raise ExchangeFailure(f"{archive.name} unpacks to more than Kith takes")
                    written = 0
                    for member in members:
                        target = folder / safe_filename(member.filename.replace("\\", "/"))
                        with opened.open(member) as source, target.open("wb") as out:
                            while block := source.read(CHUNK):
                                written += len(block)
                                if written > MAX_UNZIPPED_BYTES:
                                    raise ExchangeFailure(
                                        f"{archive.name} unpacks to more than Kith takes"
                                    )
                                out.write(block)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                archive.unlink(missing_ok=True)
                raise ExchangeFailure(
                    f"{archive.name} is not a readable zip file ({exc})"
                ) from None
            archive.unlink()

    async def import_file(self, exchange_type: str, filename: str) -> str:
        """Import one uploaded file, a slice of work per request: ``progress`` until done."""
        self._check_type(exchange_type)
        name = safe_filename(filename)
        folder = self.folder(exchange_type)
        self._unpack(folder)
        path = folder / name
        run = (
            await OnecExchange.select()
            .where(
                (OnecExchange.channel == exchange_type)
                & (OnecExchange.action == "import")
                & (OnecExchange.filename == name)
                & (OnecExchange.state.is_in(["running", "done"]))
            )
            .order_by(OnecExchange.started_at, ascending=False)
            .first()
        )
        if not path.exists():
            if run is not None and run["state"] == "done":
                return "success\nalready imported"
            raise ExchangeFailure(f"{name} was not uploaded (mode=file) in this exchange")
        if not name.lower().endswith(".xml"):
            # Pictures and other files of a catalog: nothing for Kith.
            path.unlink()
            return "success"
        if run is None or run["state"] == "done":
            try:
                surveyed = commerceml.survey(path)
            except commerceml.MalformedExchange as exc:
                path.unlink(missing_ok=True)
                await self._log(exchange_type, "import", "failed", name, error=f"{name}: {exc}")
                raise ExchangeFailure(f"{name}: {exc}") from None
            total = surveyed.documents + surveyed.counterparties
            run_id = await self._log(
                exchange_type, "import", "running", name, counts={"done": 0, "total": total}
            )
            done, counts = 0, {"done": 0, "total": total}
        else:
            run_id, counts = run["id"], dict(json_value(run["counts"]))
            done = int(counts.get("done", 0))
        result, done, finished = await OnecImporter(self.kith).import_file(
            path, skip=done, seconds=self.settings.import_seconds
        )
        counts = _added(counts, result)
        counts["done"] = done
        state = "done" if finished else "running"
        await OnecExchange.update(
            {
                OnecExchange.counts: counts,
                OnecExchange.state: state,
                OnecExchange.error: "\n".join(result.errors),
                OnecExchange.finished_at: utcnow() if finished else None,
            }
        ).where(OnecExchange.id == run_id)
        if not finished:
            return f"progress\n{done} of {counts.get('total', '?')} imported"
        path.unlink(missing_ok=True)
        return f"success\n{done} imported"

    async def query(self, exchange_type: str, version: str | None) -> bytes:
        self._check_type(exchange_type)
        built = await QueryBuilder(self.kith).build(self.version(version))
        await self._log(exchange_type, "query", "done", counts=built.counts)
        return built.body

    async def success(self, exchange_type: str) -> str:
        """1C took the query reply: what it held is 1C's now. For ``sale``, files 1C sent
        without asking to import them (older versions do) are imported now."""
        self._check_type(exchange_type)
        confirmed = await confirm_offered(self.kith)
        folder = self.folder(exchange_type)
        self._unpack(folder)
        for path in sorted(folder.glob("*.xml")):
            try:
                commerceml.survey(path)
            except commerceml.MalformedExchange as exc:
                path.unlink(missing_ok=True)
                raise ExchangeFailure(f"{path.name}: {exc}") from None
            result, done, _ = await OnecImporter(self.kith).import_file(path)
            await self._log(
                exchange_type, "import", "done", path.name, counts=_added({"done": done}, result)
            )
            path.unlink(missing_ok=True)
        await self._log(exchange_type, "success", "done", counts=confirmed)
        return "success"

    async def failed(self, exchange_type: str, mode: str, reason: str) -> None:
        """Record a failed step for ``kith onec status``."""
        await self._log(exchange_type[:20], mode[:40], "failed", error=reason)

    async def _log(
        self,
        channel: str,
        action: str,
        state: str,
        filename: str = "",
        counts: dict[str, Any] | None = None,
        error: str = "",
    ) -> Any:
        now = utcnow()
        row_id = new_id()
        await OnecExchange.insert(
            OnecExchange(
                id=row_id,
                channel=channel,
                action=action,
                filename=filename,
                state=state,
                counts=counts or {},
                error=error,
                started_at=now,
                finished_at=None if state == "running" else now,
            )
        )
        return row_id


def _added(counts: dict[str, Any], result: ImportCounts) -> dict[str, Any]:
    total = dict(counts)
    for name in result.__struct_fields__:
        if name == "errors":
            continue
        value = getattr(result, name)
        if value:
            total[name] = int(total.get(name, 0)) + value
    return total
