"""Kith settings: environment variables over an optional ``kith.toml`` in ``KITH_HOME``."""

from __future__ import annotations

import os
import re
import tomllib
import typing
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msgspec
import phonenumbers

SETTINGS_FILE = "kith.toml"
# The custom fields declared in kith.toml ([[fields]] tables; see kith.services.field_seeds).
FIELDS_KEY = "fields"
LOG_FORMATS = ("auto", "console", "json")
# Where links point while public_url is not set: `kith serve` on its default address.
LOCAL_URL = "http://127.0.0.1:8000"
# A merge's undo record holds the merged contacts' data: kept a year at most.
MAX_MERGE_UNDO_DAYS = 365


class SettingsError(ValueError):
    """A setting has a value Kith cannot use; the message names the setting."""


S = TypeVar("S", bound=msgspec.Struct)


@dataclass(frozen=True)
class Settings:
    """An installation's settings, as :func:`load_settings` read and checked them (``kith``
    passes them to every plugin as ``kith.settings``). A plugin reads its own section of
    ``kith.toml`` with :meth:`parsed`."""

    home: Path
    database_url: str
    default_region: str = "GB"
    timezone: str = "UTC"
    log_format: str = "auto"
    log_level: str = "info"
    max_request_bytes: int = 1_048_576
    dispatch_in_process: bool = True
    token_cache_seconds: float = 5.0
    public_url: str = ""
    name_search_index: bool = True
    # How long a merge of contacts can be undone (0: merges cannot be undone).
    merge_undo_days: int = 30
    # Where the web UI keeps sessions and sign-in counters when several processes serve.
    redis_url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # The KITH_* variables, for the plugins' sections (``KITH_<SECTION>_<KEY>`` overrides).
    environment: dict[str, str] = field(default_factory=dict)
    _parsed: dict[tuple[str, type[Any]], Any] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def database_kind(self) -> str:
        return "postgresql" if self.database_url.startswith("postgres") else "sqlite"

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file for a ``sqlite:///...`` URL."""
        return Path(urlsplit(self.database_url).path[1:] or "kith.sqlite3")

    def link(self, path: str, base: str | None = None) -> str:
        """The absolute URL of ``path`` (``/api/...``) for links handed to people: under
        ``public_url``; while it is not set, under ``base`` (the address a request came in
        at) or, without one, :data:`LOCAL_URL`."""
        return (self.public_url or (base or LOCAL_URL).rstrip("/")) + path

    def section(self, name: str) -> dict[str, Any]:
        """A plugin's own table from ``kith.toml`` (``[name]``), empty when absent."""
        value = self.extra.get(name, {})
        return value if isinstance(value, dict) else {}

    def parsed(self, name: str, schema: type[S]) -> S:
        """The ``[name]`` table of ``kith.toml`` validated into ``schema`` (a msgspec Struct a
        plugin registered with ``kith_register_settings``), parsed once per Settings.

        A ``KITH_<NAME>_<KEY>`` variable overrides one value. Keys the schema does not declare
        are left alone: plugins of one family may share a section, each declaring its keys
        (the plugin manager refuses keys nobody declares). Raises :class:`SettingsError`
        naming ``[name] key`` and what is wrong."""
        cached = self._parsed.get((name, schema))
        if cached is None:
            cached = self._parsed[(name, schema)] = _parse_section(self, name, schema)
        return cached  # type: ignore[no-any-return]


def _type_name(value: Any) -> str:
    return type(value).__name__


def section_keys(schema: type[msgspec.Struct]) -> set[str]:
    """The keys a section schema declares (as written in ``kith.toml``)."""
    return {info.encode_name for info in msgspec.structs.fields(schema)}


def _parse_section(settings: Settings, name: str, schema: type[S]) -> S:
    raw = settings.extra.get(name, {})
    if not isinstance(raw, dict):
        raise SettingsError(f"[{name}] in kith.toml must be a table, got {_type_name(raw)}")
    keys = section_keys(schema)
    values: dict[str, Any] = {key: value for key, value in raw.items() if key in keys}
    overridden: set[str] = set()
    for key in keys:
        variable = f"KITH_{name}_{key}".upper()
        if variable in settings.environment:
            text = settings.environment[variable]
            # The words core's own switches take (KITH_DISPATCH_IN_PROCESS=yes) work here too.
            values[key] = _SWITCH_WORDS.get(text.strip().lower(), text)
            overridden.add(key)
    try:
        # Variables are text: "true", "30" and "1.5" convert to the declared types.
        return msgspec.convert(values, schema, strict=not overridden)
    except msgspec.ValidationError as exc:
        raise SettingsError(_readable(name, schema, values, str(exc), overridden)) from None


