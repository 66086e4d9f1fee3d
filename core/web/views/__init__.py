"""The pages' route handlers, each module one area."""

from kith.web.views import account, admin, compliance, contacts, duplicates, imports, live, tasks

PAGES = [
    *account.PAGES,
    *contacts.PAGES,
    *duplicates.PAGES,
    *tasks.PAGES,
    *imports.PAGES,
    *admin.PAGES,
    *compliance.PAGES,
    *live.PAGES,
]

__all__ = ["PAGES"]
