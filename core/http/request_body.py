"""Request bodies Kith cannot take are refused with a 4xx problem before a handler sees them.

msgspec raises more than its ``DecodeError`` on hostile JSON (text that is not UTF-8, nesting
deeper than it recurses), and PostgreSQL cannot store a NUL character in text while SQLite can:
refusing NUL here gives both engines the same answer for every route, plugins' included.

A body is converted to the handler's type strictly, as its schema in the OpenAPI document says:
litestar converts leniently (``"60"`` for an integer), as a query string needs."""

from __future__ import annotations

from typing import Any

import msgspec
from kith.errors import InvalidInput
from litestar import Request
from litestar.exceptions import SerializationException, ValidationException

_ESCAPED_NUL = b"\\u0000"


class KithRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        try:
            value = await super().json()
        except UnicodeDecodeError as exc:
            raise SerializationException("it holds text that is not UTF-8") from exc
        except RecursionError as exc:
            raise SerializationException("it is nested too deeply") from exc
        # A raw NUL byte is not valid JSON; one can only arrive escaped.
        if _ESCAPED_NUL in await self.body():
            where = _nul_at(value)
            if where is not None:
                raise InvalidInput(
                    f"{where or 'body'}: text may not contain the NUL character (\\u0000)",
                    field=where or "body",
                )
        return self._strictly(value)

    def _strictly(self, value: Any) -> Any:
        """``value`` as the handler's body type, converted without coercion. Litestar's own
        conversion then passes the result through unchanged."""
        data = self.route_handler.parsed_fn_signature.parameters.get("data")
        if data is None:
            return value
        try:
            return msgspec.convert(value, type=data.annotation, strict=True, str_keys=True)
        except msgspec.ValidationError as exc:
            message, _, where = str(exc).partition(" - at `$")
            key = where.rstrip("`").lstrip(".") or "body"
            raise ValidationException(
                detail=str(exc), extra=[{"message": message, "key": key, "source": "body"}]
            ) from None


def _nul_at(value: Any) -> str | None:
    """The path (``emails[0].label``) of a text holding a NUL, keys included."""
    # Iterative: the body may be nested as deep as the decoder allows.
    pending: list[tuple[Any, str]] = [(value, "")]
    while pending:
        item, path = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return path
        elif isinstance(item, dict):
            for key, inner in reversed(item.items()):
                where = f"{path}.{key}" if path else str(key)
                if "\x00" in key:
                    return where
                pending.append((inner, where))
        elif isinstance(item, list):
            pending.extend((inner, f"{path}[{i}]") for i, inner in reversed(list(enumerate(item))))
    return None
