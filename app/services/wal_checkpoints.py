"""SQLite's write-ahead log copied back into the database file by a background thread, not by
the write that happens to fill it.

In WAL mode every commit appends the pages it changed to the `-wal` file, and by default the
commit that takes the log past 1,000 pages also copies the log into the database file and syncs
both (a checkpoint): tens of milliseconds inside that write transaction, while every other
writer of every process waits for the write lock (app/db/writer.py). With a push's 10-20 pages,
that was one push in 50-100 holding up all the others. Here each `berth serve` process runs a
PASSIVE checkpoint every INTERVAL on a thread of its own: it takes no write lock (writers go on
appending while it copies), copies what no reader still needs, and does nothing when the log is
already copied; two processes' checkpoints never run at once (the second finds SQLite's
checkpoint lock taken and skips its turn). Commits themselves then only append. A pushed page
rewritten many times between checkpoints (an index's root, a repository's tag version) is
copied once per checkpoint instead of once per thousand pages.

Measured (`berth serve`'s default of two processes on 2 CPUs, 8 keep-alive clients pushing new
manifests, alternating runs): ~1,890 -> ~2,170 pushes a second, the CPU per push unchanged
(~0.72 ms): the time inside the write lock is what went.

SQLite still checkpoints on commit past `wal_autocheckpoint` pages (app/db/setup.py's
SQLITE_PRAGMAS, 10,000: ~40 MB of log), which commands that open the database without a server
(`berth gc --data-dir`) rely on. Under writes that never pause, the log is not started over after
each turn (a commit lands while the thread copies, so the log is never all copied when the next
write begins): it grows to that backstop, whose commit-time checkpoint then copies only what came
since the thread's last turn, and the log starts over. Durability is as before: with
`synchronous=normal`, a commit is on disk once the log is synced, at the next checkpoint.

Checkpoints this frequent, beside commits that restart the log, are the pattern of SQLite's
WAL-reset bug (SQLite 3.7.0 to 3.51.2: committed writes lost), so Berth runs SQLite with a library
that has its fix (app/db/setup.py `SQLITE_WAL_RESET_FIXED`); with one that lacks it, this thread
does not run and commits checkpoint at SQLite's default 1,000 pages (`sqlite_checkpoints_often`).
"""

from __future__ import annotations

import datetime as dt
import logging

import peewee as pw

from app.db.models import database
from app.db.setup import sqlite_checkpoints_often
from app.services.periodic import Periodic

log = logging.getLogger("berth.db")

# At ~2,000 pushes a second of 10-20 pages each, a tenth of a second is a few thousand pages: a
# few ms to copy, below the backstop. Idle, a turn costs ~50 us.
INTERVAL = dt.timedelta(seconds=0.1)


class WalCheckpoints(Periodic):
    thread_name = "wal-checkpoint"

    def __init__(self, interval: dt.timedelta = INTERVAL) -> None:
        super().__init__(interval)

    def start(self):
        if not isinstance(database.obj, pw.SqliteDatabase):  # PostgreSQL checkpoints itself
            return self
        if not sqlite_checkpoints_often():  # a SQLite with the WAL-reset bug: its default instead
            return self
        return super().start()

    def run_once(self) -> tuple[int, int, int] | None:
        """One PASSIVE checkpoint: (busy, pages in the log, pages copied) as SQLite reports
        them, or None when it could not run (another process's checkpoint, a closing database)."""
        try:
            return database.obj.execute_sql("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except pw.OperationalError as exc:  # "database is locked" and the like: the next turn
            log.debug("WAL checkpoint skipped: %s", exc)
            return None
