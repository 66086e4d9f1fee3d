"""The registry of personal fields checked against the tables that hold them.

A column is marked personal with piccolo's ``secret=True``; every such column of every
registered table must be declared (``kith_register_personal_fields``), and every declaration
must name a column that exists. Start-up fails with all disagreements listed at once, so a
plugin author fixes them in one go.

The registry also knows whose data each personal row is (its *subject column*): ``id`` for the
contact table itself, the column a table names in ``kith_subject_column``, the table's foreign
key to the contact table, or else a UUID column called ``contact_id`` (how the plugin tutorial
refers to a contact). The plaintext migration and the re-index need it; services pass the
subject themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from kith.personal import PersonalField, column_named, subject_column
from kith.privacy.encryption.errors import RegistryError
from piccolo.conf.apps import AppConfig
from piccolo.table import Table


@dataclass(frozen=True)
class PersonalTable:
    """One table with personal columns."""

    table: type[Table]
    fields: tuple[PersonalField, ...]
    subject_column: str | None

    @property
    def name(self) -> str:
        return str(self.table._meta.tablename)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(f.column for f in self.fields)


@dataclass(frozen=True)
class FieldRegistry:
    fields: tuple[PersonalField, ...]
    tables: dict[str, PersonalTable] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def log_keys(self) -> frozenset[str]:
        """Names that must not appear as keys of a log event: ``column`` and ``table.column``."""
        return frozenset({f.column for f in self.fields} | {f.key for f in self.fields})


def all_tables(apps: Iterable[AppConfig]) -> dict[str, type[Table]]:
    return {str(table._meta.tablename): table for app in apps for table in app.table_classes}


def build_registry(fields: Iterable[PersonalField], apps: Iterable[AppConfig]) -> FieldRegistry:
    """Check declarations against the tables; raise :class:`RegistryError` listing every
    problem."""
    fields = tuple(sorted(fields, key=lambda f: f.key))
    tables = all_tables(apps)
    problems: list[str] = []
    warnings: list[str] = []
    declared: dict[str, PersonalField] = {}
    for personal in fields:
        if personal.key in declared:
            problems.append(
                f"{personal.key} is declared twice ({declared[personal.key].owner} "
                f"and {personal.owner})"
            )
            continue
        declared[personal.key] = personal
        table = tables.get(personal.table)
        if table is None:
            problems.append(
                f"{personal.owner} declares personal field {personal.key}, but no registered "
                f"table is called {personal.table}"
            )
            continue
        column = column_named(table, personal.column)
        if column is None:
            problems.append(
                f"{personal.owner} declares personal field {personal.key}, but {personal.table} "
                f"has no column {personal.column}"
            )
        elif not column._meta.secret:
            warnings.append(
                f"personal field {personal.key} is declared but its column is not marked "
                "secret=True"
            )
    for name, table in sorted(tables.items()):
        for column in table._meta.columns:
            key = f"{name}.{column._meta.name}"
            if column._meta.secret and key not in declared:
                problems.append(
                    f"{key} is marked personal (secret=True) but not declared: declare it with "
                    "the kith_register_personal_fields hook (category, purposes, searchable, "
                    "retention) so that it is encrypted, exported and erased"
                )
    if problems:
        raise RegistryError(
            "the personal-data registry does not match the tables:\n  - " + "\n  - ".join(problems)
        )
    by_table: dict[str, list[PersonalField]] = {}
    for personal in fields:
        by_table.setdefault(personal.table, []).append(personal)
    return FieldRegistry(
        fields=fields,
        tables={
            name: PersonalTable(tables[name], tuple(items), subject_column(tables[name]))
            for name, items in sorted(by_table.items())
        },
        warnings=tuple(warnings),
    )
