"""feeds.server (uvicorn + our limits) against hostile or broken clients: traversal, malformed requests, limits,
pipelining, slow and vanishing clients, and prompt shutdown.  Real sockets, no mocks."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from feeds.server import FeedServer
from tests.fixtures.service import wait_for
from tests.test_server_support import SECRET, make_feeds_dir, raw_exchange, read_responses, request


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("robust")
    feeds = make_feeds_dir(base)
    os.symlink(feeds / "ghu.xml", feeds / "alias.xml")  # a symlink that stays inside is fine
    (feeds / "big.json").write_bytes(os.urandom(1 << 20))  # incompressible 1 MiB
    server = FeedServer(feeds, "127.0.0.1", 0, health=lambda: (200, {"status": "ok"}))
    _, port = server.start_in_thread()
    yield {"server": server, "port": port, "feeds": feeds, "base": base}
    server.stop()


def _status(data: bytes) -> int:
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else -1


@pytest.mark.parametrize(
    "target",
    [
        b"/../secret.xml",
        b"/feeds/../../secret.xml",
        b"/%2e%2e/secret.xml",
        b"/%2E%2E/%2e%2e/secret.xml",
        b"/..%2fsecret.xml",
        b"/..%2Fsecret.xml",
        b"/%2f..%2fsecret.xml",
        b"/ghu/%2f..%2f..%2f..%2fsecret.xml",
        b"/%2e%2e%2fsecret.xml",
        b"/.%2e/secret.xml",
        b"//etc/passwd",
        b"/etc/passwd",
        b"/..\\secret.xml",
        b"/%5c..%5csecret.xml",
        b"\\..\\secret.xml",
        b"/ghu.xml%00",
        b"/ghu.xml%00.html",
        b"/%00../secret.xml",
        b"/leak.xml",
        b"/outdir/x.xml",
        b"/.hidden.xml",
        b"/./ghu.xml",
        b"/ghu/archive/../../../secret.xml",
        b"../secret.xml",
        b"secret.xml",
        b"http://127.0.0.1/../secret.xml",
        b"http://127.0.0.1/%2e%2e/secret.xml",
        b"*",
    ],
)
def test_traversal_and_escapes_never_serve_outside(site, target: bytes) -> None:
    data = raw_exchange(site["port"], b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert _status(data) in (400, 404), data[:200]
    assert SECRET not in data
    assert b"root:" not in data


def test_raw_nul_and_control_bytes_in_target(site) -> None:
    for target in [b"/ghu.xml\x00", b"/\x00/../secret.xml", b"/ghu\x01.xml"]:
        data = raw_exchange(site["port"], b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _status(data) in (400, 404) and SECRET not in data


def test_symlink_inside_root_is_served(site) -> None:
    status, _, body = request(site["port"], "GET", "/alias.xml")
    assert status == 200 and body == (site["feeds"] / "ghu.xml").read_bytes()


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /\r\n\r\n", 505),  # HTTP/0.9
        (b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400),
        (b"GET / FOO/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\n folded: v\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"GET / HTTP/1.1\nHost: x\n\n", 400),  # bare LF framing
        (b"GET / HTTP/1.1\r\nHost: x\rY: z\r\n\r\n", 400),  # lone CR
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)), 400),  # TLS hello
        (b"G\xc3\xa9T / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ],
)
def test_malformed_requests_get_400_and_close(site, raw: bytes, code: int) -> None:
    data = raw_exchange(site["port"], raw, half_close=False, timeout=3)
    assert _status(data) == code, data[:200]
    assert b"connection: close" in data.lower()
    assert request(site["port"], "GET", "/ghu.xml")[0] == 200  # server still fine


def test_lenient_request_line_is_answered_sanely(site) -> None:
    """httptools accepts a doubled space in the request line: it must then be an ordinary request."""
    data = raw_exchange(site["port"], b"GET  /ghu.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert _status(data) in (200, 400) and SECRET not in data


def test_size_limits(site) -> None:
    long_target = b"/" + b"a" * 9000
    data = raw_exchange(site["port"], b"GET " + long_target + b" HTTP/1.1\r\nHost: x\r\n\r\n", half_close=False)
    assert _status(data) == 414
    data = raw_exchange(site["port"], b"GET " + long_target, half_close=False)  # never finished
    assert _status(data) == 414
    big_header = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20000 + b"\r\n\r\n"
    assert _status(raw_exchange(site["port"], big_header, half_close=False)) == 431
    many = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(150)) + b"\r\n"
    assert _status(raw_exchange(site["port"], many, half_close=False)) == 431


def test_pipelined_requests_answer_in_order(site) -> None:
    feeds = site["feeds"]
    reqs = (
        b"GET /ghu.xml HTTP/1.1\r\nHost: x\r\n\r\n"
        b"HEAD /ghu.json HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"  # async endpoint in the middle
        b"DELETE /ghu.xml HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /ghu.atom HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        b"GET /ghu.xml HTTP/1.1\r\nHost: x\r\n\r\n"  # after close: must be ignored
    )
    responses = read_responses(raw_exchange(site["port"], reqs, half_close=False),
                               head_flags=[False, True, False, False, False, False])
    assert [r[0] for r in responses] == [200, 200, 404, 200, 405, 200]
    assert responses[0][2] == (feeds / "ghu.xml").read_bytes()
    assert responses[1][2] == b""
    assert responses[3][2] == b'{"status": "ok"}\n'
    assert responses[5][2] == (feeds / "ghu.atom").read_bytes()


def test_pipelined_requests_split_at_odd_boundaries(site) -> None:
    reqs = b"".join(b"GET /ghu.json?n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(20))
    reqs += b"GET /ghu.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", site["port"]), timeout=5) as sock:
        for i in range(0, len(reqs), 7):
            sock.sendall(reqs[i:i + 7])
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    responses = read_responses(b"".join(chunks))
    assert len(responses) == 21 and all(r[0] == 200 for r in responses)


def test_pipelining_many_large_responses_with_slow_reader(site) -> None:
    """More output than socket buffers hold: back-pressure must pause us, keep order and completeness."""
    body = (site["feeds"] / "big.json").read_bytes()
    n = 24
    reqs = b"GET /big.json HTTP/1.1\r\nHost: x\r\n\r\n" * (n - 1)
    reqs += b"GET /ghu.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", site["port"]), timeout=5) as sock:
        sock.sendall(reqs)
        chunks = []
        while chunk := sock.recv(1 << 20):
            chunks.append(chunk)
    responses = read_responses(b"".join(chunks))
    assert len(responses) == n
    assert all(r[0] == 200 and r[2] == body for r in responses[:-1])
    assert responses[-1][2] == (site["feeds"] / "ghu.xml").read_bytes()


def test_client_disconnecting_mid_request_and_mid_response(site) -> None:
    port = site["port"]
    for partial in [b"GET /ghu.xml HTTP/1.1\r\nHos", b"GET /ghu", b"POST / HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Length: 1000\r\n\r\nabc"]:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(partial)
    for _ in range(20):  # ask for large bodies and vanish without reading (RST on close)
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"GET /ghu.xml HTTP/1.1\r\nHost: x\r\n\r\n" * 50)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
    with socket.create_connection(("127.0.0.1", port)) as sock:  # pending /healthz when client leaves
        sock.sendall(b"GET /healthz?x HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.2)
    assert request(port, "GET", "/ghu.xml")[0] == 200
    assert request(port, "GET", "/healthz")[0] == 200


def test_half_closed_client_still_gets_answers(site) -> None:
    data = raw_exchange(site["port"], b"GET /ghu.json HTTP/1.1\r\nHost: x\r\n\r\n"
                                      b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", half_close=True)
    assert [r[0] for r in read_responses(data)] == [200, 200]


def test_half_close_with_unfinished_request_closes(site) -> None:
    data = raw_exchange(site["port"], b"GET /ghu.json HTTP/1.1\r\nHost: x\r\n\r\nGET /ghu", timeout=3)
    assert [r[0] for r in read_responses(data)] == [200]


def test_restart_after_stop(tmp_path: Path) -> None:
    server = FeedServer(make_feeds_dir(tmp_path), "127.0.0.1", 0)
    server.stop()  # stopping a server that never started is harmless
    for _ in range(2):
        _, port = server.start_in_thread()
        assert request(port, "GET", "/ghu.json")[0] == 200
        server.stop()


def test_slow_and_idle_clients_are_dropped(tmp_path: Path) -> None:
    server = FeedServer(make_feeds_dir(tmp_path), "127.0.0.1", 0, idle_timeout=1.0, request_timeout=1.0)
    _, port = server.start_in_thread()
    try:
        start = time.monotonic()
        slow = socket.create_connection(("127.0.0.1", port), timeout=5)
        slow.sendall(b"GET /ghu.xml HTTP/1.1\r\n")
        idle = socket.create_connection(("127.0.0.1", port), timeout=5)
        idle.sendall(b"GET /ghu.json HTTP/1.1\r\nHost: x\r\n\r\n")
        for _ in range(3):  # trickle headers like slowloris: activity alone must not save it
            time.sleep(0.4)
            slow.sendall(b"X-a: b\r\n")
        data = b""
        while chunk := slow.recv(65536):
            data += chunk
        assert _status(data) == 408
        first = idle.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        rest = b""
        while chunk := idle.recv(65536):
            rest += chunk
        assert time.monotonic() - start < 4
        slow.close()
        idle.close()
        wait_for(lambda: not server.open_connections, 3, "the server to close every connection", interval=0.02)
    finally:
        server.stop()


def test_stop_is_prompt_with_open_connections(tmp_path: Path) -> None:
    feeds = make_feeds_dir(tmp_path)
    (feeds / "big.json").write_bytes(os.urandom(1 << 20))
    server = FeedServer(feeds, "127.0.0.1", 0)
    _, port = server.start_in_thread()
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
    socks[0].sendall(b"GET /ghu.xml HTTP/1.1\r\nHost: x\r\n\r\n")
    socks[1].sendall(b"GET /ghu.xml HTTP/1.1\r\nHo")  # partial request
    socks[2].sendall(b"GET /big.json HTTP/1.1\r\nHost: x\r\n\r\n" * 50)  # never reads: stuck writes
    time.sleep(0.2)
    t0 = time.monotonic()
    server.stop()
    assert time.monotonic() - t0 < 2.5  # 1 s grace for flushing, then abort
    assert server._thread is None
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    for s in socks:
        s.settimeout(2)
        try:
            while s.recv(65536):
                pass
        except OSError:
            pass  # reset is fine: the point is that it ends
        s.close()


def test_start_twice_and_bind_conflict(tmp_path: Path) -> None:
    feeds = make_feeds_dir(tmp_path)
    server = FeedServer(feeds, "127.0.0.1", 0)
    _, port = server.start_in_thread()
    try:
        with pytest.raises(RuntimeError):
            server.start_in_thread()
        other = FeedServer(feeds, "127.0.0.1", port)
        with pytest.raises(OSError):
            other.start_in_thread()
    finally:
        server.stop()


def test_serve_inside_existing_loop_and_stop_from_other_thread(tmp_path: Path) -> None:
    server = FeedServer(make_feeds_dir(tmp_path), "127.0.0.1", 0)
    results: dict[str, object] = {}

    async def main() -> None:
        ready = asyncio.Event()
        task = asyncio.create_task(server.serve(ready=ready.set))
        await ready.wait()
        assert server.address is not None
        port = server.address[1]
        status = await asyncio.to_thread(lambda: request(port, "GET", "/ghu.json")[0])
        results["status"] = status
        threading.Timer(0.1, server.stop).start()
        await asyncio.wait_for(task, 3)
        results["done"] = True

    asyncio.run(main())
    assert results == {"status": 200, "done": True}


def test_server_survives_random_garbage(site) -> None:
    import random

    rng = random.Random(1234)
    for _ in range(40):
        blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
        if rng.random() < 0.5:
            blob = b"GET /" + blob + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        data = raw_exchange(site["port"], blob, half_close=True, timeout=3)
        assert SECRET not in data
    assert request(site["port"], "GET", "/ghu.xml")[0] == 200


def test_many_connections_at_once(tmp_path: Path) -> None:
    """More connections than the server's limit: each gets 200 or a clean 503, none hangs, and it recovers."""
    server = FeedServer(make_feeds_dir(tmp_path), "127.0.0.1", 0, max_connections=40)
    _, port = server.start_in_thread()
    socks: list[socket.socket] = []
    try:
        for _ in range(120):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            socks.append(sock)
        for sock in socks:
            sock.sendall(b"GET /ghu.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        codes = []
        for sock in socks:
            data = b""
            with contextlib.suppress(OSError):
                while chunk := sock.recv(65536):
                    data += chunk
            codes.append(_status(data))
        assert set(codes) <= {200, 503}, codes
        # How many are accepted before the limit applies depends on when uvicorn's accept loop runs (under load,
        # most of the 120 are already open when the first request is read): at least one is served.
        assert codes.count(200) >= 1, codes
    finally:
        for sock in socks:
            sock.close()
    try:
        wait_for(lambda: not server.open_connections, 5, "the server to close every connection", interval=0.02)
        assert request(port, "GET", "/ghu.json")[0] == 200
    finally:
        server.stop()
