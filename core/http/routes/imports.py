"""CSV imports over HTTP: an admin uploads a file (multipart, or the CSV as the body), which
becomes an import job run in the background of the server; its resource shows progress and
counts, and its error file lists the rows not imported. The same service as ``kith import``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from kith.errors import InvalidInput, KithError
from kith.http.auth import CurrentActor, roles
from kith.http.routes.contacts import API
from kith.ids import new_id
from kith.import_jobs import run_in_background
from kith.import_mapping import MappingFile, parse_mapping
from kith.logs import get_logger
from kith.services.imports import DryRunReport, ImportJobOut, ImportService, imports_folder
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State, UploadFile
from litestar.exceptions import HTTPException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)
from litestar.params import FromPath, QueryParameter
from litestar.response import File
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED, HTTP_415_UNSUPPORTED_MEDIA_TYPE

ADMINS = roles()
# An upload larger than this is refused (413) before it is stored: a million contacts with a
# few custom fields take about 150 MB.
MAX_UPLOAD_BYTES = 2 * 1024**3
CHUNK = 1 << 20
CSV_TYPES = frozenset({"text/csv", "application/csv", "text/plain", "application/octet-stream"})

log = get_logger("kith.imports")


@dataclass
class _UploadOperation(Operation):
    """The request body litestar cannot infer from a handler that reads it as a stream."""

    def __post_init__(self) -> None:
        form = Schema(
            type=OpenAPIType.OBJECT,
            required=["file"],
            properties={
                "file": Schema(type=OpenAPIType.STRING, format="binary"),  # type: ignore[arg-type]
                "mapping": Schema(
                    type=OpenAPIType.STRING,
                    description="A mapping (JSON or TOML): which column holds what",
                ),
            },
        )
        self.request_body = RequestBody(
            required=True,
            description="The CSV file: a multipart form with the file (and a mapping), or "
            "the CSV itself as the body",
            content={
                "multipart/form-data": OpenAPIMediaType(schema=form),
                "text/csv": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING)),
            },
        )


async def _save(chunks: Any, target: Path) -> int:
    """Write an upload's chunks to ``target`` (readable by Kith only); its size."""
    size = 0
    with open(target, "wb") as handle:
        target.chmod(0o600)
        async for chunk in chunks:
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                raise HTTPException(status_code=413, detail="the file is larger than 2 GiB")
            handle.write(chunk)
    if size == 0:
        raise InvalidInput("the file is empty", field="file")
    return size


async def _file_chunks(upload: UploadFile) -> Any:
    while chunk := await upload.read(CHUNK):
        yield chunk


async def _received(request: Request[Any, Any, Any], target: Path) -> tuple[str, str | None]:
    """Store the uploaded CSV at ``target``; its file name and the mapping text sent with it."""
    content_type, _ = request.content_type
    if content_type == "multipart/form-data":
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("the form needs the CSV file in a part named 'file'", field="file")
        mapping = form.get("mapping")
        if isinstance(mapping, UploadFile):
            mapping = (await mapping.read()).decode("utf-8-sig", errors="replace")
        try:
            await _save(_file_chunks(upload), target)
        finally:
            await upload.close()
        return upload.filename or "upload.csv", mapping if isinstance(mapping, str) else None
    if content_type in CSV_TYPES:
        await _save(request.stream(), target)
        return "upload.csv", None
    raise HTTPException(
        status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        detail="send the CSV file as multipart/form-data (a part named 'file') or as text/csv",
    )


class ImportController(Controller):
    path = "/api/imports"
    tags = ["imports"]

    @post(
        "/",
        opt=ADMINS,
        summary="Import contacts or interactions from a CSV file",
        status_code=HTTP_202_ACCEPTED,
        operation_class=_UploadOperation,
        request_max_body_size=MAX_UPLOAD_BYTES,
        responses={
            HTTP_200_OK: ResponseSpec(
                data_container=DryRunReport, description="A dry run: what the import would do"
            )
        },
    )
    async def upload(
        self,
        request: Request[Any, Any, Any],
        actor: CurrentActor,
        kind: Annotated[
            Literal["contacts", "interactions"], QueryParameter(description="what the rows are")
        ] = "contacts",
        dry_run: Annotated[
            bool, QueryParameter(description="count valid, invalid, duplicate and suppressed rows")
        ] = False,
        mapping: Annotated[
            str | None, QueryParameter(description="a mapping (JSON or TOML), for a CSV body")
        ] = None,
    ) -> Response[ImportJobOut]:
        """The import runs in the background: read its progress from the resource in
        ``Location``. With ``dry_run`` the file is only checked and the counts come back at
        once (200)."""
        kith = request.app.state.kith
        target = imports_folder(kith) / f"{new_id()}.csv"
        try:
            file_name, sent_mapping = await _received(request, target)
            text = sent_mapping or mapping
            parsed: MappingFile | None = parse_mapping(text) if text else None
            service = ImportService(kith, API)
            if dry_run:
                report = await service.dry_run(kind, target, parsed, actor=actor)
                report.file_name = file_name
                target.unlink(missing_ok=True)
                return Response(report, status_code=HTTP_200_OK)  # type: ignore[arg-type]
            job = await service.create(
                kind, target, file_name=file_name, mapping=parsed, actor=actor
            )
        except (KithError, HTTPException):
            target.unlink(missing_ok=True)
            raise
        run_in_background(kith, job.id, API)
        return Response(
            job, status_code=HTTP_202_ACCEPTED, headers={"Location": f"/api/imports/{job.id}"}
        )

    @get("/", opt=ADMINS, summary="The latest imports")
    async def list_imports(
        self,
        state: State,
        limit: Annotated[int, QueryParameter(ge=1, le=200, description="how many")] = 20,
    ) -> list[ImportJobOut]:
        return await ImportService(state.kith, API).list(limit)

    @get("/{import_id:uuid}", opt=ADMINS, summary="An import's state, progress and counts")
    async def read(self, state: State, import_id: FromPath[uuid.UUID]) -> ImportJobOut:
        return await ImportService(state.kith, API).get(import_id)

    @get(
        "/{import_id:uuid}/errors.csv",
        opt=ADMINS,
        summary="The rows an import did not import, with the reason",
        media_type="text/csv",
    )
    async def errors(
        self, state: State, import_id: FromPath[uuid.UUID], actor: CurrentActor
    ) -> File:
        path = await ImportService(state.kith, API).error_file(import_id)
        log.info("import.errors_read", import_id=str(import_id), actor=actor.ref)
        return File(
            path=path,
            filename=f"import-{import_id}-errors.csv",
            media_type="text/csv; charset=utf-8",
            content_disposition_type="attachment",
        )
