"""Security: the feed server serves FEEDS_DIR and nothing else, only to GET and HEAD; the code passes the
bandit rules. (Off-site requests and script-free published content: tests/test_faults_crawl.py.)"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from feeds.server import FeedServer
from tests.fixtures.project import ROOT

SECRET = b"TOP-SECRET-OUTSIDE-FEEDS-DIR"
FEED = b'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>t</title></channel></rss>\n'


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, int]]:
    feeds = tmp_path / "feeds"
    (feeds / "dxgzdt" / "archive").mkdir(parents=True)
    (feeds / "dxgzdt.xml").write_bytes(FEED)
    (feeds / "dxgzdt" / "archive" / "1.atom").write_bytes(FEED)
    (tmp_path / "secret.xml").write_bytes(SECRET)
    (tmp_path / "secret.json").write_bytes(SECRET)
    (feeds / ".dxgzdt.xml.abcd1234.tmp").write_bytes(SECRET)  # a publish killed mid-write
    (feeds / ".publish.lock").write_bytes(SECRET)
    (feeds / "leak.xml").symlink_to(tmp_path / "secret.xml")  # a symlink leading out of the directory
    (feeds / "notes.sqlite").write_bytes(SECRET)  # not a served type
    srv = FeedServer(feeds, "127.0.0.1", 0, cache_max_age=1)
    host, port = srv.start_in_thread()
    try:
        yield host, port
    finally:
        srv.stop()


def raw(address: tuple[str, int], request: bytes) -> tuple[int, dict[str, str], bytes]:
    """One request on its own connection, exactly as given (no client-side path normalisation)."""
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def get(address: tuple[str, int], target: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    return raw(address, f"{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode("latin-1"))


TRAVERSALS = [
    "/../secret.xml", "/%2e%2e/secret.xml", "/%2E%2E/secret.xml", "/..%2fsecret.xml", "/..%2Fsecret.xml",
    "/%2e%2e%2fsecret.xml", "/dxgzdt/../../secret.xml", "/dxgzdt/%2e%2e/%2e%2e/secret.xml",
    "/%252e%252e/secret.xml", "/..%5csecret.xml", "/..\\secret.xml", "/./../secret.xml", "//../secret.xml",
    "/%c0%ae%c0%ae/secret.xml", "/..;/secret.xml", "/dxgzdt/archive/../../../secret.json",
    "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/../../../../etc/passwd", "/dxgzdt.xml%00/../../secret.xml",
    "/leak.xml", "/.publish.lock", "/.dxgzdt.xml.abcd1234.tmp", "/%2edxgzdt.xml.abcd1234.tmp",
    "/notes.sqlite", "http://x/../secret.xml", "http://x/%2e%2e/secret.xml",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_nothing_outside_the_published_files_is_served(server: tuple[str, int], target: str) -> None:
    status, _, body = get(server, target)
    assert status in (400, 404), (target, status)
    assert SECRET not in body


def test_published_files_are_served(server: tuple[str, int]) -> None:
    for target in ("/dxgzdt.xml", "/dxgzdt/archive/1.atom"):
        status, _, body = get(server, target)
        assert (status, body) == (200, FEED), target
    status, headers, body = get(server, "/dxgzdt.xml", "HEAD")
    assert status == 200 and body == b"" and headers["content-length"] == str(len(FEED))


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "MKCOL"])
def test_only_get_and_head_are_answered(server: tuple[str, int], method: str) -> None:
    request = f"{method} /dxgzdt.xml HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\nDATA"
    status, headers, body = raw(server, request.encode())
    assert status == 405, method
    assert headers.get("allow") == "GET, HEAD"
    assert FEED not in body


def test_connect_is_refused(server: tuple[str, int]) -> None:
    status, _, _ = raw(server, b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\nConnection: close\r\n\r\n")
    assert status in (400, 405)


@pytest.mark.slow
def test_ruff_security_rules_pass() -> None:
    result = subprocess.run([str(ROOT / ".venv" / "bin" / "ruff"), "check", "--select", "S", "."], cwd=ROOT,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]


@pytest.mark.slow
def test_bandit_passes() -> None:
    result = subprocess.run([str(ROOT / ".venv" / "bin" / "bandit"), "-q", "-r", "crawler", "db", "feeds",
                             "scheduler.py", "settings.py"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]