_SWITCH_WORDS = {"yes": "true", "on": "true", "no": "false", "off": "false"}
_AT = re.compile(r"^(?P<message>.*) - at `\$(?P<path>[^`]*)`$")
_NAMED = re.compile(r"^(?P<key>[a-z_][a-z0-9_.]*): (?P<message>.*)$", re.S)
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")


def _readable(
    name: str, schema: type[Any], values: dict[str, Any], message: str, overridden: set[str]
) -> str:
    """msgspec's message as ``[name] key.path: what is wrong``; a path through a table of
    tables (``[...]`` in msgspec's path) gets the key of the entry at fault."""
    path = ""
    located = _AT.match(message)
    if located:
        message, path = located["message"], located["path"].lstrip(".")
    if "[...]" in path:
        path = _name_entry(schema, values, path)
    missing = _MISSING.match(message)
    if missing:
        path = f"{path}.{missing['field']}" if path else missing["field"]
        message = "required setting is missing"
    named = _NAMED.match(message)
    if not path and named:
        # A check of the schema's own says which key is at fault: "<key>: <problem>".
        path, message = named["key"], named["message"]
    top = path.split(".")[0].split("[")[0]
    if top in overridden:
        return f"KITH_{name}_{top}".upper() + f": {message}"
    return f"[{name}] {path or '(section)'}: {message}"


def _name_entry(schema: type[Any], values: dict[str, Any], path: str) -> str:
    """Replace the first ``[...]`` of ``path`` by the key of the table entry that fails."""
    field_name, _, rest = path.partition("[...]")
    table = values.get(field_name)
    declared = {info.encode_name: info.type for info in msgspec.structs.fields(schema)}
    arguments = typing.get_args(declared.get(field_name))
    if not isinstance(table, dict) or len(arguments) != 2:
        return path
    for key, entry in table.items():
        try:
            msgspec.convert(entry, arguments[1])
        except msgspec.ValidationError:
            return f"{field_name}.{key}{rest}"
    return path


def check_sections(
    settings: Settings, registered: Iterable[tuple[str, type[msgspec.Struct]]]
) -> None:
    """Validate every registered section now (a bad value stops start-up, naming it) and
    refuse a key that no schema of its section declares ("[privacy] four_eye: unknown
    setting")."""
    declared: dict[str, set[str]] = {}
    for name, schema in registered:
        settings.parsed(name, schema)
        declared.setdefault(name, set()).update(section_keys(schema))
    for name, keys in declared.items():
        raw = settings.extra.get(name, {})
        unknown = sorted(set(raw) - keys) if isinstance(raw, dict) else []
        if unknown:
            known = ", ".join(sorted(keys)) or "none"
            raise SettingsError(f"[{name}] {unknown[0]}: unknown setting (known: {known})")


def _read_toml(home: Path) -> dict[str, Any]:
    path = home / SETTINGS_FILE
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML ({exc})") from exc


def _pick(env: dict[str, str], toml: dict[str, Any], key: str, default: Any) -> tuple[Any, str]:
    """The value of one setting and where it came from (for error messages)."""
    env_name = f"KITH_{key.upper()}"
    if env_name in env:
        return env[env_name], env_name
    if key in toml:
        return toml[key], f"{key} in {SETTINGS_FILE}"
    return default, env_name


