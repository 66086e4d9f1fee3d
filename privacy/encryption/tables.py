"""Tables of field encryption: data keys, root keys of keyed hashes, tombstones of destroyed
keys, state and job progress.

None of them holds personal data in readable form: a data key or root key is stored only wrapped
under a key-encryption key, and a subject is named by its contact id.
"""

from __future__ import annotations

from kith.ids import new_id
from piccolo.columns import JSON, UUID, Integer, Text, Timestamptz, Varchar
from piccolo.table import Table


class DataKey(Table, tablename="kith_privacy_data_key"):
    """One data subject's data key, wrapped under the key-encryption key ``kek_id``.

    Not a foreign key to the contact: the key is created before the contact row (its id goes
    into the ciphertexts written in the same transaction), and it must outlive nothing but
    itself: destroying this row is what erases the subject."""

    id = UUID(primary_key=True, default=new_id)
    subject = UUID(unique=True)
    kek_id = Varchar(length=64, index=True)
    wrapped = Text()
    created_at = Timestamptz()
    rewrapped_at = Timestamptz(null=True, default=None)


class RootKey(Table, tablename="kith_privacy_root_key"):
    """A random key that keyed hashes derive from (the blind indexes, the suppression list, the
    subject-request hashes), stored only wrapped under the key-encryption key ``kek_id``.

    A key of its own, rather than one derived from a KEK, so that retiring a KEK does not take
    the hashes with it: rotation re-wraps these rows like the data keys."""

    id = UUID(primary_key=True, default=new_id)
    purpose = Varchar(length=40, index=True)
    kek_id = Varchar(length=64, index=True)
    wrapped = Text()
    created_at = Timestamptz()
    rewrapped_at = Timestamptz(null=True, default=None)


class Tombstone(Table, tablename="kith_privacy_tombstone"):
    """A destroyed data key: whose, which, when and by whom. No personal data."""

    id = UUID(primary_key=True, default=new_id)
    subject = UUID(unique=True)
    data_key_id = UUID(null=True, default=None, index=True)
    shredded_at = Timestamptz()
    actor = Varchar(length=200, default="system")
    reason = Varchar(length=200, default="")


class PrivacyState(Table, tablename="kith_privacy_state"):
    """Small named facts: which KEK the blind indexes derive from, whether old plaintext was
    encrypted."""

    name = Varchar(length=100, primary_key=True)
    value = Text(default="")
    updated_at = Timestamptz()


class PrivacyJob(Table, tablename="kith_privacy_job"):
    """Progress of a long, resumable job (KEK rotation, re-index, plaintext encryption): a crash
    loses at most the batch in flight, and running the command again continues from
    ``cursor``."""

    name = Varchar(length=100, primary_key=True)
    state = Varchar(length=20, default="running")
    cursor = Text(default="")
    done = Integer(default=0)
    total = Integer(default=0)
    details = JSON(default={})
    started_at = Timestamptz()
    updated_at = Timestamptz()
    finished_at = Timestamptz(null=True, default=None)


PRIVACY_TABLES: list[type[Table]] = [DataKey, RootKey, Tombstone, PrivacyState, PrivacyJob]
