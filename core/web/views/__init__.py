"""The pages' route handlers, each module one area."""

from kith.web.views import (
    account,
    admin,
    compliance,
    contacts,
    duplicates,
    fields,
    imports,
    live,
    plugins,
    tasks,
    tokens,
)

PAGES = [
    *account.PAGES,
    *contacts.PAGES,
    *duplicates.PAGES,
    *tasks.PAGES,
    *imports.PAGES,
    *admin.PAGES,
    *tokens.PAGES,
    *fields.PAGES,
    *plugins.PAGES,
    *compliance.PAGES,
    *live.PAGES,
]

__all__ = ["PAGES"]
