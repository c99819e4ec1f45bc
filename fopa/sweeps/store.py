"""The results store of a sweep: one SQLite file (standard-library ``sqlite3``, WAL mode).

Tables:

- ``meta(key, value)``: ``application = fopa-sweep``, ``schema``, the spec (JSON),
  its ``fingerprint``, the fopa version and time that created the store.
- ``cells``: one row per *finished* cell (``status`` ``done`` or ``failed``) with its
  index, key, parameters and seed, outputs (JSON) or error (traceback),
  attempts, start/finish times, seconds, worker, fopa version and (schema 2) the
  SHA-256 ``checksum`` of its parameters and outputs, verified on every read: a
  changed digit is reported, never returned. Stores of schema 1 (no checksum)
  still open and read.

A cell is written in one transaction when it finishes; unfinished cells have no
row, so a crash loses only the cells that were running. A ``done`` row is never
overwritten; a ``failed`` one is replaced when a retry finishes.

Opening checks, before anything is written: the file is a SQLite database that
passes ``PRAGMA quick_check``, it is a fopa sweep store of this schema, and (when
a spec is given) it belongs to that spec. Otherwise :class:`StoreError` says why
and the file is left as it was. The store's path must be a regular file (or
not exist yet) in an existing directory; every SQLite failure (a full disk, a
read-only file or mount, bytes that are not UTF-8) is a one-line
:class:`StoreError`, and a failed write leaves the store as it was (each cell is
one transaction). A store on a read-only mount or in a read-only directory is
opened for reading only (``mode=ro&immutable=1``: SQLite cannot make the WAL index
there), so status and export work; a run checks that the store can be written
(:meth:`ResultStore.check_writable`) before it computes any cell.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import time
import urllib.parse
from dataclasses import dataclass

from .._version import __version__
from .spec import SweepSpec, canonical_json

__all__ = ["ResultStore", "StoreError", "StoreStatus"]

APPLICATION = "fopa-sweep"
SCHEMA = "2"
#: Schemas this version opens: 1 has no checksum column.
READABLE_SCHEMAS = ("1", "2")
_HEADER = b"SQLite format 3\x00"

_CREATE = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE cells (
    cell_index INTEGER PRIMARY KEY,
    cell_key TEXT NOT NULL UNIQUE,
    params TEXT NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    outputs TEXT,
    error TEXT,
    attempts INTEGER NOT NULL,
    started REAL NOT NULL,
    finished REAL NOT NULL,
    seconds REAL NOT NULL,
    worker TEXT NOT NULL,
    fopa_version TEXT NOT NULL,
    checksum TEXT NOT NULL
);
"""

_RECORD = """
INSERT INTO cells (cell_index, cell_key, params, seed, status, outputs, error, attempts,
                   started, finished, seconds, worker, fopa_version{checksum_column})
VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?{checksum_value})
ON CONFLICT (cell_index) DO UPDATE SET
    status = excluded.status, outputs = excluded.outputs, error = excluded.error,
    attempts = cells.attempts + 1, started = excluded.started,
    finished = excluded.finished, seconds = excluded.seconds, worker = excluded.worker,
    fopa_version = excluded.fopa_version{checksum_update}
WHERE cells.status != 'done'
"""
_RECORD_V2 = _RECORD.format(
    checksum_column=", checksum",
    checksum_value=", ?",
    checksum_update=", checksum = excluded.checksum",
)
_RECORD_V1 = _RECORD.format(checksum_column="", checksum_value="", checksum_update="")


def _checksum(cell_key, params, status, outputs, error):
    """SHA-256 of what a cell row says (its key, parameters, status, outputs, error)."""
    body = "\x1f".join([cell_key, params, status, outputs or "", error or ""])
    return hashlib.sha256(body.encode("utf-8", "surrogateescape")).hexdigest()


def _text(raw):
    """SQLite text as str; bytes that are not UTF-8 kept (surrogate-escaped) so that
    the row's checksum or its JSON decoding reports them."""
    return raw.decode("utf-8", "surrogateescape")


