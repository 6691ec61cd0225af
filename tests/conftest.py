"""Shared fixtures: replica sites on 127.0.0.1, databases (SQLite and PostgreSQL), project runs."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.fixtures.site import build_site

PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _postgres_available() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_admin() -> str:
    if not _postgres_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI but not reachable at {PG_ADMIN_URL}")
        pytest.skip("no PostgreSQL server reachable (set TEST_POSTGRES_URL; .ci/run starts one)")
    return PG_ADMIN_URL


@contextlib.contextmanager
def fresh_pg_database(postgres_admin: str) -> Iterator[str]:
    """A new, empty PostgreSQL database (its URL), dropped afterwards."""
    name = f"ghu_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_admin, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield postgres_admin.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_url(postgres_admin: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    with fresh_pg_database(postgres_admin) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ghu.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on the embedded SQLite default and on a real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ghu.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture(scope="session")
def replica_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The default replica build (read-only: tests that edit the site build their own copy)."""
    out = tmp_path_factory.mktemp("replica") / "site"
    return out, build_site(out)


@pytest.fixture
def replica_copy(tmp_path: Path) -> tuple[Path, dict]:
    """A private, editable replica build."""
    out = tmp_path / "site"
    return out, build_site(out)


@pytest.fixture(scope="session")
def crawled_replica(tmp_path_factory: pytest.TempPathFactory, replica_build) -> tuple[str, dict, str]:
    """A database filled by one real crawl of the default replica: (db_url, manifest, site base URL).

    Read-only for the tests that use it; the site server is stopped after the crawl (stored URLs keep
    its port, which is fine for feed tests).
    """
    from tests.fixtures.project import project_env, scrapy_crawl, write_sources
    from tests.fixtures.site import serve

    root, manifest = replica_build
    work = tmp_path_factory.mktemp("crawled")
    db_url = f"sqlite:///{work / 'ghu.db'}"
    with serve(root) as site:
        sources = write_sources(work / "sources.toml", {
            "name": "dxgzdt", "title": "党校工作动态", "list_url": f"{site.base}/dxgz/dxgzdt.htm"})
        result = scrapy_crawl("dxgzdt", project_env(db_url, sources))
        assert result.returncode == 0, result.stderr[-3000:]
        return db_url, manifest, site.base
