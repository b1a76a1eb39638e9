"""The durable outbox: every event is committed to SQLite before any sink sees it.

One file, ``outbox.sqlite3`` in the state directory, shared by every proxy of the user:

* ``events``: one row per event, the payload exactly as the core encoded it, a stable event id
  (a UUID assigned at commit) and a few fields extracted for batching and stats.
* ``deliveries``: one row per (sink, event), ``pending`` -> ``delivered`` | ``rejected``, with the
  attempt count and the last error (already redacted by the sink).

Several processes may share the file: WAL mode lets readers run beside the writer, every write is
one short ``BEGIN IMMEDIATE`` transaction, and ``busy_timeout`` makes a writer wait for another
instead of failing. A process claims a batch by leasing its rows (owner + expiry), so two proxies
(or a proxy and ``flush``) never send the same pending rows at once; a killed process's leases
simply expire.

``synchronous=NORMAL`` with WAL keeps every committed transaction across a process crash
(kill -9), which is the failure that matters here; only a power loss may lose the last commits.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec

from ._extract import extract_fields
from .sink_base import Batch
from .wal_file import create_wal_file

OUTBOX_FILENAME = "outbox.sqlite3"
STATE_DIR_ENV = "CODEX_RPC_ANALYTICS_STATE_DIR"
SCHEMA_VERSION = 2
# Long enough to ride out another process's short transaction, short enough not to look hung.
BUSY_TIMEOUT_MS = 5000
# Bounds one commit transaction so a large backlog never holds the write lock for long.
COMMIT_CHUNK = 2000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL,
    client TEXT,
    thread_id TEXT,
    turn_id TEXT,
    initialization_mode TEXT,
    status TEXT
);
CREATE INDEX IF NOT EXISTS events_type_created ON events (event_type, created_at);
CREATE TABLE IF NOT EXISTS deliveries (
    sink_key TEXT NOT NULL,
    seq INTEGER NOT NULL REFERENCES events (seq),
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'rejected')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    updated_at REAL NOT NULL,
    lease_owner TEXT,
    lease_until REAL,
    PRIMARY KEY (sink_key, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (sink_key, seq)
    WHERE state = 'pending';
"""

# Version 2: pruning finds an event's deliveries by seq; pending events dropped over the cap
# are counted per sink.
_SCHEMA_V2 = """
CREATE INDEX IF NOT EXISTS deliveries_seq ON deliveries (seq);
CREATE TABLE IF NOT EXISTS sink_drops (
    sink_key TEXT PRIMARY KEY,
    dropped INTEGER NOT NULL
) WITHOUT ROWID;
"""
# Pruning deletes at most this many events a transaction: the write lock stays short.
PRUNE_CHUNK = 2000


# Without the hint SQLite walks the primary key from the oldest row, past every delivered one:
# each claim would cost O(all deliveries ever) instead of O(batch).
_PENDING = "deliveries AS d INDEXED BY deliveries_pending"


class OutboxError(Exception):
    """The outbox cannot be opened or used; the message is one line, fit for a CLI error."""


class OutboxCorrupt(OutboxError):
    """The file is not a database, or a damaged one: it is moved aside, not retried forever."""