def _as_bool(value: Any, origin: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise SettingsError(f"{origin}: expected true or false, got {value!r}")


def _database_url(value: str, origin: str, home: Path) -> str:
    if not value:
        return f"sqlite:///{(home / 'kith.sqlite3').resolve()}"
    parts = urlsplit(value)
    if parts.scheme in ("postgres", "postgresql"):
        if not parts.hostname or not parts.path.strip("/"):
            raise SettingsError(
                f"{origin}: a PostgreSQL URL needs a host and a database name, "
                "like postgresql://user@127.0.0.1:5432/kith"
            )
        try:
            parts.port  # noqa: B018 - validates the port number
        except ValueError as exc:
            raise SettingsError(f"{origin}: {exc}") from exc
        return value
    if parts.scheme == "sqlite":
        if not parts.path or parts.path == "/":
            raise SettingsError(f"{origin}: a SQLite URL needs a file, like sqlite:///kith.sqlite3")
        return value
    raise SettingsError(
        f"{origin}: unsupported database {_without_password(value)!r}; "
        "use sqlite:///PATH or postgresql://..."
    )


def _public_url(value: Any, origin: str) -> str:
    """An http(s) address with a host, and perhaps a path prefix; without a trailing slash."""
    text = str(value).strip()
    if not text:
        return ""
    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018 - validates the port number
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid or parts.query or parts.fragment or any(c.isspace() for c in text):
        raise SettingsError(
            f"{origin}: must be the address people reach Kith at, like "
            f"https://crm.example.com, got {text!r}"
        )
    return text.rstrip("/")


def _without_password(url: str) -> str:
    """The URL as it may appear in a message: a password in it is masked."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Read and validate the settings; raises :class:`SettingsError` with a one-line reason."""
    env = dict(os.environ if env is None else env)
    home = Path(env.get("KITH_HOME") or "./kith-data").expanduser()
    if home.exists() and not home.is_dir():
        raise SettingsError(f"KITH_HOME: {home} exists and is not a directory")
    toml = _read_toml(home)
    known = {
        "database_url",
        "default_region",
        "timezone",
        "log_format",
        "log_level",
        "max_request_bytes",
        "dispatch_in_process",
        "token_cache_seconds",
        "public_url",
        "name_search_index",
        "merge_undo_days",
        "redis_url",
    }

    url, origin = _pick(env, toml, "database_url", "")
    database_url = _database_url(str(url), origin, home)

    region, origin = _pick(env, toml, "default_region", "GB")
    region = str(region).upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise SettingsError(f"{origin}: {region!r} is not a region code like GB, DE or US")

    timezone, origin = _pick(env, toml, "timezone", "UTC")
    try:
        zoneinfo.ZoneInfo(str(timezone))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            f"{origin}: {timezone!r} is not a time zone like Europe/London"
        ) from None

    log_format, origin = _pick(env, toml, "log_format", "auto")
    log_format = str(log_format).lower()
    if log_format not in LOG_FORMATS:
        raise SettingsError(
            f"{origin}: must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}"
        )

    log_level, origin = _pick(env, toml, "log_level", "info")
    log_level = str(log_level).lower()
    if log_level not in ("debug", "info", "warning", "error"):
        raise SettingsError(f"{origin}: must be debug, info, warning or error, got {log_level!r}")

    size, origin = _pick(env, toml, "max_request_bytes", 1_048_576)
    try:
        max_request_bytes = int(size)
    except (TypeError, ValueError):
        raise SettingsError(f"{origin}: expected a number of bytes, got {size!r}") from None
    if max_request_bytes < 1024:
        raise SettingsError(f"{origin}: must be at least 1024 bytes, got {max_request_bytes}")

    dispatch, origin = _pick(env, toml, "dispatch_in_process", True)
    dispatch_in_process = _as_bool(dispatch, origin)

    cache, origin = _pick(env, toml, "token_cache_seconds", 5)
    try:
        if isinstance(cache, bool):
            raise TypeError
        token_cache_seconds = float(cache)
    except (TypeError, ValueError):
        raise SettingsError(f"{origin}: expected a number of seconds, got {cache!r}") from None
    if not 0 <= token_cache_seconds <= 300:
        raise SettingsError(f"{origin}: must be 0 (off) to 300 seconds, got {cache!r}")

    public, origin = _pick(env, toml, "public_url", "")
    public_url = _public_url(public, origin)

    index, origin = _pick(env, toml, "name_search_index", True)
    name_search_index = _as_bool(index, origin)

    undo, origin = _pick(env, toml, "merge_undo_days", 30)
    try:
        if isinstance(undo, bool):
            raise TypeError
        merge_undo_days = int(undo)
    except (TypeError, ValueError):
        raise SettingsError(f"{origin}: expected a number of days, got {undo!r}") from None
    if not 0 <= merge_undo_days <= MAX_MERGE_UNDO_DAYS:
        raise SettingsError(
            f"{origin}: must be 0 (merges cannot be undone) to {MAX_MERGE_UNDO_DAYS} days, "
            f"got {undo!r}"
        )

    redis, origin = _pick(env, toml, "redis_url", "")
    redis_url = str(redis).strip()
    if redis_url and urlsplit(redis_url).scheme not in ("redis", "rediss", "unix"):
        raise SettingsError(
            f"{origin}: must be a Redis address like redis://127.0.0.1:6379/0, got "
            f"{_without_password(redis_url)!r}"
        )

    return Settings(
        home=home.resolve(),
        database_url=database_url,
        default_region=region,
        timezone=str(timezone),
        log_format=str(log_format),
        log_level=log_level,
        max_request_bytes=max_request_bytes,
        dispatch_in_process=dispatch_in_process,
        token_cache_seconds=token_cache_seconds,
        public_url=public_url,
        name_search_index=name_search_index,
        merge_undo_days=merge_undo_days,
        redis_url=redis_url,
        extra={k: v for k, v in toml.items() if k not in known},
        environment={k: v for k, v in env.items() if k.startswith("KITH_")},
    )