class StoreError(ValueError):
    """The file is not a usable store for this sweep (corrupt, foreign or mismatched)."""


@dataclass(frozen=True)
class StoreStatus:
    """Progress of a sweep as recorded in its store.

    ``cell_seconds`` sums the finished cells' own times (work, not wall clock);
    ``versions`` lists the fopa versions that wrote cells.
    """

    path: str
    name: str
    experiment: str
    fingerprint: str
    total: int
    done: int
    failed: int
    pending: int
    cell_seconds: float
    created: str
    last_finished: float | None
    versions: tuple

    def __str__(self) -> str:
        share = self.done / self.total if self.total else 0.0
        last = (
            "never" if self.last_finished is None
            else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.last_finished))
        )  # fmt: skip
        return "\n".join([
            f"sweep        {self.name} (experiment {self.experiment!r}, "
            f"spec {self.fingerprint[:12]})",
            f"store        {self.path} (created {self.created})",
            f"cells        {self.total:,} total: {self.done:,} done ({share:.0%}), "
            f"{self.failed:,} failed, {self.pending:,} pending",
            f"cell time    {self.cell_seconds:.1f} s; last finished {last}",
            f"fopa         {', '.join(self.versions) or '-'}",
        ])  # fmt: skip


def _connect(path, read_only=False):
    """A connection in autocommit mode; ``read_only``: opened ``mode=ro&immutable=1``
    (for a store on a file system that cannot be written, where SQLite cannot make
    the WAL index it needs to read a WAL database; nothing can change it there)."""
    target = path
    if read_only:
        target = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro&immutable=1"
    try:
        conn = sqlite3.connect(target, isolation_level=None, timeout=30.0, uri=read_only)
        conn.execute("PRAGMA busy_timeout = 30000")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open store {path!r}: {exc}") from None
    conn.text_factory = _text
    return conn