def is_corruption(exc: BaseException) -> bool:
    """SQLITE_CORRUPT or SQLITE_NOTADB (primary result codes) behind a sqlite3 error."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in (sqlite3.SQLITE_CORRUPT,
                                                     sqlite3.SQLITE_NOTADB)


class SinkCounts(msgspec.Struct):
    delivered: int = 0
    pending: int = 0
    rejected: int = 0
    # Pending events dropped because the sink's pending cap was reached (oldest first).
    dropped: int = 0


def resolve_state_dir(explicit: Path | None = None, configured: Path | None = None) -> Path:
    """Explicit argument (a flag) > ``$CODEX_RPC_ANALYTICS_STATE_DIR`` > ``configured`` (the
    config file's ``state_dir``) > ``${XDG_STATE_HOME:-~/.local/state}/codex-rpc-analytics``."""
    if explicit is not None:
        return explicit.expanduser()
    env = os.environ.get(STATE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    if configured is not None:
        return configured
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "state"
    return base / "codex-rpc-analytics"


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _private_dir(state_dir: Path) -> None:
    """Create the state directory 0700, and tighten an existing one we own to 0700: the outbox
    and the owners' lock files describe the user's sessions."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = os.stat(state_dir)
    if st.st_mode & 0o077 and st.st_uid == os.getuid():
        os.chmod(state_dir, 0o700)


def _private_files(path: Path) -> None:
    """The database and its WAL and shared-memory files, 0600 (an older version, or a umask,
    may have left them readable by others)."""
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            st = os.stat(name)
            if st.st_mode & 0o077 and st.st_uid == os.getuid():
                os.chmod(name, 0o600)
        except OSError:
            continue


def loose_permissions(state_dir: Path) -> list[str]:
    """What in the state directory others may still read (files we could not tighten)."""
    loose = []
    for path in (state_dir, state_dir / OUTBOX_FILENAME):
        try:
            mode = os.stat(path).st_mode & 0o777
        except OSError:
            continue
        if mode & 0o077:
            loose.append(f"{path} (mode {mode:04o})")
    return loose


def _connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    if readonly:
        uri = path.absolute().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
    else:
        conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


class Outbox:
    """One connection to the outbox. Not shared between threads: each thread opens its own."""

    def __init__(self, conn: sqlite3.Connection, path: Path, version: int = SCHEMA_VERSION
                 ) -> None:
        self._conn = conn
        self.path = path
        self.version = version
        self._identity = _file_identity(path)

    @classmethod
    def open(cls, state_dir: Path) -> Outbox:
        """Open for writing, creating the state directory and schema when missing. Raises
        :class:`OutboxCorrupt` when the file is not a usable database."""
        try:
            _private_dir(state_dir)
            path = state_dir / OUTBOX_FILENAME
            if not path.exists():
                # Payloads describe the user's sessions: private (0600), and WAL from the
                # start, as proxies starting together may open a new outbox (see wal_file).
                create_wal_file(path)
            conn = _connect(path, readonly=False)
        except (OSError, sqlite3.Error) as exc:
            raise OutboxError(f"cannot open outbox in {state_dir}: {exc}") from exc
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise OutboxError(f"{path} was written by a newer codex-rpc-analytics")
            if version < SCHEMA_VERSION:
                # Concurrent first opens are safe: the schema uses IF NOT EXISTS, under the lock.
                with _transaction(conn):
                    _create_schema(conn)
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            # A damaged file can open and answer PRAGMAs: read the tables once to be sure.
            conn.execute("SELECT MAX(seq) FROM events").fetchone()
            conn.execute("SELECT COUNT(*) FROM sink_drops").fetchone()
        except (OutboxError, sqlite3.Error) as exc:
            conn.close()
            if isinstance(exc, OutboxError):
                raise
            if is_corruption(exc):
                raise OutboxCorrupt(f"{path} is damaged: {exc}") from exc
            raise OutboxError(f"cannot open outbox in {state_dir}: {exc}") from exc
        _private_files(path)
        return cls(conn, path)

    def is_current(self) -> bool:
        """Whether the file this connection writes is still the one at ``path`` (it may have
        been deleted, or moved aside by another process that found it damaged)."""
        return self._identity is not None and _file_identity(self.path) == self._identity

    @classmethod
    def open_readonly(cls, state_dir: Path) -> Outbox:
        """Open an existing outbox for reading (stats, events); never creates anything."""
        path = state_dir / OUTBOX_FILENAME
        if not state_dir.is_dir():
            raise OutboxError(f"state directory {state_dir} does not exist (nothing recorded yet)")
        if not path.is_file():
            raise OutboxError(f"no outbox in {state_dir} (nothing recorded yet)")
        try:
            conn = _connect(path, readonly=True)
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot read outbox {path}: {exc}") from exc
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.Error as exc:
            conn.close()
            raise OutboxError(f"cannot read outbox {path}: {exc}") from exc
        if not 1 <= version <= SCHEMA_VERSION:
            conn.close()
            raise OutboxError(f"{path} has an unknown schema version {version}")
        return cls(conn, path, version)

    def close(self) -> None:
        self._conn.close()

    # -- writing ------------------------------------------------------------------------------

    def commit(
        self, events: Sequence[tuple[str, bytes, float]], sink_keys: Iterable[str]
    ) -> None:
        """Store ``(event_type, payload, created_at)`` events with a pending row per sink."""
        keys = list(sink_keys)
        now = time.time()
        rows = []
        for event_id, (event_type, payload, created_at) in zip(
            _new_event_ids(len(events)), events, strict=True
        ):
            f = extract_fields(payload)
            rows.append(
                (event_id, event_type, payload, created_at, f.client, f.thread_id,
                 f.turn_id, f.initialization_mode, f.status)
            )
        with _transaction(self._conn):
            before = self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
            self._conn.executemany(
                "INSERT INTO events (event_id, event_type, payload, created_at, client,"
                " thread_id, turn_id, initialization_mode, status)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            # AUTOINCREMENT and the write lock make every new seq greater than `before`.
            for key in keys:
                self._conn.execute(
                    "INSERT INTO deliveries (sink_key, seq, state, updated_at)"
                    " SELECT ?, seq, 'pending', ? FROM events WHERE seq > ?",
                    (key, now, before),
                )

    def claim_batch(
        self,
        sink_key: str,
        owner: str,
        *,
        max_events: int,
        max_body_bytes: int,
        lease_s: float,
        group_by_originator: bool,
    ) -> Batch | None:
        """Lease the oldest claimable pending events of a sink as one batch, or None.

        A batch holds at most ``max_events`` events whose ``{"events":[...]}`` body fits in
        ``max_body_bytes`` (a single larger event still goes, alone). With
        ``group_by_originator`` every event shares the first one's client.
        """
        now = time.time()
        claimable = (
            "d.sink_key = ? AND d.state = 'pending'"
            " AND (d.lease_until IS NULL OR d.lease_until < ? OR d.lease_owner = ?)"
        )
        with _transaction(self._conn):
            first = self._conn.execute(
                f"SELECT e.client FROM {_PENDING} JOIN events e ON e.seq = d.seq"
                f" WHERE {claimable} ORDER BY d.seq LIMIT 1",
                (sink_key, now, owner),
            ).fetchone()
            if first is None:
                return None
            originator: str | None = first[0]
            group = " AND e.client IS ?" if group_by_originator else ""
            params: tuple[object, ...] = (sink_key, now, owner)
            if group_by_originator:
                params += (originator,)
            rows = self._conn.execute(
                f"SELECT d.seq, e.event_id, e.payload FROM {_PENDING}"
                f" JOIN events e ON e.seq = d.seq WHERE {claimable}{group}"
                f" ORDER BY d.seq LIMIT ?",
                (*params, max_events),
            ).fetchall()
            seqs: list[int] = []
            ids: list[str] = []
            payloads: list[bytes] = []
            size = len(b'{"events":[]}')
            for seq, event_id, payload in rows:
                added = len(payload) + (1 if payloads else 0)
                if payloads and size + added > max_body_bytes:
                    break
                size += added
                seqs.append(seq)
                ids.append(event_id)
                payloads.append(bytes(payload))
            self._lease(sink_key, seqs, owner, now + lease_s)
        return Batch(
            seqs=seqs,
            event_ids=ids,
            payloads=payloads,
            originator=originator if group_by_originator else None,
        )

    def foreign_lease_owners(self, sink_key: str, owner: str) -> list[str]:
        """Owners, other than ``owner``, holding unexpired leases on the sink's pending rows."""
        return [
            row[0]
            for row in self._conn.execute(
                f"SELECT DISTINCT d.lease_owner FROM {_PENDING} WHERE d.sink_key = ?"
                " AND d.state = 'pending' AND d.lease_owner IS NOT NULL AND d.lease_owner != ?"
                " AND d.lease_until >= ?",
                (sink_key, owner, time.time()),
            )
        ]

    def leased_count(self, sink_key: str, owners: Sequence[str]) -> int:
        if not owners:
            return 0
        return int(self._conn.execute(
            f"SELECT COUNT(*) FROM {_PENDING} WHERE d.sink_key = ? AND d.state = 'pending'"
            f" AND d.lease_owner IN ({_marks(owners)})",
            (sink_key, *owners),
        ).fetchone()[0])

    def release_owners(self, owners: Sequence[str]) -> int:
        """Drop every lease of ``owners`` (processes known to be dead): their rows are
        claimable at once instead of after the lease expires."""
        if not owners:
            return 0
        with _transaction(self._conn):
            cursor = self._conn.execute(
                "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL"
                f" WHERE state = 'pending' AND lease_owner IN ({_marks(owners)})",
                tuple(owners),
            )
        return cursor.rowcount

    def extend_lease(self, sink_key: str, seqs: Sequence[int], owner: str, until: float
                     ) -> list[int]:
        """Extend ``owner``'s lease on those of ``seqs`` it still holds (pending, leased by it
        or by nobody) and return them, in order. A row whose lease expired and that another
        process claimed since is not taken back: that process sends it, not us."""
        if not seqs:
            return []
        with _transaction(self._conn):
            marks = _marks(seqs)
            held = [row[0] for row in self._conn.execute(
                f"SELECT seq FROM deliveries WHERE sink_key = ? AND seq IN ({marks})"
                " AND state = 'pending' AND (lease_owner = ? OR lease_owner IS NULL)"
                " ORDER BY seq", (sink_key, *seqs, owner))]
            if held:
                self._lease(sink_key, held, owner, until)
        return held

    def _lease(
        self, sink_key: str, seqs: Sequence[int], owner: str | None, until: float | None
    ) -> None:
        self._conn.execute(
            "UPDATE deliveries SET lease_owner = ?, lease_until = ?"
            f" WHERE sink_key = ? AND seq IN ({_marks(seqs)})",
            (owner, until, sink_key, *seqs),
        )

    def mark_delivered(self, sink_key: str, seqs: Sequence[int]) -> None:
        self._settle(sink_key, seqs, "delivered", None)

    def mark_rejected(self, sink_key: str, seqs: Sequence[int], error: str) -> None:
        self._settle(sink_key, seqs, "rejected", error)

    def _settle(self, sink_key: str, seqs: Sequence[int], state: str, error: str | None) -> None:
        now = time.time()
        with _transaction(self._conn):
            self._conn.execute(
                "UPDATE deliveries SET state = ?, attempts = attempts + 1,"
                " last_error = COALESCE(?, last_error), updated_at = ?,"
                " lease_owner = NULL, lease_until = NULL"
                f" WHERE sink_key = ? AND state = 'pending' AND seq IN ({_marks(seqs)})",
                (state, error, now, sink_key, *seqs),
            )

    def record_failure(
        self, sink_key: str, seqs: Sequence[int], error: str, owner: str, lease_until: float
    ) -> None:
        """Count a failed attempt; the rows stay pending and leased while we wait to retry."""
        now = time.time()
        with _transaction(self._conn):
            self._conn.execute(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = ?, updated_at = ?,"
                f" lease_owner = ?, lease_until = ? WHERE sink_key = ? AND seq IN ({_marks(seqs)})",
                (error, now, owner, lease_until, sink_key, *seqs),
            )

    def release(self, owner: str) -> None:
        """Give up every lease of ``owner`` (at shutdown) so the next run may send at once."""
        with _transaction(self._conn):
            self._conn.execute(
                "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL"
                " WHERE lease_owner = ? AND state = 'pending'",
                (owner,),
            )

    def requeue_rejected(self, sink_keys: Sequence[str] | None = None) -> dict[str, int]:
        """Rejected (parked) events back to pending, for ``sink_keys`` (all sinks when None);
        the number re-queued per sink."""
        where = "" if sink_keys is None else f" AND sink_key IN ({_marks(sink_keys)})"
        params: tuple[object, ...] = () if sink_keys is None else tuple(sink_keys)
        with _transaction(self._conn):
            counts = {
                key: n for key, n in self._conn.execute(
                    f"SELECT sink_key, COUNT(*) FROM deliveries WHERE state = 'rejected'{where}"
                    " GROUP BY sink_key", params)
            }
            self._conn.execute(
                "UPDATE deliveries SET state = 'pending', lease_owner = NULL, lease_until = NULL,"
                f" updated_at = ? WHERE state = 'rejected'{where}", (time.time(), *params))
        return counts

    # -- upkeep -------------------------------------------------------------------------------

    def prune_settled(self, before: float) -> int:
        """Delete events created before ``before`` that no sink still needs (every delivery
        delivered, or none at all), with their deliveries, a chunk a transaction. Rejected and
        pending events are kept. Returns how many events were deleted."""
        deleted = 0
        last = 0
        while True:
            with _transaction(self._conn):
                seqs = [row[0] for row in self._conn.execute(
                    "SELECT seq FROM events WHERE seq > ? AND created_at < ? ORDER BY seq LIMIT ?",
                    (last, before, PRUNE_CHUNK))]
                if not seqs:
                    return deleted
                last = seqs[-1]
                marks = _marks(seqs)
                kept = {row[0] for row in self._conn.execute(
                    f"SELECT DISTINCT seq FROM deliveries WHERE seq IN ({marks})"
                    " AND state != 'delivered'", seqs)}
                settled = [seq for seq in seqs if seq not in kept]
                if settled:
                    marks = _marks(settled)
                    self._conn.execute(f"DELETE FROM deliveries WHERE seq IN ({marks})", settled)
                    self._conn.execute(f"DELETE FROM events WHERE seq IN ({marks})", settled)
                    deleted += len(settled)

    def enforce_pending_cap(self, sink_key: str, cap: int) -> int:
        """Keep at most ``cap`` pending events for the sink: drop the oldest beyond it (their
        delivery rows; the events stay for the user's own stats until pruned), counted in
        ``sink_drops``. Returns how many were dropped."""
        with _transaction(self._conn):
            pending = self._conn.execute(
                f"SELECT COUNT(*) FROM {_PENDING} WHERE d.sink_key = ? AND d.state = 'pending'",
                (sink_key,)).fetchone()[0]
            excess = pending - cap
            if excess <= 0:
                return 0
            self._conn.execute(
                "DELETE FROM deliveries WHERE sink_key = ? AND state = 'pending' AND seq IN"
                f" (SELECT d.seq FROM {_PENDING} WHERE d.sink_key = ? AND d.state = 'pending'"
                " ORDER BY d.seq LIMIT ?)", (sink_key, sink_key, excess))
            self._conn.execute(
                "INSERT INTO sink_drops (sink_key, dropped) VALUES (?, ?) ON CONFLICT (sink_key)"
                " DO UPDATE SET dropped = dropped + excluded.dropped", (sink_key, excess))
        return int(excess)

    # -- reading ------------------------------------------------------------------------------

    def sink_counts(self, sink_keys: Iterable[str] | None = None) -> dict[str, SinkCounts]:
        """Delivered/pending/rejected/dropped totals per sink key (all sinks when ``sink_keys``
        is None)."""
        counts: dict[str, SinkCounts] = {}
        if sink_keys is not None:
            counts = {key: SinkCounts() for key in sink_keys}
        rows = list(self._conn.execute(
            "SELECT sink_key, state, COUNT(*) FROM deliveries GROUP BY sink_key, state"))
        if self.version >= 2:
            rows += [(key, "dropped", n) for key, n in self._conn.execute(
                "SELECT sink_key, dropped FROM sink_drops")]
        for key, state, n in rows:
            if sink_keys is not None and key not in counts:
                continue
            setattr(counts.setdefault(key, SinkCounts()), state, n)
        return counts

    def pending_sink_keys(self) -> list[str]:
        return [
            row[0]
            for row in self._conn.execute(
                "SELECT DISTINCT sink_key FROM deliveries INDEXED BY deliveries_pending"
                " WHERE state = 'pending' ORDER BY 1"
            )
        ]

    def event_count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Read-only helper for the summary commands."""
        return list(self._conn.execute(sql, params))

    def payloads(self, types: Sequence[str], since: float | None) -> Iterator[bytes]:
        where = []
        params: list[object] = []
        if types:
            where.append(f"event_type IN ({','.join('?' * len(types))})")
            params.extend(types)
        if since is not None:
            where.append("created_at >= ?")
            params.append(since)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        for (payload,) in self._conn.execute(
            f"SELECT payload FROM events{clause} ORDER BY seq", params
        ):
            yield bytes(payload)


def _marks(values: Sequence[object]) -> str:
    # A batch holds at most a few hundred events: far below SQLite's 32766 parameters.
    return ",".join("?" * len(values))


def _new_event_ids(n: int) -> list[str]:
    """Random (version 4) UUID strings; one ``urandom`` call per commit instead of per event."""
    raw = os.urandom(16 * n)
    return [str(uuid.UUID(bytes=raw[i : i + 16], version=4)) for i in range(0, 16 * n, 16)]


def _create_schema(conn: sqlite3.Connection) -> None:
    # executescript() would COMMIT the surrounding transaction; run statement by statement.
    # Every statement is IF NOT EXISTS, so this also migrates a version 1 outbox.
    for statement in (_SCHEMA + _SCHEMA_V2).split(";"):
        if statement.strip():
            conn.execute(statement)


class _transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``: take the write lock up front, so a busy database
    waits in ``busy_timeout`` instead of failing halfway through with SQLITE_BUSY."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                self._conn.execute("COMMIT")
        finally:
            # After an error (or a failed COMMIT: disk full) end the transaction so the
            # connection stays usable for the retry.
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
