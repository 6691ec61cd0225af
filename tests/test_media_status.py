"""Media in `status`, /metrics and the configuration checks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from db import store
from db.engine import open_database, transaction
from db.media import MediaResult, record_media
from feeds.status import metrics
from settings import ConfigError, load_config
from tests.fixtures.faulty import run_cli
from tests.fixtures.project import project_env, write_sources
from tests.media_helpers import keep_copy

ARTICLE = "http://127.0.0.1:1/info/1015/1.htm"


def _seed(db_url: str, tmp_path: Path) -> None:
    _engine, factory = open_database(db_url)
    with transaction(factory) as s:
        sid = store.sync_source(s, "dxgzdt", "党校工作动态", "http://127.0.0.1:1/dxgz/dxgzdt.htm").id
    for n in range(2):  # the same bytes for two articles: one file
        keep_copy(factory, tmp_path / "media", sid, f"{ARTICLE}?{n}", "http://127.0.0.1:1/a.png", b"x" * 100,
                  kind="image", name="a.png", mime="image/png", ext="png")
    keep_copy(factory, tmp_path / "media", sid, ARTICLE, "http://127.0.0.1:1/b.pdf", b"%PDF" + b"y" * 50,
              kind="attachment", name="名单.pdf", mime="application/pdf", ext="pdf")
    with transaction(factory) as s:
        now = datetime.now(UTC)
        record_media(s, sid, ARTICLE, [MediaResult("http://127.0.0.1:1/c.jpg", "image", "failed",
                                                   error="answered 404"),
                                       MediaResult("http://127.0.0.1:1/d.exe", "attachment", "refused",
                                                   error="executable")], now)
        # a failed re-check keeps the copy (it is not counted as a failure)
        record_media(s, sid, ARTICLE, [MediaResult("http://127.0.0.1:1/b.pdf", "attachment", "failed",
                                                   error="answered 500")], now)
    _engine.dispose()


def test_metrics_and_status_show_media_per_source(sqlite_url: str, tmp_path: Path) -> None:
    _seed(sqlite_url, tmp_path)
    text = metrics(open_database(sqlite_url)[1])
    assert 'ghu_media_files{source="dxgzdt"} 2' in text
    assert 'ghu_media_bytes{source="dxgzdt"} 154' in text
    assert 'ghu_media_failures{source="dxgzdt"} 1' in text
    assert 'ghu_media_refused{source="dxgzdt"} 1' in text

    sources = write_sources(tmp_path / "sources.toml", {
        "name": "dxgzdt", "title": "党校工作动态", "list_url": "http://127.0.0.1:1/dxgz/dxgzdt.htm"})
    result = run_cli(project_env(sqlite_url, sources, MEDIA="keep"), "status")
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()[-2:]
    assert header.split() == ["SOURCE", "MEDIA", "FILES", "BYTES", "FAILED", "REFUSED"]
    assert row.split() == ["dxgzdt", "2", "154", "1", "1"]
    assert "MEDIA FILES" not in run_cli(project_env(sqlite_url, sources), "status").stdout  # MEDIA=link


@pytest.mark.parametrize(("name", "value", "message"), [
    ("MEDIA", "copy", "MEDIA must be one of link, keep, serve"),
    ("MEDIA_MAX_BYTES", "lots", "MEDIA_MAX_BYTES must be a size"),
    ("MEDIA_MAX_BYTES", "0", "MEDIA_MAX_BYTES must be a size of at least 1 byte"),
    ("MEDIA_MAX_TOTAL", "-5MB", "MEDIA_MAX_TOTAL must be a size"),
])
def test_bad_media_settings_stop_at_start(name: str, value: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config({name: value})
    sources = write_sources(tmp_path / "sources.toml", {"name": "dxgzdt", "title": "t", "list_url": "http://h/l"})
    result = run_cli(project_env(f"sqlite:///{tmp_path}/g.db", sources, **{name: value}), "status")
    assert result.returncode == 2 and message in result.stderr and len(result.stderr.splitlines()) == 1


def test_sizes_and_defaults() -> None:
    cfg = load_config({})
    assert (cfg.MEDIA, cfg.MEDIA_DIR, cfg.MEDIA_MAX_BYTES, cfg.MEDIA_MAX_TOTAL) == (
        "link", "data/media", 50 << 20, None)
    assert not cfg.keeps_media
    cfg = load_config({"MEDIA": "Serve", "MEDIA_MAX_BYTES": "1.5 MB", "MEDIA_MAX_TOTAL": "2G"})
    assert (cfg.MEDIA, cfg.MEDIA_MAX_BYTES, cfg.MEDIA_MAX_TOTAL, cfg.keeps_media) == ("serve", 1572864, 2 << 30, True)
