"""Importing a CSV of contacts: upload, then a page that follows the job to its end."""

from __future__ import annotations

import uuid
from typing import Any

from kith.errors import InvalidInput, KithError
from kith.http.auth import current_actor
from kith.ids import new_id
from kith.import_jobs import run_in_background
from kith.services.imports import ImportJobOut, ImportService, imports_folder
from kith.web.i18n import t
from kith.web.views.common import ADMINS, WEB, kith_of, render, see_other
from litestar import Request, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath
from litestar.response import Redirect, Template

CHUNK = 1 << 20
# As the API's upload; the request limit of the route says the same.
MAX_UPLOAD_BYTES = 2 * 1024**3


@get("/imports", opt=ADMINS)
async def imports_page(request: Request[Any, Any, Any]) -> Template:
    jobs = await ImportService(kith_of(request), WEB).list(20)
    return render(request, "imports.html", jobs=jobs, error=None)


@post("/imports", opt=ADMINS, request_max_body_size=MAX_UPLOAD_BYTES)
async def upload(request: Request[Any, Any, Any]) -> Template | Redirect:
    kith = kith_of(request)
    form = await request.form()
    upload = form.get("file")
    target = imports_folder(kith) / f"{new_id()}.csv"
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise InvalidInput(t(request, "Choose a CSV file."), field="file")
        size = 0
        with open(target, "wb") as handle:
            target.chmod(0o600)
            while chunk := await upload.read(CHUNK):
                size += len(chunk)
                handle.write(chunk)
        if size == 0:
            raise InvalidInput(t(request, "The file is empty."), field="file")
        job = await ImportService(kith, WEB).create(
            "contacts", target, file_name=upload.filename, actor=current_actor(request)
        )
    except KithError as exc:
        target.unlink(missing_ok=True)
        jobs = await ImportService(kith, WEB).list(20)
        return render(request, "imports.html", status=422, jobs=jobs, error=exc.detail)
    run_in_background(kith, job.id, WEB)
    return see_other(f"/imports/{job.id}")


@get("/imports/{import_id:uuid}", opt=ADMINS)
async def import_page(request: Request[Any, Any, Any], import_id: FromPath[uuid.UUID]) -> Template:
    job = await ImportService(kith_of(request), WEB).get(import_id)
    return render(request, "import.html", job=job)


@get("/imports/{import_id:uuid}/progress", opt=ADMINS)
async def import_progress(
    request: Request[Any, Any, Any], import_id: FromPath[uuid.UUID]
) -> ImportJobOut:
    """The job as JSON, for the page's script to follow it."""
    return await ImportService(kith_of(request), WEB).get(import_id)


PAGES = [imports_page, upload, import_page, import_progress]
