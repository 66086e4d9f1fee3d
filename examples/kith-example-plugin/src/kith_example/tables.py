"""The plugin's table. Plugins prefix their table names to stay clear of core and each other."""

from __future__ import annotations

from kith import new_id
from piccolo.columns import UUID, Text, Timestamptz
from piccolo.table import Table


class Welcome(Table, tablename="kith_example_welcome"):
    """A contact waiting to be welcomed, with an agent's note on how to welcome them.

    ``contact_id`` names the contact (a plain UUID: no foreign key into core's tables), and
    Kith's privacy plugins take it as the row's data subject. ``note`` may say something about
    the person ("prefers a call after 6pm"), so it is personal data: marked ``secret=True``,
    declared through ``kith_register_personal_fields``, and stored only as
    ``kith.protector.protect`` sealed it, under the person's key."""

    id = UUID(primary_key=True, default=new_id)
    contact_id = UUID(unique=True)
    event_id = UUID(unique=True)
    created_at = Timestamptz()
    welcomed_at = Timestamptz(null=True, default=None)
    note = Text(null=True, default=None, secret=True)
