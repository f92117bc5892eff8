"""SQLite transactions that read and then write: the race, the fix (begin_write) and the guard that finds them."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from media_service.db import Database, UnsafeWrite, begin_write


def _database(tmp_path: Path, *, strict_writes: bool = False) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'race.db'}", strict_writes=strict_writes)
    with db.session() as session:
        session.execute(text("CREATE TABLE IF NOT EXISTS counters (id INTEGER PRIMARY KEY, value INTEGER)"))
        session.execute(text("INSERT OR IGNORE INTO counters VALUES (1, 0)"))
    return db


def _commit_elsewhere(db: Database, committed: list[float] | None = None) -> None:
    with db.session() as other:
        other.execute(text("UPDATE counters SET value = value + 100 WHERE id = 1"))
    if committed is not None:
        committed.append(time.monotonic())


def test_a_read_then_write_fails_when_another_process_committed_between(tmp_path: Path) -> None:
    """The race itself (what failed at random in a test): WAL refuses to upgrade a stale read snapshot."""
    db = _database(tmp_path)
    session = db.sessions()
    session.execute(text("SELECT value FROM counters")).all()
    _commit_elsewhere(db)
    with pytest.raises(OperationalError, match="database is locked"):
        session.execute(text("UPDATE counters SET value = value + 1 WHERE id = 1"))
    session.close()


def test_begin_write_takes_the_lock_first_so_the_write_waits_instead(tmp_path: Path) -> None:
    db = _database(tmp_path)
    session = db.sessions()
    session.execute(text("SELECT value FROM counters")).all()
    begin_write(session)
    session.execute(text("SELECT value FROM counters")).all()  # reads after begin_write are safe
    other_committed: list[float] = []
    other = threading.Thread(target=_commit_elsewhere, args=(db, other_committed))
    other.start()
    time.sleep(0.3)  # the other writer is blocked on our lock meanwhile
    session.execute(text("UPDATE counters SET value = value + 1 WHERE id = 1"))
    session.commit()
    we_committed = time.monotonic()
    other.join(timeout=10)
    assert other_committed and other_committed[0] >= we_committed  # it waited for our commit, then went on
    with db.session() as check:
        assert check.execute(text("SELECT value FROM counters")).scalar_one() == 101
    # the lock is only for that transaction: the next one begins deferred again
    session.execute(text("SELECT value FROM counters")).all()
    _commit_elsewhere(db)
    session.close()


def test_strict_writes_fail_the_pattern_every_time_not_by_chance(tmp_path: Path) -> None:
    db = _database(tmp_path, strict_writes=True)
    with pytest.raises(UnsafeWrite, match="begin_write"), db.session() as session:
        session.execute(text("SELECT value FROM counters")).all()
        session.execute(text("UPDATE counters SET value = 1 WHERE id = 1"))
    with db.session(write=True) as session:  # the same work, done right
        session.execute(text("SELECT value FROM counters")).all()
        session.execute(text("UPDATE counters SET value = 1 WHERE id = 1"))
    with db.session() as session:  # writing first is fine too: the first write takes the lock
        session.execute(text("UPDATE counters SET value = 2 WHERE id = 1"))
        session.execute(text("SELECT value FROM counters")).all()
        session.execute(text("UPDATE counters SET value = 3 WHERE id = 1"))
