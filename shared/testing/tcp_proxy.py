"""A TCP proxy for fault injection: put it in front of a dependency and cut, hang or restore the link.

It runs its own event loop in its own thread, so the same object works from sync
tests, from async tests (its methods return after a few milliseconds) and in
front of other processes (they just connect to ``proxy.port``)::

    with TcpProxy("127.0.0.1", 5672) as proxy:
        url = proxy.rewrite_url("amqp://guest:guest@127.0.0.1:5672/vhost")
        ...
        proxy.cut()      # drop every connection, refuse new ones
        proxy.restore()  # accept and forward again
        proxy.hang()     # keep connections open but forward nothing (proves timeouts)

``connections_seen`` counts every connection a client opened to the proxy, refused
ones included: a client that fails fast shows it by opening none.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import enum
import logging
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)

T = TypeVar("T")

_CHUNK = 65536
_CALL_TIMEOUT = 10.0


class _Mode(enum.Enum):
    FORWARDING = "forwarding"
    CUT = "cut"
    HANGING = "hanging"
    STOPPED = "stopped"


class TcpProxy:
    def __init__(
        self,
        target_host: str,
        target_port: int,
        listen_port: int = 0,
        *,
        listen_host: str = "127.0.0.1",
        connect_timeout: float = 5.0,
    ) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.listen_host = listen_host
        self._listen_port = listen_port
        self._connect_timeout = connect_timeout
        self._connections_seen = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        # touched only on the proxy's own loop:
        self._mode = _Mode.FORWARDING
        self._flowing: asyncio.Event | None = None  # set while bytes may pass
        self._transports: set[asyncio.BaseTransport] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # --- control, from any thread ---

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def connections_seen(self) -> int:
        return self._connections_seen

    def start(self) -> int:
        """Start listening; returns the port."""
        if self._loop is not None:
            return self.port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"tcp-proxy-{self.target_port}", daemon=True
        )
        self._thread.start()
        self._server = self._call(self._listen())
        return self.port

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
            self._call(self._shutdown())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=_CALL_TIMEOUT)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = None

    def cut(self) -> None:
        """Drop every connection (both sides) and refuse new ones until ``restore``."""
        self._call(self._set_mode(_Mode.CUT))

    def hang(self) -> None:
        """Keep connections open, accept new ones, forward nothing until ``restore`` (or ``cut``)."""
        self._call(self._set_mode(_Mode.HANGING))

    def restore(self) -> None:
        """Forward again; connections held by ``hang`` carry on where they stopped."""
        self._call(self._set_mode(_Mode.FORWARDING))

    def rewrite_url(self, url: str) -> str:
        """``url`` with its host and port replaced by the proxy's (credentials and path kept)."""
        parts = urlsplit(url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@" if credentials else ""
        return urlunsplit(parts._replace(netloc=f"{netloc}{self.listen_host}:{self.port}"))

    def __enter__(self) -> TcpProxy:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError("the proxy is not started")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("TcpProxy control methods must not be called from the proxy's own thread")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=_CALL_TIMEOUT)

    # --- on the proxy's loop ---

    async def _listen(self) -> asyncio.Server:
        self._flowing = asyncio.Event()
        self._flowing.set()
        return await asyncio.start_server(self._on_client, self.listen_host, self._listen_port)

    async def _set_mode(self, mode: _Mode) -> None:
        assert self._flowing is not None
        self._mode = mode
        if mode is _Mode.FORWARDING:
            self._flowing.set()
            return
        self._flowing.clear()
        if mode is _Mode.CUT:
            self._drop_all()

    def _drop_all(self) -> None:
        for transport in list(self._transports):
            transport.abort()
        self._transports.clear()
        for task in list(self._tasks):
            task.cancel()

    async def _shutdown(self) -> None:
        self._mode = _Mode.STOPPED
        # connections the kernel accepted but the loop has not handed to _on_client yet would be
        # left dangling by closing the listener at once: let them arrive (and be dropped) first
        await asyncio.sleep(0.05)
        if self._server is not None:
            self._server.close()
        self._drop_all()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=_CALL_TIMEOUT)

    async def _on_client(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self._connections_seen += 1
        if self._mode in (_Mode.CUT, _Mode.STOPPED):
            client_writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None and self._flowing is not None
        self._tasks.add(task)
        self._transports.add(client_writer.transport)
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            await self._flowing.wait()  # a connection made while hanging waits here, open and silent
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(self.target_host, self.target_port), timeout=self._connect_timeout
            )
            self._transports.add(upstream_writer.transport)
            pumps = [
                asyncio.create_task(self._pump(client_reader, upstream_writer)),
                asyncio.create_task(self._pump(upstream_reader, client_writer)),
            ]
            try:
                # when one direction ends the connection is over: stop the other too
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pump in pumps:
                    pump.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
        except (OSError, TimeoutError) as exc:
            log.debug("proxied connection ended", extra={"error": repr(exc)})
        except asyncio.CancelledError:
            pass  # cut or stopped
        finally:
            for writer in (client_writer, upstream_writer):
                if writer is not None:
                    self._transports.discard(writer.transport)
                    writer.transport.abort()
            self._tasks.discard(task)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        try:
            while True:
                data = await source.read(_CHUNK)
                await self._flowing.wait()  # while hanging, hold the data (and an EOF) back
                if not data:
                    return  # one side closed; the caller closes the other
                sink.write(data)
                await sink.drain()
        except OSError:
            return  # reset by a peer
