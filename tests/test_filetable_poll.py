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
    (tmp_path / "col").mkdir()
    _publish(tmp_path / "col.xml", b"<rss/>")
    _publish(tmp_path / "col" / "1.html", b"<p>one</p>")
    table = FileTable(tmp_path, max_age=60)
    table.reload()
    scans = []
    real_scan = table._scan
    monkeypatch.setattr(table, "_scan", lambda: scans.append(1) or real_scan())

    assert table.poll() is False and scans == []  # nothing changed: no walk over the files
    _publish(tmp_path / "col" / "1.html", b"<p>one, edited</p>")  # renamed into a subdirectory
    assert table.poll() is True and len(scans) == 1
    assert table.snapshot["/col/1.html"].identity.body == b"<p>one, edited</p>"
    (tmp_path / "col.xml").write_bytes(b"<rss>in place</rss>")  # edited in place: no directory changes
    os.utime(tmp_path / "col.xml", ns=(1, 1))
    assert table.poll() is False and len(scans) == 1
    assert table.poll() is False and table.poll() is True  # the third poll since the scan looks at every file
    assert len(scans) == 2
