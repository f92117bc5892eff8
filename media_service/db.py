"""Database engine, sessions and migrations.

SQLite runs in WAL mode with a busy timeout so the web process and the worker processes share it
safely; PostgreSQL is used when ``DATABASE_URL`` names it. The schema is owned by Alembic migrations.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_WRITE_NOW = "media_service_write_now"  # execution option: SQLite begins with BEGIN IMMEDIATE
_TRANSACTION = "media_service_transaction"  # connection info: how the open transaction began, what it did


def make_engine(url: str, *, strict_writes: bool = False) -> Engine:
    """An engine with the pragmas the embedded SQLite default needs for several processes.

    ``strict_writes`` (tests) makes an unsafe SQLite transaction fail at once: see ``_refuse_reads_then_writes``.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy issue BEGIN itself, so BEGIN IMMEDIATE works for claims.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            write_now = bool(conn.get_execution_options().get(_WRITE_NOW))
            conn.info[_TRANSACTION] = {"write_now": write_now, "read": False, "wrote": False}
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write_now else "BEGIN")

        if strict_writes:
            event.listen(engine, "before_cursor_execute", _refuse_reads_then_writes)
        return engine
    return create_engine(url, pool_pre_ping=True)


class UnsafeWrite(RuntimeError):
    """A SQLite transaction read and then wrote without taking the write lock first (a bug: call begin_write)."""


def _refuse_reads_then_writes(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    """Fail a write in a deferred transaction that has already read.

    Such a write works until another process commits between the read and the write; then SQLite answers
    "database is locked" at once. Tests turn this check on so the pattern fails every time, not by chance.
    """
    state = conn.info.get(_TRANSACTION)
    if state is None or state["write_now"] or state["wrote"]:
        return
    verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
    if verb in ("SELECT", "WITH"):
        state["read"] = True
    elif verb in ("INSERT", "UPDATE", "DELETE", "REPLACE"):
        state["wrote"] = True
        if state["read"]:
            raise UnsafeWrite(f"this transaction read before writing ({statement.split(chr(10))[0][:80]}); "
                              "call db.begin_write(session) before its first read")


def end_read(session: Session) -> None:
    """Close the read snapshot before slow work (a download, a validation), so no snapshot is held meanwhile."""
    session.commit()


def begin_write(session: Session) -> None:
    """Close the read snapshot and start a write transaction at once.

    In SQLite's WAL mode a transaction that has read cannot start writing once another connection has
    committed since (it fails at once with "database is locked" instead of waiting), and SQLAlchemy reads
    before it writes (``session.get``, lazy loads). So the transaction that follows takes the write lock
    up front (``BEGIN IMMEDIATE``, waiting up to the busy timeout); keep it short. Other databases begin
    an ordinary transaction.
    """
    session.commit()
    session.connection(execution_options={_WRITE_NOW: True})


class Database:
    """Engine plus session factory of one app (or one worker process)."""

    def __init__(self, url: str, *, strict_writes: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, strict_writes=strict_writes)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Database:
        return cls(settings["DATABASE_URL"], strict_writes=settings["DATABASE_STRICT_WRITES"])

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """A session that commits on success and rolls back on error; ``write``: take the write lock first."""
        session = self.sessions()
        if write:
            begin_write(session)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def upgrade(url: str, revision: str = "heads") -> None:
    """Bring the schema to ``revision`` with Alembic (all heads: features may add independent branches)."""
    import logging

    from alembic import command
    from alembic.config import Config

    logging.getLogger("alembic").setLevel(logging.WARNING)

    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, revision)


def init_app(app: Flask) -> None:
    app.extensions["database"] = Database.from_settings(app.config)
    app.teardown_appcontext(_close_request_session)


def get_db() -> Database:
    return current_app.extensions["database"]


def get_session() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        g.db_session = get_db().sessions()
    return g.db_session


def _close_request_session(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.rollback()
        session.close()
