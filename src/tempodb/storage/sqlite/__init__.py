"""The embedded default backend: one SQLite file, points kept in time-ordered columnar blocks.

The store reads top to bottom as its modules:

``schema``
    The file (``<data_dir>/tempodb.sqlite3``, WAL, ``synchronous=FULL``), its tables and the
    migrations between schema versions.
``writer``
    One thread owns the only connection that writes and commits queued calls in groups, one
    savepoint per call; what it remembers between transactions (series and last blocks, in
    bounded LRU maps).
``series``
    Series metadata in SQL: lookups, filters, creation one at a time or many in one
    statement, and the resolution of the series a write names.
``head``
    The write head: fresh points of small writes as rows of one table, beside the blocks.
    Invariant: every head row of a series is later than every point in its blocks, so a
    series' points are its block points followed by its head rows, never two values for one
    timestamp; reads (ranges, single values) put the two side by side in one snapshot, and
    deletes cover both.
``fold``
    When the writer thread moves series' head rows into their blocks: by count (between
    groups of calls, inside their transaction) and by age (when idle), one transaction per
    step, so a crash in the middle loses nothing and shows nothing twice.
``points``
    Every change the writer makes to the points: small writes into the head (planned
    without a statement when the cache knows their series), large ones straight to the
    blocks (with the series' head rows), the fold as an append after a series' blocks; the
    plain last block of a series, grown in place and compressed once full; writes of many
    series encoded at once; merges, range deletes.
``store``
    ``SQLiteStore``, the ``Store`` contract over the above: readers (one connection per
    thread, inside a snapshot, beside the writer), keys, backups.

The cache of decoded blocks
    Reads take the blocks they need from a bounded LRU of decoded blocks (``BlockCache``,
    256 MiB unless ``read_cache_mb`` says otherwise; 0 turns it off), keyed by (rowid, gen):
    the read lists the keys of its blocks in its snapshot, reads and decodes only the blobs
    of those not cached (in the same snapshot), and copies the parts it returns.  A block
    rewritten by anyone has a new key, so no entry needs invalidating; stale ones age out.
    Streamed reads (``cache=False``) neither use nor fill it.  Beneath it, SQLite's own page
    cache: ``page_cache_mb`` (32 MiB) for the writer, at most 2 MiB for each reader.

Backups
    ``SQLiteStore.backup(path)`` copies the database with SQLite's online backup API in one
    step, inside one read transaction: a consistent snapshot, taken while the writer goes on.
"""

from tempodb.storage.sqlite.schema import FILE_NAME, MIGRATIONS, SCHEMA_VERSION
from tempodb.storage.sqlite.store import (
    BLOCK_POINTS,
    DEFAULT_MAX_QUEUE,
    DEFAULT_READ_CACHE_MB,
    DIRECT_POINTS,
    FOLD_AFTER_S,
    HEAD_POINTS,
    SQLiteStore,
)

__all__ = [
    "BLOCK_POINTS",
    "DEFAULT_MAX_QUEUE",
    "DEFAULT_READ_CACHE_MB",
    "DIRECT_POINTS",
    "FILE_NAME",
    "FOLD_AFTER_S",
    "HEAD_POINTS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SQLiteStore",
]
