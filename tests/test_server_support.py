"""Helpers for the feeds.server tests: a sample FEEDS_DIR and small real-socket HTTP clients.

No tests here; kept under the test_server* name so it ships with the server tests.
"""

from __future__ import annotations

import http.client
import os
import socket
from pathlib import Path

SECRET = b"TOP-SECRET-DO-NOT-SERVE"

RSS = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>党校工作动态</title>'
    + "".join(
        f"<item><title>第{i}条 党校工作动态</title><link>https://zzb.ghu.edu.cn/info/1011/{i}.htm</link>"
        f"<description>学习贯彻新时代中国特色社会主义思想，第{i}期干部培训班开班。</description></item>"
        for i in range(30)
    )
    + "</channel></rss>\n"
).encode()


def make_feeds_dir(base: Path) -> Path:
    """FEEDS_DIR with 7 servable files, plus things that must never be served.

    ``base/secret.xml`` sits next to FEEDS_DIR with a servable extension, so any
    traversal that worked would show SECRET in the response.
    """
    feeds = base / "feeds"
    (feeds / "ghu" / "archive").mkdir(parents=True)
    (feeds / "ghu.xml").write_bytes(RSS)
    (feeds / "ghu.atom").write_bytes(b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom">'
                                     + "<title>党校</title>".encode() * 40 + b"</feed>")
    (feeds / "ghu.json").write_text('{"version": "https://jsonfeed.org/version/1.1", "title": "党校"}',
                                    encoding="utf-8")
    (feeds / "index.html").write_text("<!doctype html><title>订阅源</title>", encoding="utf-8")
    (feeds / "opml.xml").write_text('<?xml version="1.0"?><opml version="2.0"/>', encoding="utf-8")
    (feeds / "ghu" / "archive" / "1.atom").write_bytes(b"<feed>archive 1</feed>")
    (feeds / "ghu" / "archive" / "2.atom").write_bytes(b"<feed>archive 2</feed>")
    # Never served:
    (base / "secret.xml").write_bytes(SECRET)
    (base / "outside").mkdir()
    (base / "outside" / "x.xml").write_bytes(SECRET)
    (feeds / ".hidden.xml").write_bytes(SECRET)
    (feeds / ".ghu.xml.abcd1234.tmp").write_bytes(SECRET)
    (feeds / "ghu.xml.tmp").write_bytes(SECRET)
    (feeds / "notes.md").write_bytes(SECRET)
    (feeds / "script.sh").write_bytes(SECRET)
    os.symlink(base / "secret.xml", feeds / "leak.xml")
    os.symlink(base / "outside", feeds / "outdir")
    return feeds


def request(
    port: int, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh http.client connection: (status, lower-cased headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def raw_exchange(port: int, data: bytes, *, half_close: bool = True, timeout: float = 5.0) -> bytes:
    """Send raw bytes, optionally half-close, and read until the server closes (or timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
        return b"".join(chunks)


def read_responses(data: bytes, head_flags: list[bool] | None = None) -> list[tuple[int, dict[str, str], bytes]]:
    """Split a byte stream into HTTP/1.1 responses framed by Content-Length."""
    out: list[tuple[int, dict[str, str], bytes]] = []
    pos = 0
    while pos < len(data):
        end = data.index(b"\r\n\r\n", pos)
        lines = data[pos:end].decode("latin-1").split("\r\n")
        version, status, _ = lines[0].split(" ", 2)
        assert version == "HTTP/1.1"
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        is_head = bool(head_flags and head_flags[len(out)])
        length = 0 if is_head or status == "304" else int(headers.get("content-length", "0"))
        body = data[end + 4:end + 4 + length]
        assert len(body) == length, "truncated response"
        out.append((int(status), headers, body))
        pos = end + 4 + length
    return out
