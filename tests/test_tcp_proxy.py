"""The fault-injection proxy: forwards, cuts, refuses, hangs and restores, from sync and async code."""

from __future__ import annotations

import asyncio
import socket
import socketserver
import threading
from collections.abc import AsyncIterator, Iterator

import pytest

from shared.testing.tcp_proxy import TcpProxy

WAIT = 5.0


class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(data)


@pytest.fixture
def echo_server() -> Iterator[tuple[str, int]]:
    """A threaded echo server (a stand-in for any dependency)."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _EchoHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server.server_address[0], server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(echo_server: tuple[str, int]) -> Iterator[TcpProxy]:
    with TcpProxy(*echo_server) as running:
        yield running


def _connect(proxy: TcpProxy) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=WAIT)
    sock.settimeout(WAIT)
    return sock


def _echo(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    received = b""
    while len(received) < len(data):
        chunk = sock.recv(4096)
        if not chunk:
            break
        received += chunk
    return received


def _is_closed(sock: socket.socket) -> bool:
    """True when the peer closed or reset the connection."""
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


# --- sync use ---


def test_forwards_both_ways_and_counts_connections(proxy: TcpProxy) -> None:
    with _connect(proxy) as first, _connect(proxy) as second:
        assert _echo(first, b"hello") == b"hello"
        assert _echo(second, b"world" * 10_000) == b"world" * 10_000
    assert proxy.connections_seen == 2


def test_cut_drops_connections_and_refuses_new_ones_until_restored(proxy: TcpProxy) -> None:
    with _connect(proxy) as before_cut:
        assert _echo(before_cut, b"ping") == b"ping"
        proxy.cut()
        assert _is_closed(before_cut)

    with _connect(proxy) as during_cut:  # the TCP handshake completes, then the proxy drops it
        assert _is_closed(during_cut)
    assert proxy.connections_seen == 2

    proxy.restore()
    with _connect(proxy) as after_restore:
        assert _echo(after_restore, b"back") == b"back"


def test_hang_forwards_nothing_and_restore_resumes_the_same_connection(proxy: TcpProxy) -> None:
    with _connect(proxy) as sock:
        assert _echo(sock, b"one") == b"one"
        proxy.hang()
        sock.sendall(b"two")
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):  # nothing comes back, and the connection stays open
            sock.recv(16)

        with _connect(proxy) as new_connection:  # accepted, but silent too
            new_connection.settimeout(0.3)
            new_connection.sendall(b"x")
            with pytest.raises(TimeoutError):
                new_connection.recv(16)

            proxy.restore()
            sock.settimeout(WAIT)
            new_connection.settimeout(WAIT)
            assert sock.recv(16) == b"two"  # the held bytes arrive, in order
            assert new_connection.recv(16) == b"x"


def test_rewrite_url_keeps_credentials_and_path(proxy: TcpProxy) -> None:
    rewritten = proxy.rewrite_url("amqp://guest:secret@10.0.0.1:5672/my-vhost?heartbeat=5")
    assert rewritten == f"amqp://guest:secret@127.0.0.1:{proxy.port}/my-vhost?heartbeat=5"


def test_stop_closes_connections_and_the_listener(echo_server: tuple[str, int]) -> None:
    proxy = TcpProxy(*echo_server)
    port = proxy.start()
    sock = _connect(proxy)
    proxy.stop()
    assert _is_closed(sock)
    sock.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=WAIT).close()


# --- async use: the proxy's own thread keeps forwarding while the test's loop awaits ---


@pytest.fixture
async def async_echo_server() -> AsyncIterator[int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(4096):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


async def test_works_from_async_code_in_front_of_a_server_on_the_test_loop(async_echo_server: int) -> None:
    with TcpProxy("127.0.0.1", async_echo_server) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"async")
        assert await asyncio.wait_for(reader.readexactly(5), WAIT) == b"async"

        proxy.cut()
        assert await asyncio.wait_for(reader.read(), WAIT) == b""
        writer.close()
        assert proxy.connections_seen == 1
