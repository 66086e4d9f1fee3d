"""The ``[onec]`` section of ``kith.toml``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from kith import Kith
from msgspec import Meta, Struct, field

MEGABYTE = 1024 * 1024
# The two addresses 1C is usually given: Kith's own and the one 1C proposes for such sites.
DEFAULT_PATHS = ("/1c/exchange", "/bitrix/admin/1c_exchange.php")
# A path of plain segments: no parameters, no "..", nothing under Kith's own /api and /web.
ExchangePath = Annotated[
    str,
    Meta(
        pattern=r"^(?!/(api|web|static|schema)(/|$))(/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)+$",
        max_length=200,
    ),
]


class OnecSettings(Struct, kw_only=True, forbid_unknown_fields=True):
    """How 1C reaches Kith (the CommerceML exchange) and how Kith reaches 1C (OData).

    ``exchange_user`` is the email of the Kith user whose password 1C sends; leave it empty to
    keep the exchange closed. ``odata_password`` is best given as ``KITH_ONEC_ODATA_PASSWORD``.
    """

    exchange_user: str = ""
    # Where 1C calls: the "Адрес сайта" of its exchange node, without the host.
    exchange_paths: Annotated[list[ExchangePath], Meta(min_length=1, max_length=8)] = field(
        default_factory=lambda: list(DEFAULT_PATHS)
    )
    # The most 1C may send in one ``mode=file`` request; 1C splits larger files.
    file_limit_bytes: Annotated[int, Meta(ge=64 * 1024, le=512 * MEGABYTE)] = 8 * MEGABYTE
    zip: bool = True
    session_minutes: Annotated[int, Meta(ge=1, le=24 * 60)] = 60
    # Documents written per transaction while importing a file.
    batch_size: Annotated[int, Meta(ge=1, le=5000)] = 200
    # Where uploaded files wait for their import; empty: ``onec`` under KITH_HOME.
    work_dir: str = ""
    # The country 1C's phone numbers are written in when they have no +code.
    phone_region: Annotated[str, Meta(pattern=r"^[A-Z]{2}$")] = "RU"
    # At most this many of Kith's new contacts and orders go back in one query reply.
    query_limit: Annotated[int, Meta(ge=1, le=100_000)] = 1000
    # How long one ``mode=import`` request works before answering ``progress``.
    import_seconds: Annotated[float, Meta(gt=0, le=600)] = 20.0
    # What an order without a recognisable currency is in.
    default_currency: Annotated[str, Meta(pattern=r"^[A-Z]{3}$")] = "RUB"
    # 1C's published OData interface, e.g. https://1c.example/base/odata/standard.odata
    odata_url: str = ""
    odata_user: str = ""
    odata_password: str = ""
    odata_page_size: Annotated[int, Meta(ge=1, le=5000)] = 500
    odata_timeout_seconds: Annotated[float, Meta(gt=0, le=300)] = 30.0
    # How often the worker pulls from and pushes to 1C over OData; 0 turns it off.
    sync_minutes: Annotated[float, Meta(ge=0)] = 0.0


def onec_settings(kith: Kith) -> OnecSettings:
    """The ``[onec]`` section (all of it optional)."""
    return kith.settings.parsed("onec", OnecSettings)


def work_dir(kith: Kith) -> Path:
    """The folder for uploaded exchange files, made on first use (owner only)."""
    configured = onec_settings(kith).work_dir
    path = Path(configured) if configured else Path(kith.settings.home) / "onec"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path
