"""Engine and sessions: SQLite in WAL mode by default, PostgreSQL through DATABASE_URL.

The schema is brought up to date with Alembic by :func:`upgrade` whenever the app starts.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_upgrade_lock = threading.Lock()


def normalize_url(url: str) -> str:
    """Let operators write postgresql:// and still get the psycopg 3 driver we ship."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"timeout": 60})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA busy_timeout=60000")
    deadline = time.monotonic() + 60
    while True:
        # Switching a new file to WAL needs an exclusive lock that SQLite won't wait for when two
        # processes open the new file at once ("database is locked"): retry, bounded, instead of dying.
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def upgrade(engine: Engine) -> None:
    """Apply every Alembic migration (idempotent; safe to call at each start)."""
    alembic_log = logging.getLogger("alembic")
    if alembic_log.level == logging.NOTSET:
        alembic_log.setLevel(logging.WARNING)  # it runs at every start: its INFO lines would be noise
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with _upgrade_lock, engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            # pysqlite runs DDL outside any transaction, so a crash between two CREATE TABLEs left a schema
            # without its alembic_version row (every later start: "table sources already exists"), and two
            # processes starting on a new file raced the same way. One immediate transaction makes the
            # upgrade all-or-nothing and lets a second process wait for the first, then find it at head.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: committed as a whole, or rolled back as a whole."""
    with factory() as session, session.begin():
        yield session


def open_database(url: str) -> tuple[Engine, sessionmaker[Session]]:
    """Engine + session factory with the schema upgraded: what every entry point needs."""
    engine = make_engine(url)
    upgrade(engine)
    return engine, session_factory(engine)
