from __future__ import annotations

import msgspec
from kith import __version__
from kith.http.auth import public
from litestar import get
from litestar.datastructures import State


class Health(msgspec.Struct):
    status: str
    version: str
    database: str


@get("/api/health", opt=public(), tags=["system"], summary="Is the server up?")
async def health(state: State) -> Health:
    return Health(status="ok", version=__version__, database=state.kith.database.kind)
