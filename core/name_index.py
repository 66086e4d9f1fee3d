"""Name search without decrypting every contact: a keyed index of the prefixes of name words.

Every word of a ``name_search`` personal field (a contact's names, and any plugin field declared
so) is transliterated to Latin letters (anyascii: "Юрий" is "yuriy"), case-folded, and each of its
prefixes of :data:`MIN_PREFIX` to :data:`MAX_PREFIX` characters is stored as a keyed hash: the
protector's blind-index HMAC under a key of that column alone, cut to 64 bits. A search hashes
the words typed the same way and reads the contacts holding all of them, in contact order; those
candidates are decrypted and checked, so a collision or a word longer than ``MAX_PREFIX`` costs
a decryption, never a wrong answer.

Beside the prefixes, each row keeps *pair tokens* for duplicate detection
(:mod:`kith.services.duplicates`): every two words of its name together, whole (up to
``MAX_PREFIX`` characters), cut to :data:`PAIR_PREFIX` characters, and one whole with the
other's first letters, in either order, under a key of the table (see :func:`pairs`); a name of one
word has its word alone. Contacts that share one are compared.
Prefix tokens are never negative and pair tokens always are, so a scan reads the pair tokens
alone, as one range of the (token, contact) index.

What the index shows whoever reads the database is which rows share a name prefix (and so, up to
``MAX_PREFIX``, how long a word is), and which share two words of their names. The setting
``name_search_index = false`` keeps none: the tokens are deleted and a name search decrypts
contacts one by one, as it also does while the index is incomplete (built for other keys, or
not yet for the rows already there); duplicate detection then compares emails and phones only.
``kith migrate`` and ``kith privacy keys reindex`` build it.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from anyascii import anyascii
from kith.events import utcnow
from kith.hookspecs import hookimpl
from kith.personal import SUBJECT_TABLE, subject_column
from kith.storage.bulk import insert_rows
from kith.storage.prepared import Prepared, run_deferred
from kith.tables import Contact, NameIndexState, NameToken
from piccolo.query import Insert

if TYPE_CHECKING:
    from kith.runtime import Kith
    from piccolo.table import Table

PLUGIN_NAME = "kith.name_index"
MIN_PREFIX = 2
# Longer words are indexed by their first MAX_PREFIX characters; the check after decryption
# tells them apart. Each indexed word costs up to MAX_PREFIX - 1 rows.
MAX_PREFIX = 10
# Pair tokens: words cut to this length pair up too, so a typo late in a word still meets.
PAIR_PREFIX = 4
# And each word whole pairs with the other's first letters: a typo early in one word meets.
PAIR_START = 2
# The words of a row that make pairs (a long company name would make too many).
PAIR_WORDS = 4
# Changes whenever what is indexed changes (normalisation, lengths): the index is rebuilt then.
FORMAT = (
    f"kith/name-index/v2/{MIN_PREFIX}-{MAX_PREFIX}/pairs-{PAIR_PREFIX}-{PAIR_START}-{PAIR_WORDS}"
)
# What a shredded subject's fields read as: not a name, never indexed.
ERASED = "[erased]"
_STATE_KEY = "kith.name_index"
_WORD = re.compile(r"[0-9a-z]+")
# Rows of one multi-row insert. The statement of each length is built once (see
# kith.storage.prepared), since building one costs more than running it: one per count up to
# this, so that a contact's tokens (a few dozen) are one statement, not one per power of two.
_INSERT_ROWS = 64
# piccolo's ``Insert`` rather than ``NameToken.insert``: without ``RETURNING id``, whose rows
# nobody reads and which cost SQLite a step per row.
_INSERT_TOKENS = Prepared(
    lambda token, contact, source: Insert(
        NameToken,
        *(
            NameToken(token=token[i], contact=contact[i], source=source[i])
            for i in range(len(token))
        ),
    ),
    max_shapes=2 * _INSERT_ROWS,
)


def words(text: str | None) -> list[str]:
    """The words of ``text`` as the index keeps them: in Latin letters, case-folded, split at
    anything that is not a letter or a digit."""
    if not text:
        return []
    return _WORD.findall(anyascii(text).casefold())


def query_words(q: str) -> list[str]:
    """The distinct words of a search, each to be the start of a word of the name."""
    return list(dict.fromkeys(words(q)))


def matches(query: Sequence[str], names: Iterable[str | None]) -> bool:
    """Whether every word of ``query`` starts a word of one of ``names``."""
    held = [word for name in names if name != ERASED for word in words(name)]
    return bool(query) and all(any(w.startswith(q) for w in held) for q in query)


def _int64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), signed=True)


_POSITIVE = (1 << 63) - 1


def prefix_token(digest: str) -> int:
    """A prefix token: 63 bits of the keyed hash, never negative."""
    return _int64(digest) & _POSITIVE


def pair_token(digest: str) -> int:
    """A pair token: 63 bits of the keyed hash, always negative."""
    return (_int64(digest) & _POSITIVE) - (1 << 63)


def pairs(names: Iterable[str]) -> set[str]:
    """What the pair tokens of a row's names hash: each two of its first :data:`PAIR_WORDS`
    distinct words (of two characters or more), whole and cut to :data:`PAIR_PREFIX` (in
    sorted order), and each word whole with the other's first :data:`PAIR_START` letters
    ("jo. smith": a typo later in one word still meets the other); a row of one such word gives
    that word alone, whole and cut."""
    found: list[str] = []
    for name in names:
        if name == ERASED:
            continue
        for word in words(name):
            word = word[:MAX_PREFIX]
            if len(word) >= MIN_PREFIX and word not in found:
                found.append(word)
    found = found[:PAIR_WORDS]
    if len(found) == 1:
        return {found[0], found[0][:PAIR_PREFIX]}
    keys: set[str] = set()
    for i, first in enumerate(found):
        for second in found[i + 1 :]:
            keys.add(" ".join(sorted((first, second))))
            keys.add(" ".join(sorted((first[:PAIR_PREFIX], second[:PAIR_PREFIX]))))
            keys.add(f"{first[:PAIR_START]}. {second}")
            keys.add(f"{second[:PAIR_START]}. {first}")
    return keys


def _source(table: str, row_id: Any) -> int:
    """Which personal row a token came from, in 64 bits."""
    return _int64(f"{table}:{row_id}")


class TokenMaker:
    """Computes the tokens of rows: the index's columns and kinds with a blind-index lookup
    (the protector's, or the kind keys alone handed to an import's worker process)."""

    def __init__(
        self,
        columns: Mapping[str, tuple[str, ...]],
        kinds: Mapping[tuple[str, str], str],
        pair_kinds: Mapping[str, str],
        lookup: Callable[[str, str], str],
    ) -> None:
        self.columns = dict(columns)
        self.kinds = dict(kinds)
        self.pair_kinds = dict(pair_kinds)
        self.lookup = lookup

    def pair_tokens(self, table: str, names: Iterable[str | None]) -> set[int]:
        """The pair tokens of one row of ``table`` with these names (see :func:`pairs`)."""
        kind = self.pair_kinds.get(table)
        if kind is None:
            return set()
        lookup = self.lookup
        return {pair_token(lookup(kind, key)) for key in pairs(n for n in names if n)}

    def tokens(
        self,
        table: str,
        values: Mapping[str, str | None],
        known: dict[tuple[str, str], int] | None = None,
    ) -> set[int]:
        """The tokens of one row's name fields; a word in two of its fields is indexed once
        (a search asks every column's key). The row's pair tokens too. ``known``: tokens computed
        already for other rows of the same batch (names share prefixes: one HMAC each, not one per
        row)."""
        found = self.pair_tokens(table, (values.get(c) for c in self.columns.get(table, ())))
        seen: set[str] = set()
        lookup = self.lookup
        for column in self.columns.get(table, ()):
            value = values.get(column)
            if value == ERASED:
                continue
            kind = self.kinds[(table, column)]
            for word in words(value):
                if word in seen:
                    continue
                seen.add(word)
                for length in range(MIN_PREFIX, min(len(word), MAX_PREFIX) + 1):
                    prefix = word[:length]
                    if known is None:
                        found.add(prefix_token(lookup(kind, prefix)))
                        continue
                    token = known.get((kind, prefix))
                    if token is None:
                        token = known[(kind, prefix)] = prefix_token(lookup(kind, prefix))
                    found.add(token)
        return found


class NameIndex:
    """The index of one opened Kith: its columns, its keys and whether it is complete."""

    def __init__(self, kith: Kith) -> None:
        self.kith = kith
        self.enabled = kith.settings.name_search_index
        columns: dict[str, list[str]] = {}
        for field in kith.personal_fields:
            if field.name_search:
                columns.setdefault(field.table, []).append(field.column)
        self.columns = {table: tuple(names) for table, names in sorted(columns.items())}
        # One blind-index kind, so one HMAC key, per column.
        self.kinds = {
            (table, column): f"name-prefix:{table}.{column}"
            for table, names in self.columns.items()
            for column in names
        }
        # Pair tokens are keyed per table: a word pair meets whichever columns hold it.
        self.pair_kinds = {table: f"name-pair:{table}" for table in self.columns}
        self._maker: TokenMaker | None = None
        self._complete = False
        self._cleared = False
        self._checked = False

    def token(self, kind: str, prefix: str) -> int:
        return prefix_token(self.kith.protector.lookup_key(kind, prefix))

    def maker(self, lookup: Callable[[str, str], str] | None = None) -> TokenMaker:
        """What computes this index's tokens, with ``lookup`` (a worker process's, see
        :meth:`worker_maker`) or the protector's blind index."""
        if lookup is not None:
            return TokenMaker(self.columns, self.kinds, self.pair_kinds, lookup)
        if self._maker is None:
            # Through ``kith`` at each call: the protector is attached when Kith starts.
            self._maker = TokenMaker(
                self.columns,
                self.kinds,
                self.pair_kinds,
                lambda kind, value: self.kith.protector.lookup_key(kind, value),
            )
        return self._maker

    def worker_maker(self) -> TokenMaker | None:
        """A :class:`TokenMaker` a worker process can be given (None when the protector cannot
        hand its lookups over, or the index is off)."""
        lookup_keys = getattr(self.kith.protector, "lookup_keys", None)
        if lookup_keys is None or not self.enabled:
            return None
        return self.maker(lookup_keys([*self.kinds.values(), *self.pair_kinds.values()]))

    def pair_tokens(self, table: str, names: Iterable[str | None]) -> set[int]:
        """The pair tokens of one row of ``table`` with these names (see :func:`pairs`)."""
        return self.maker().pair_tokens(table, names)

    def tokens(
        self,
        table: str,
        values: Mapping[str, str | None],
        known: dict[tuple[str, str], int] | None = None,
    ) -> set[int]:
        """See :meth:`TokenMaker.tokens`."""
        return self.maker().tokens(table, values, known)

    def fingerprint(self) -> str:
        """Changes when the keys or the format change: an index built before is not used."""
        return self.kith.protector.lookup_key("name-prefix:fingerprint", FORMAT)[:64]

    async def complete(self, writing: uuid.UUID | None = None) -> bool:
        """Whether a search may trust the index; turned off, it is emptied here (once).
        ``writing``: the contact being indexed now, which does not make it incomplete."""
        if not self.enabled:
            await self.clear_when_off()
            return False
        if self._complete:
            return True
        state = await NameIndexState.select(NameIndexState.fingerprint).first().run()
        if state is not None:
            self._complete = state["fingerprint"] == self.fingerprint()
        elif not await Contact.exists().where(Contact.id != (writing or uuid.UUID(int=0))).run():
            # A new installation: every contact to come is indexed as it is written.
            await self.mark_complete()
        return self._complete

    async def mark_complete(self) -> None:
        await NameIndexState.delete(force=True).run()
        await NameIndexState.insert(
            NameIndexState(fingerprint=self.fingerprint(), built_at=utcnow())
        ).run()
        self._complete = True

    async def clear_when_off(self) -> None:
        """Delete every token and the record of completeness, once per process: what was
        written while the index was off is missing from it, so it must be rebuilt."""
        if self._cleared:
            return
        await NameIndexState.delete(force=True).run()
        await NameToken.delete(force=True).run()
        self._cleared = True

    async def before_new_rows(self) -> None:
        """Before a bulk load's first rows are indexed (:func:`index_rows`): a new
        installation's empty index is complete from now on, as :meth:`write` makes it."""
        if self.enabled and not self._checked:
            self._checked = True
            await self.complete()

    async def write(
        self,
        subject_id: uuid.UUID,
        table: str,
        row_id: Any,
        values: Mapping[str, str | None],
        new: bool,
    ) -> None:
        if table not in self.columns:
            return
        if not self.enabled:
            await self.clear_when_off()
            return
        if not self._checked:
            # The first contact of a new installation makes the (empty) index complete.
            self._checked = True
            await self.complete(writing=subject_id)
        source = _source(table, row_id)
        rows = [(token, subject_id, source) for token in self.tokens(table, values)]
        if new:
            # Nothing reads them back in this transaction: written with its other deferred
            # statements (one round trip on PostgreSQL).
            await _insert(rows, defer=True)
            return
        # Tokens this transaction deferred must be there to be replaced.
        await run_deferred(NameToken._meta.db)
        await (
            NameToken.delete()
            .where((NameToken.contact == subject_id) & (NameToken.source == source))
            .run()
        )
        await _insert(rows)

    async def candidates(
        self, query: Sequence[str], after: uuid.UUID | None, limit: int
    ) -> list[uuid.UUID] | None:
        """Up to ``limit`` contacts after ``after`` whose names may match, in id order; None
        when the index cannot answer (off, incomplete, or no word of two characters)."""
        usable = [word[:MAX_PREFIX] for word in query if len(word) >= MIN_PREFIX]
        if not usable or not self.kinds or not await self.complete():
            return None
        kinds = list(self.kinds.values())
        usable = sorted(dict.fromkeys(usable), key=len, reverse=True)
        after = after or uuid.UUID(int=0)
        if len(usable) > 1 and NameToken._meta.db.engine_type == "postgres":
            sql, args = self._intersection(usable, kinds, after, limit)
        else:
            sql, args = self._probed(usable, kinds, after, limit)
        rows = await NameToken.raw(sql, *args).run()
        return [_as_uuid(row["contact"]) for row in rows]

    def _probed(
        self, words: list[str], kinds: list[str], after: uuid.UUID, limit: int
    ) -> tuple[str, list[Any]]:
        """The first word's contacts read in order, the others probed for each of them."""
        # The longest word is likely the rarest. (Counting each word's tokens first cost more
        # than it saved on PostgreSQL at a million contacts.)
        driver, others = words[0], words[1:]
        branches: list[str] = []
        args: list[Any] = []
        for kind in kinds:
            sql = (
                "SELECT DISTINCT t.contact FROM kith_name_token t "
                "WHERE t.token = {} AND t.contact > {}"
            )
            args += [self.token(kind, driver), after]
            for word in others:
                # A scalar subquery, not EXISTS: PostgreSQL may turn EXISTS into a join that
                # reads every contact of the other word; this is an index probe per candidate.
                sql += (
                    " AND (SELECT 1 FROM kith_name_token u WHERE u.contact = t.contact "
                    f"AND u.token IN ({', '.join('{}' for _ in kinds)}) LIMIT 1) IS NOT NULL"
                )
                args += [self.token(other, word) for other in kinds]
            branches.append(f"SELECT contact FROM ({sql} ORDER BY t.contact LIMIT {{}}) b")
            args.append(limit)
        return " UNION ".join(branches) + " ORDER BY contact LIMIT {}", [*args, limit]

    def _intersection(
        self, words: list[str], kinds: list[str], after: uuid.UUID, limit: int
    ) -> tuple[str, list[Any]]:
        """Each word's contacts (under every column's key) read as index ranges in contact
        order and joined. On PostgreSQL at a million contacts, probing the other words for each
        contact of a common first word cost thousands of random index reads (25-29 ms); the
        ranges are read in order instead (measured at 100 k: 0.4 ms against 2.5 ms at the
        median, 47 buffers against 18,000)."""
        streams: list[str] = []
        args: list[Any] = []
        for word in words:
            arms = " UNION ALL ".join(
                "SELECT contact FROM kith_name_token WHERE token = {} AND contact > {}"
                for _ in kinds
            )
            streams.append(f"({arms})")
            for kind in kinds:
                args += [self.token(kind, word), after]
        sql = f"SELECT w0.contact FROM {streams[0]} w0"
        for number, stream in enumerate(streams[1:], 1):
            sql += f" JOIN {stream} w{number} ON w{number}.contact = w0.contact"
        # A contact with a word in two columns comes twice from that word's ranges.
        sql += " GROUP BY w0.contact ORDER BY w0.contact LIMIT {}"
        return sql, [*args, limit]

    def _tables(self) -> dict[str, tuple[type[Table], str]]:
        """Each table with name fields: its class and subject column."""
        classes = {
            str(t._meta.tablename): t for app in self.kith.database.apps for t in app.table_classes
        }
        found = {}
        for name in self.columns:
            table = classes.get(name)
            subject = subject_column(table) if table is not None else None
            if table is not None and subject is not None:
                found[name] = (table, subject)
        return found

    async def plugin_names(self, contact_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
        """The plugins' name fields of these contacts, readable, to check candidates against
        (core's own are on the contact row)."""
        found: dict[uuid.UUID, list[str]] = {}
        for name, (table, subject) in self._tables().items():
            if name == SUBJECT_TABLE or not contact_ids:
                continue
            columns = self.columns[name]
            pk = table._meta.primary_key
            key = pk._meta.name
            owner = table._meta.get_column_by_name(subject)
            rows = await (
                table.select(pk, owner, *(table._meta.get_column_by_name(c) for c in columns))
                .where(owner.is_in(list(contact_ids)))
                .run()
            )
            for row in rows:
                plain = await self.kith.protector.reveal(
                    row[subject], name, row[key], {c: row[c] for c in columns}
                )
                found.setdefault(row[subject], []).extend(v for v in plain.values() if v)
        return found

    async def rebuild(self, batch_size: int = 500) -> int:
        """Index every row of every name field again, with the current keys; the number of
        rows read. Searches decrypt until it is done."""
        if not self.enabled:
            await self.clear_when_off()
            return 0
        await NameIndexState.delete(force=True).run()
        self._complete = False
        seen = 0
        for name, (table, subject) in self._tables().items():
            seen += await self._rebuild_table(table, subject, self.columns[name], batch_size)
        await self.mark_complete()
        await _vacuum()
        return seen

    async def _rebuild_table(
        self, table: type[Table], subject: str, columns: tuple[str, ...], batch_size: int
    ) -> int:
        pk = table._meta.primary_key
        key = pk._meta.name
        name = str(table._meta.tablename)
        selected = [table._meta.get_column_by_name(c) for c in dict.fromkeys((subject, *columns))]
        cursor: Any = None
        seen = 0
        while True:
            query = table.select(pk, *selected).order_by(pk).limit(batch_size)
            if cursor is not None:
                query = query.where(pk > cursor)
            rows = await query.run()
            if not rows:
                return seen
            cursor = rows[-1][key]
            seen += len(rows)
            found: list[tuple[int, uuid.UUID, int]] = []
            for row in rows:
                if row[subject] is None:
                    continue
                plain = await self.kith.protector.reveal(
                    row[subject], name, row[key], {c: row[c] for c in columns}
                )
                source = _source(name, row[key])
                found += [(t, row[subject], source) for t in self.tokens(name, plain)]
            async with NameToken._meta.db.transaction():
                await (
                    NameToken.delete()
                    .where(
                        NameToken.contact.is_in(list({row[subject] for row in rows}))
                        & NameToken.source.is_in([_source(name, row[key]) for row in rows])
                    )
                    .run()
                )
                await _insert(found)


async def _insert(rows: Sequence[tuple[int, uuid.UUID, int]], *, defer: bool = False) -> None:
    for start in range(0, len(rows), _INSERT_ROWS):
        chunk = rows[start : start + _INSERT_ROWS]
        await (_INSERT_TOKENS.defer if defer else _INSERT_TOKENS.run)(
            token=[row[0] for row in chunk],
            contact=[row[1] for row in chunk],
            source=[row[2] for row in chunk],
        )


async def _insert_many(rows: Sequence[tuple[int, uuid.UUID, int]]) -> None:
    """The tokens of many new rows (a dozen each): the engine's bulk load."""
    await insert_rows(NameToken, ("token", "contact", "source"), rows)


async def _vacuum() -> None:
    """After a rebuild on PostgreSQL: vacuumed, a search reads the index alone (the visibility
    map marks every row, no visit to the table per candidate), and analysed, the planner knows
    how common each token is. Autovacuum would get there later; searches are slow until then.
    Not inside a transaction, where PostgreSQL refuses to vacuum."""
    engine = NameToken._meta.db
    if engine.engine_type == "postgres" and engine.current_transaction.get() is None:
        await engine.run_ddl(f"VACUUM (ANALYZE) {NameToken._meta.tablename}")


def _as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def name_index(kith: Kith) -> NameIndex:
    """The name index of ``kith`` (made on first use)."""
    index = kith.state.get(_STATE_KEY)
    if not isinstance(index, NameIndex):
        index = kith.state[_STATE_KEY] = NameIndex(kith)
    return index


async def index_row(
    kith: Kith,
    subject_id: uuid.UUID,
    table: str,
    row_id: Any,
    values: Mapping[str, str | None],
    *,
    new: bool = False,
) -> None:
    """Index the name fields of one personal row (plaintext ``values`` by column), replacing
    what it had (``new``: it had nothing). Call it in the transaction that writes the row; a
    plugin does so for its own fields declared ``name_search=True``."""
    await name_index(kith).write(subject_id, table, row_id, values, new)


async def index_rows(
    kith: Kith, rows: Iterable[tuple[uuid.UUID, str, Any, Mapping[str, str | None]]]
) -> None:
    """Index many new personal rows at once, each ``(subject, table, row id, values)``: one
    insert for all their tokens (an import, a bulk load)."""
    index = name_index(kith)
    if not index.enabled:
        await index.clear_when_off()
        return
    # Only for this call: the prefixes of people's names are not kept in memory after it.
    known: dict[tuple[str, str], int] = {}
    found: list[tuple[int, uuid.UUID, int]] = []
    for subject, table, row_id, values in rows:
        source = _source(table, row_id)
        found += [(token, subject, source) for token in index.tokens(table, values, known)]
    await _insert_many(found)


async def insert_tokens(
    kith: Kith, rows: Iterable[tuple[uuid.UUID, str, Any, Iterable[int]]]
) -> None:
    """Index many new personal rows whose tokens were computed already (by an import's worker
    process, with :meth:`NameIndex.worker_maker`), each ``(subject, table, row id, tokens)``."""
    index = name_index(kith)
    if not index.enabled:
        await index.clear_when_off()
        return
    found: list[tuple[int, uuid.UUID, int]] = []
    for subject, table, row_id, tokens in rows:
        source = _source(table, row_id)
        found += [(token, subject, source) for token in tokens]
    await _insert_many(found)


async def forget_row(subject_id: uuid.UUID, table: str, row_id: Any) -> None:
    """Delete the name tokens one personal row gave its subject (the row moves to another
    subject, or goes)."""
    await (
        NameToken.delete()
        .where((NameToken.contact == subject_id) & (NameToken.source == _source(table, row_id)))
        .run()
    )


async def forget_subject(contact_id: uuid.UUID) -> int:
    """Delete every name token of a data subject whose contact row stays (erasure, shredding);
    how many there were. Deleting a contact deletes its tokens (see
    :class:`kith.tables.NameToken`)."""
    owned = NameToken.contact == contact_id
    count = await NameToken.count().where(owned).run()
    if count:
        await NameToken.delete().where(owned).run()
    return int(count)


async def rebuild(kith: Kith, batch_size: int = 500) -> int:
    """Build the index again with the current keys (after a re-index of the blind indexes)."""
    index = kith.state[_STATE_KEY] = NameIndex(kith)
    return await index.rebuild(batch_size)


async def rebuild_if_incomplete(kith: Kith, batch_size: int = 500) -> int | None:
    """Build the index when a search could not trust it; the rows read, or None when it was
    complete (or is turned off)."""
    index = kith.state[_STATE_KEY] = NameIndex(kith)
    if not index.enabled:
        await index.clear_when_off()
        return None
    if await index.complete():
        return None
    return await index.rebuild(batch_size)


# After the plugins' data migrations (the privacy plugin encrypts old plaintext first).
@hookimpl(trylast=True)
async def kith_after_migrate(kith: Kith) -> None:
    await rebuild_if_incomplete(kith)