def _check_path(path):
    """A store path is a regular file, or absent in an existing directory."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise StoreError(f"the directory of store {path!r} ({directory}) does not exist")
    if os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode):
        raise StoreError(f"store {path!r} is not a regular file (a store is a SQLite file)")


def _writable_directory(path):
    """Whether new files can be made next to ``path`` (SQLite's WAL index and journal)."""
    return os.access(os.path.dirname(os.path.abspath(path)), os.W_OK)


class ResultStore:
    """A sweep's SQLite results store.

    Parameters
    ----------
    path : str or path
        The database file. Created (with the spec) if it does not exist.
    spec : SweepSpec, optional
        Required to create a store; when opening an existing one, it must be the
        spec that created it (same :attr:`SweepSpec.fingerprint`). Without it, the
        store's own spec is used (for status, export and reports).

    Raises
    ------
    StoreError
        Not a SQLite file, failed integrity check, not a fopa sweep store, or a
        different spec. The file is not modified.
    """

    def __init__(self, path, spec: SweepSpec | None = None):
        self.path = os.fspath(path)
        if spec is not None and not isinstance(spec, SweepSpec):
            raise TypeError(f"spec must be a SweepSpec; got {type(spec).__name__}")
        _check_path(self.path)
        #: True when the store could be opened only for reading (a read-only file
        #: system or directory): status, rows and export work; a run is refused.
        self.read_only = False
        if os.path.exists(self.path) and os.path.getsize(self.path) > 0:
            self._conn = self._open_existing(spec)
        elif spec is None:
            raise StoreError(f"store {self.path!r} does not exist (a spec is needed to create it)")
        elif not _writable_directory(self.path):
            raise StoreError(
                f"cannot create store {self.path!r}: its directory is not writable "
                "(a read-only file system or directory)"
            )
        else:
            self._conn = self._create(spec)
        self.spec = SweepSpec.from_stored(json.loads(self._meta["spec"]))

    def _open_existing(self, spec):
        with open(self.path, "rb") as fh:
            header = fh.read(len(_HEADER))
        if header != _HEADER:
            raise StoreError(f"{self.path!r} is not a SQLite database; it was left untouched")
        conn = _connect(self.path)
        try:
            try:
                check = conn.execute("PRAGMA quick_check").fetchall()
            except sqlite3.OperationalError:
                if _writable_directory(self.path):
                    raise  # not a read-only place: the handlers below say what it is
                # a read-only mount or directory: SQLite cannot make the WAL index
                conn.close()
                conn = _connect(self.path, read_only=True)
                self.read_only = True
                check = conn.execute("PRAGMA quick_check").fetchall()
            if check != [("ok",)]:
                problems = "; ".join(row[0] for row in check[:3])
                raise StoreError(f"store {self.path!r} is corrupt ({problems})")
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if not {"meta", "cells"} <= tables:
                raise StoreError(f"{self.path!r} is a SQLite database but not a fopa sweep store")
            meta = dict(conn.execute("SELECT key, value FROM meta"))
            if meta.get("application") != APPLICATION or meta.get("schema") not in READABLE_SCHEMAS:
                raise StoreError(
                    f"{self.path!r} is not a fopa sweep store of schema "
                    f"{' or '.join(READABLE_SCHEMAS)} "
                    f"(application {meta.get('application')!r}, schema {meta.get('schema')!r})"
                )
            if spec is not None and spec.fingerprint != meta.get("fingerprint"):
                stored = json.loads(meta["spec"])
                raise StoreError(
                    f"store {self.path!r} belongs to another sweep ({stored.get('name')!r}, "
                    f"experiment {stored.get('experiment')!r}, spec "
                    f"{meta['fingerprint'][:12]}) than {spec.name!r} (spec "
                    f"{spec.fingerprint[:12]}); use another --store or the spec that made it"
                )
            if not self.read_only:
                try:
                    conn.execute("PRAGMA journal_mode = WAL")
                except sqlite3.OperationalError:
                    pass  # a read-only file: readable, and every write says why
        except sqlite3.OperationalError as exc:
            conn.close()
            raise StoreError(
                f"cannot read store {self.path!r} ({exc}); it was left untouched"
            ) from None
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(
                f"store {self.path!r} is corrupt or unreadable ({exc}); it was left untouched"
            ) from None
        except StoreError:
            conn.close()
            raise
        self._meta = meta
        return conn

    def _create(self, spec):
        conn = _connect(self.path)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"cannot create store {self.path!r} ({exc})") from None
        meta = dict(
            # plain json.dumps keeps the grid's order (canonical_json would sort it)
            application=APPLICATION, schema=SCHEMA, spec=json.dumps(spec.to_dict()),
            fingerprint=spec.fingerprint, fopa_version=__version__,
            created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )  # fmt: skip
        try:
            with _transaction(conn):
                for statement in _CREATE.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.executemany("INSERT INTO meta VALUES (?, ?)", list(meta.items()))
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"cannot create store {self.path!r} ({exc})") from None
        self._meta = meta
        return conn

    def close(self):
        self._conn.close()

    def check_writable(self):
        """Raise :class:`StoreError` unless cells can be written (before a run computes
        any: a store on a read-only file or mount would fail only at the first
        record). The probe is a write rolled back: the file is not changed."""
        if self.read_only:
            why = "it is on a read-only file system or directory"
        else:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._conn.execute("UPDATE meta SET value = value WHERE key = 'schema'")
                    return
                finally:
                    self._conn.execute("ROLLBACK")
            except sqlite3.Error as exc:
                why = f"it cannot be written ({exc})"
        raise StoreError(
            f"store {self.path!r}: {why}; --status and --export still read it, a run "
            "needs a writable copy"
        )

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def finished(self) -> dict:
        """{cell index: "done" or "failed"} for every finished cell."""
        return {i: status for i, (_, status) in self.keys().items()}

    def keys(self) -> dict:
        """{cell index: (cell key, status)} for every finished cell, in one query."""
        rows = self._query("SELECT cell_index, cell_key, status FROM cells")
        return {i: (key, status) for i, key, status in rows}

    def stored_params(self, index) -> dict:
        """The parameters a finished cell was stored with."""
        (text,) = self._query("SELECT params FROM cells WHERE cell_index = ?", (index,))[0]
        return json.loads(text)

    def _query(self, sql, args=()):
        try:
            return self._conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read store {self.path!r} ({exc})") from None

    def record(self, cell, result) -> bool:
        """Write one finished cell in one transaction; False if it was already done.

        ``result`` is the dict of :func:`fopa.sweeps.run_cell` (status, outputs or
        error, started, finished, seconds, worker, fopa_version).
        """
        outputs = None if result["outputs"] is None else canonical_json(result["outputs"])
        params = canonical_json(cell.params)
        values = (
            cell.index, cell.key, params, cell.seed, result["status"], outputs, result["error"],
            result["started"], result["finished"], result["seconds"], result["worker"],
            result["fopa_version"],
        )  # fmt: skip
        if self._meta["schema"] == "1":
            statement = _RECORD_V1
        else:
            statement = _RECORD_V2
            values += (_checksum(cell.key, params, result["status"], outputs, result["error"]),)
        try:
            with _transaction(self._conn):
                cur = self._conn.execute(statement, values)
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot write cell {cell.index} to store {self.path!r} ({exc}: a full disk, "
                "a read-only file or mount?); the store keeps every cell written before"
            ) from None
        return cur.rowcount == 1

    def rows(self, status=None) -> list[dict]:
        """Finished cells as dicts (``params`` and ``outputs`` decoded), by index."""
        query = "SELECT * FROM cells"
        args = ()
        if status is not None:
            query += " WHERE status = ?"
            args = (status,)
        try:
            cur = self._conn.execute(query + " ORDER BY cell_index", args)
            names = [c[0] for c in cur.description]
            fetched = cur.fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read store {self.path!r} ({exc})") from None
        out = []
        for values in fetched:
            row = dict(zip(names, values, strict=True))
            checksum = row.pop("checksum", None)
            if checksum is not None:
                want = _checksum(
                    row["cell_key"], row["params"], row["status"], row["outputs"], row["error"]
                )
                if want != checksum:
                    raise StoreError(
                        f"store {self.path!r}: cell {row['cell_index']} does not match its "
                        "checksum (its parameters, outputs or error were changed after it "
                        "was written); restore the file, or delete that row to compute the cell "
                        "again"
                    )
            try:
                row["params"] = json.loads(row["params"])
                row["outputs"] = None if row["outputs"] is None else json.loads(row["outputs"])
            except (ValueError, UnicodeError) as exc:
                raise StoreError(
                    f"store {self.path!r}: cell {row['cell_index']} holds unreadable data ({exc})"
                ) from None
            out.append(row)
        return out

    def status(self) -> StoreStatus:
        """Counts of done, failed and pending cells, and timings."""
        done, failed, seconds, last = self._conn.execute(
            "SELECT COALESCE(SUM(status = 'done'), 0), COALESCE(SUM(status = 'failed'), 0), "
            "COALESCE(SUM(seconds), 0), MAX(finished) FROM cells"
        ).fetchone()
        versions = tuple(
            r[0] for r in self._conn.execute("SELECT DISTINCT fopa_version FROM cells ORDER BY 1")
        )
        total = self.spec.n_cells
        return StoreStatus(
            path=self.path, name=self.spec.name, experiment=self.spec.experiment,
            fingerprint=self.spec.fingerprint, total=total, done=done, failed=failed,
            pending=total - done - failed, cell_seconds=float(seconds),
            created=self._meta["created"], last_finished=last, versions=versions,
        )  # fmt: skip


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error) on an autocommit connection."""

    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, exc, tb):
        self.conn.execute("ROLLBACK" if kind else "COMMIT")
