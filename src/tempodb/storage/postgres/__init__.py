"""The PostgreSQL backend: columnar blocks and a row-shaped write head, shared by servers.

Several ``tempodb serve`` processes can run on one PostgreSQL database behind a load balancer:
every request is one transaction, and nothing that matters is kept in a server.

Modules
    ``schema`` (tables, migrations), ``series`` (metadata, and resolving a write's series),
    ``head`` (the write head: upserts, reads merging head and blocks), ``blocks`` (merging
    points into blocks), ``writes`` (where a write's points go; the fold transaction),
    ``fold`` (the thread that decides when to fold) and ``store`` (``PostgresStore``:
    connections, transactions, the Store contract).

Connections
    ``PostgresStore(url)`` keeps a ``psycopg_pool.ConnectionPool``.  Every session sets
    ``synchronous_commit = on``, so a write is acknowledged only after its commit is durable.
    The common small write (an overwrite of series that exist) is one statement in autocommit
    mode, so one round trip and its own transaction (``head.OVERWRITE_KNOWN``); other writes
    run in a transaction.  (psycopg's pipeline mode was measured too: it made small writes
    slower, 6.5 against 3.6 ms, so it is not used.)  Reads run in autocommit mode: the series
    is looked up, then its blocks and its head rows are read by one statement (one snapshot,
    so a read never sees half of a write or of a fold).  A connection that the server closed
    is replaced and the read, the idempotent statement or the uncommitted transaction run
    again.

Tables (schema version 4); every primary and unique key of the tables below ``databases``
starts with the database id ``db``, and those of the tables owned by a series hold its ``sid``.
    ``databases(id, key, secret_hash, name, admin, revoked_at)``
        One row per API key (``id`` from a sequence, never reused); secrets only as hashes.
        ``revoked_at`` (version 2) is NULL while the key works.
    ``series(db, sid, id, key, name, tags, attributes)``
        Primary key (db, sid); (db, id) and (db, key) are unique.  ``sid`` comes from a sequence,
        so that nothing deleted reappears under a new owner.  ``id`` and ``key`` use the "C"
        collation: series are ordered by the bytes of their keys whatever the database's locale.
        ``tags`` (a text array: order kept, no duplicates) and ``attributes`` (a JSON object, in
        the order given) are what a series reads back as.
    ``series_tag(db, sid, tag)`` and ``series_attr(db, sid, name, value)``
        The tags and attributes again, indexed by (db, tag) and (db, name, value) for filters.
    ``block(db, sid, first, last, n, fmt, ts, vals, mask)``
        Points, primary key (db, sid, first).  The format, the invariants and how writes
        re-chunk a series are those of ``tempodb.storage.blocks``; blocks hold at most
        ``block_points`` points (998 unless configured).  The blobs, compressed by the block
        codec already, are stored as they are (``STORAGE EXTERNAL``): reading them is a copy.
    ``head(db, sid, ts, v, is_int, whole)`` (version 3)
        Fresh points, one row per point, primary key (db, sid, ts).  Rows come and go all the
        time: the table is vacuumed early and keeps 10 % of its pages free for updates.
    ``idempotency(db, key, fingerprint, skipped, created)`` (version 4)
        The idempotency keys of applied writes (``storage/idempotency.py``).
    ``retention(db, keep_ms, tier_keep_ms)`` and ``tier(db, sid, day, n, data)`` (version 5)
        Retentions and the 15-minute tier, described in ``retention``.
    ``series_lock(db, sid)`` (version 6)
        On Citus, one row per series beside its points: the series lock there (``citus``).
        Empty and unused on one PostgreSQL.

The head and its invariants
    * A series' points are its block points, where a head row replaces the block point of the
      same timestamp (or adds a point): a head row always holds the point's whole value.
    * ``whole`` is false on a row that an increment created without reading the blocks.  Such
      a row is whole too once its transaction commits: if a block spans its timestamp, the
      increment adds the block's value there before committing (``head.write``), and blocks
      gain points only in transactions that first take every head row of the series (a fold,
      a large write, a range delete), so a committed ``whole = false`` row has no block point
      at its timestamp.  ``whole`` only spares later increments that look at the blocks.
    * An increment adds to the head row (``v = head.v + excluded.v``; an integer only if both
      are), an overwrite replaces it.  A sum that is not finite or an integer beyond 2**53 is
      marked by the upsert itself (computed in numeric and bigint, stored as NaN or Infinity,
      which no point is): the transaction rolls back, the sum is read again and
      ValueOutOfRange says it; the request writes nothing.
    * Why a head: it takes the one thing blocks do badly (below: a single-point write
      rewrites a block).  A small write is an upsert of rows; the fold rewrites a block once
      per ``head_points`` points of a series.

Writes
    A small overwrite whose series all exist locks them (``FOR KEY SHARE``) and upserts its
    points in one statement, which writes nothing when a series is missing; then, and for
    every other write, a transaction resolves all its series in one statement (``SELECT ...
    FOR KEY SHARE`` or ``FOR UPDATE``, in sid order), creates the missing ones in one more
    (``INSERT ... ON CONFLICT DO NOTHING RETURNING``, ordered by key) and finds those that a
    concurrent request created first in a third.  Series created by writes have no tags or
    attributes.  Then, per series:

    * fewer than ``direct_points`` points (64 unless configured): into the head, one
      ``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO UPDATE`` for all those series;
    * more, in a series this request created: straight into new blocks, one INSERT for all;
    * more, in an existing series (the request then locks its series ``FOR UPDATE``): its head
      rows are folded into its blocks, then the points merged into them.

The fold
    A background thread of each store (``fold.Folder``) folds a series once its head holds
    ``head_points`` points (1,024 unless configured) or ``fold_after_s`` seconds (30) after
    its first head point; a sweep at start and now and then finds head rows that no live store
    counts (a server that crashed).  The thread has a connection of its own, so that folds
    never take one that a request waits for.  A fold is one transaction: lock the series'
    rows ``FOR UPDATE SKIP LOCKED`` (a series that a writer or another fold holds is skipped
    and tried again later), take their head rows (``DELETE ... RETURNING``) and merge them into the
    blocks, replacing the block points of the same timestamps.  A crash in the middle rolls
    it all back: nothing is lost and nothing shows twice.  Two servers folding at once never
    take the same series, and the deleted rows are gone for any other fold.

Locks
    Writers of the head hold ``FOR KEY SHARE`` on their series' rows: any number of them run
    side by side (their head rows ordered by (sid, ts), so that they take row locks in one
    order), while folds, range deletes, large writes, series updates and deletes (``FOR
    UPDATE``) wait for them or, for a fold, skip them.  So a head write never interleaves
    with a change of its series' blocks, and a series deleted while a write waits is created
    again by that write.  Concurrent increments from any number of servers add up exactly;
    overwrites are last-writer-wins per point.  A transaction that fails on a deadlock or a
    serialization error is retried from the start.  Either the whole request commits or
    nothing does.

Why blocks
    Measured with ``bench/pg_layout.py`` (PostgreSQL 15, 2 cores, fsync on; 10 series x 100,000
    minute points), a row per point (primary key db+sid+ts, loaded with binary COPY, read with
    binary COPY into numpy) against blocks of 998 points:

    ============================================ ============ =============
    measure                                      rows         blocks
    ============================================ ============ =============
    ingest, 10,000-point transactions            0.56M pts/s  3.1M pts/s
    raw read of 14,400 points                    13 ms        1.0 ms
    hourly rollup input, 30 days (43,200 pts)    40 ms        1.8 ms
    (the same hourly means by GROUP BY in SQL)   9.2 ms
    daily rollup input, 100,000 points           83 ms        3.3 ms
    bytes per point, indexes and TOAST included  109          12.8
    single-point increments/s, 1 thread          3,600        940
    single-point increments/s, 8 threads         4,600        1,250
    ============================================ ============ =============

    Blocks win everything but single-point increments, which rewrite a block (a handful of
    round trips and the block's 12 KB, against one upsert of a row).  998 points make a full
    block's blobs fill whole TOAST chunks: 1,024 points cost 16.9 bytes a point, 4,096 cost
    15.2, and TOAST's compression gains nothing on them.

Running on Citus
    ``tempodb citus setup --database-url URL`` (``citus.setup``) creates or migrates the schema
    on the coordinator and distributes every table as ``citus.LAYOUT`` says; ``citus`` also
    explains the one thing that differs there: the series lock is a row of ``series_lock``,
    beside the series' points, not the ``series`` row.

    ``tempodb_schema`` stays a local table of the coordinator, where the servers connect; Citus
    propagates a later migration's DDL on these tables to their shards, and ``migrate``
    distributes a table that a later migration adds as ``citus.LAYOUT`` says.
    ``databases`` is small and read on every authentication: a reference table, copied to every
    node.  A database's series metadata lives on one shard (distributed by ``db``, the three
    tables colocated), while the points, which are the bulk of the data, are spread by series
    (``block``, ``head`` and ``series_lock`` distributed by ``sid``, colocated), so one large
    database still
    uses every node.  Every
    primary and unique key holds its table's distribution column, as Citus requires, and the
    statements stay simple (Citus runs ``FOR UPDATE`` in single-shard queries only):

    * every statement on ``series``, ``series_tag`` and ``series_attr`` says ``db = <value>``,
      and the filter subqueries join colocated tables on that same value: router queries, each
      answered by one shard, including the ``INSERT ... ON CONFLICT`` and ``FOR UPDATE``;
    * the statements on ``head`` that serve one series say ``sid = <value>``; the write's
      upsert, the fold's ``DELETE ... RETURNING`` and the head listing name several series
      (multi-shard statements, in one distributed transaction); the increment's look at the
      blocks is a second statement on Citus (which refuses a correlated subquery over a CTE),
      one per series.  The one-statement small write (``head.OVERWRITE_KNOWN``) locks
      ``series`` rows: it is switched off on Citus;
    * every statement on ``block`` but three says ``sid = <value>``, with subqueries on the same
      table and the same value only (never a join with ``series``): router queries too, and so
      is the write's ``WITH run AS (DELETE ... RETURNING) SELECT ...``, a data-modifying CTE
      over the blocks of one series.  The three exceptions insert the blocks of several new
      series at once, or delete those of several series (``sid = ANY(...)``) or of a whole
      database (``db = <value>``): multi-shard statements, which Citus runs in one
      distributed transaction;
    * ``databases`` is read by key and changed by single-row statements, which Citus applies
      to every copy of a reference table in the same transaction;
    * the series lock is a row lock on the series' ``series_lock`` row, in the shard of its
      points (on one PostgreSQL, on its ``series`` row), not an advisory lock, so it holds
      whichever node a server is connected to; the advisory lock of the migrations only needs
      the coordinator;
    * a write touches the shard of the database's metadata and the shards of its series'
      blocks: Citus commits such a transaction on all of them with two-phase commit, so a
      request is still all or nothing;
    * ``sid`` and ``databases.id`` come from bigint sequences, which Citus supports as column
      defaults of distributed and reference tables; the foreign key from ``series`` to
      ``databases`` is one from a distributed table to a reference table, which Citus allows.
"""

from tempodb.storage.postgres.schema import SCHEMA_VERSION
from tempodb.storage.postgres.store import (
    BLOCK_POINTS,
    DIRECT_POINTS,
    FOLD_AFTER_S,
    HEAD_POINTS,
    PostgresStore,
)

__all__ = [
    "BLOCK_POINTS",
    "DIRECT_POINTS",
    "FOLD_AFTER_S",
    "HEAD_POINTS",
    "SCHEMA_VERSION",
    "PostgresStore",
]
