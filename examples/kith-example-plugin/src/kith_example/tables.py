"""The plugin's table. Plugins prefix their table names to stay clear of core and each other."""

from __future__ import annotations

from kith import new_id
from piccolo.columns import UUID, Timestamptz
from piccolo.table import Table


class Welcome(Table, tablename="kith_example_welcome"):
    """A contact waiting to be welcomed. It holds ids and times only, so the plugin declares no
    personal fields; a column holding a name or an email would be declared through
    ``kith_register_personal_fields`` and answered for in export and erasure."""

    id = UUID(primary_key=True, default=new_id)
    contact_id = UUID(unique=True)
    event_id = UUID(unique=True)
    created_at = Timestamptz()
    welcomed_at = Timestamptz(null=True, default=None)
