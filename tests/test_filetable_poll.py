"""The feed server's periodic poll: a stat per directory, a full scan when one changed (or now and then)."""

from __future__ import annotations

import os
from pathlib import Path

from feeds import filetable
from feeds.filetable import FileTable


def _publish(path: Path, data: bytes) -> None:
    """As feeds.publish does: a temporary file renamed into place."""
    tmp = path.with_name(f".{path.name}.abcdefgh.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def test_poll_rescans_only_when_a_directory_changed(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(filetable, "FULL_SCAN_EVERY", 3)
    (tmp_path / "col" / "archive").mkdir(parents=True)
    _publish(tmp_path / "col.xml", b"<rss/>")
    _publish(tmp_path / "col" / "archive" / "1.atom", b"<feed>one</feed>")
    table = FileTable(tmp_path, max_age=60)
    table.reload()
    scans = []
    real_scan = table._scan
    monkeypatch.setattr(table, "_scan", lambda: scans.append(1) or real_scan())

    assert table.poll() is False and scans == []  # nothing changed: no walk over the files
    _publish(tmp_path / "col" / "archive" / "1.atom", b"<feed>edited</feed>")  # renamed into a subdirectory
    assert table.poll() is True and len(scans) == 1
    assert table.snapshot["/col/archive/1.atom"].identity.body == b"<feed>edited</feed>"
    (tmp_path / "col.xml").write_bytes(b"<rss>in place</rss>")  # edited in place: no directory changes
    os.utime(tmp_path / "col.xml", ns=(1, 1))
    assert table.poll() is False and len(scans) == 1
    assert table.poll() is False and table.poll() is True  # the third poll since the scan looks at every file
    assert len(scans) == 2


def test_article_pages_are_read_on_demand_not_held_with_the_feeds(tmp_path: Path) -> None:
    (tmp_path / "col").mkdir()
    _publish(tmp_path / "col.xml", b"<rss/>")
    _publish(tmp_path / "col" / "12.html", b"<p>article twelve</p>")
    table = FileTable(tmp_path, max_age=60)
    table.reload()
    assert "/col.xml" in table.snapshot and "/col/12.html" not in table.snapshot
    assert table.file_count == 2
    first = table.entry_on_demand("/col/12.html")
    assert first is not None and first.identity.body == b"<p>article twelve</p>"
    assert table.entry_on_demand("/col/12.html") is first  # kept while current
    _publish(tmp_path / "col" / "12.html", b"<p>article twelve, edited</p>")
    assert table.poll() is True
    again = table.entry_on_demand("/col/12.html")
    assert again is not None and again.identity.body == b"<p>article twelve, edited</p>"
    assert again.identity.etag != first.identity.etag
    assert table.entry_on_demand("/col/13.html") is None


def test_the_server_answers_article_pages_from_disk_with_validators(tmp_path: Path) -> None:
    import http.client

    from feeds.server import FeedServer

    (tmp_path / "col").mkdir()
    _publish(tmp_path / "col.xml", b"<rss/>")
    _publish(tmp_path / "col" / "7.html", "<p>第七篇</p>".encode())
    server = FeedServer(tmp_path, "127.0.0.1", 0)
    _, port = server.start_in_thread()
    try:
        def get(headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/col/7.html", headers=headers)
            resp = conn.getresponse()
            out = resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
            conn.close()
            return out

        status, headers, body = get({})
        assert (status, body) == (200, "<p>第七篇</p>".encode())
        assert headers["content-type"].startswith("text/html") and headers["etag"]
        assert get({"If-None-Match": headers["etag"]})[0] == 304
    finally:
        server.stop()
