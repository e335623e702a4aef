"""Bodies stream through the gateway: 200 MB up and down, and the gateway process barely grows.

The gateway runs here as its own process (as under ``make run``), so its memory is its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import psutil
import pytest

from services.api_gateway.routing import JWKS_PATH
from services.api_gateway.tests.conftest import Upstream, free_port, serving_upstream, wait_until_ready
from shared.runner.layout import REPO_ROOT
from shared.testing.infra import TEST_REDIS_URL
from shared.testing.tokens import TokenFactory

SIZE = 200 * 1024 * 1024
CHUNK = 256 * 1024
MAX_GROWTH = 64 * 1024 * 1024  # a fraction of one body: nothing is held whole


@dataclass
class GatewayProcess:
    url: str
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
async def signing() -> TokenFactory:
    return await TokenFactory.create()  # on the real clock, like the gateway process


@pytest.fixture(scope="module")
def files(signing: TokenFactory) -> Iterator[Upstream]:
    with serving_upstream("files", jwks=signing.jwks) as upstream:
        yield upstream


@pytest.fixture(scope="module")
def gateway_process(files: Upstream) -> Iterator[GatewayProcess]:
    port = free_port()
    env = {
        **os.environ,
        "ENV": "test",
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
        "REDIS_URL": TEST_REDIS_URL,
        "USER_SERVICE_URL": files.url,
        "MATERIAL_SERVICE_URL": files.url,
        "JWKS_URL": files.url + JWKS_PATH,
        "ROUTE_POLICIES": json.dumps({"materials": {"max_body_bytes": SIZE + 1}}),
    }
    command = [sys.executable, "-m", "uvicorn", "services.api_gateway.main:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--loop", "uvloop", "--http", "httptools", "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/ready", process)
        yield GatewayProcess(f"http://127.0.0.1:{port}", process)
    finally:
        process.terminate()
        process.wait(15)


class PeakMemory:
    """The largest resident set size of a process while the block runs, sampled in a thread."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self._stop = threading.Event()
        self.baseline = self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


async def body(size: int, digest: hashlib._Hash) -> AsyncIterator[bytes]:
    block = bytes(range(256)) * (CHUNK // 256)
    for start in range(0, size, CHUNK):
        chunk = block[: min(CHUNK, size - start)]
        digest.update(chunk)
        yield chunk


async def test_200_mb_up_and_down_with_bounded_gateway_memory(
    gateway_process: GatewayProcess, signing: TokenFactory, files: Upstream
) -> None:
    headers = signing.auth_header(uuid.uuid4(), "tutor")
    async with httpx.AsyncClient(base_url=gateway_process.url, headers=headers, timeout=60) as client:
        assert (await client.get("/api/v1/materials/warm-up")).status_code == 200  # pools, caches, code paths
        sent = hashlib.sha256()
        with PeakMemory(gateway_process.process.pid) as upload_memory:
            response = await client.post(
                "/api/v1/materials/upload", content=body(SIZE, sent), headers={"Content-Length": str(SIZE)}
            )
        assert response.status_code == 200, response.text
        assert response.json() == {"size": SIZE, "sha256": sent.hexdigest()}

        received = 0
        with PeakMemory(gateway_process.process.pid) as download_memory:
            async with client.stream("GET", f"/api/v1/materials/download?size={SIZE}") as download:
                assert download.status_code == 200
                assert download.headers["content-length"] == str(SIZE)
                async for chunk in download.aiter_raw():
                    received += len(chunk)
        assert received == SIZE

        # a chunked upload (no declared length) of the same size streams as well
        with PeakMemory(gateway_process.process.pid) as chunked_memory:
            response = await client.post("/api/v1/materials/upload", content=body(SIZE, hashlib.sha256()))
        assert response.json()["size"] == SIZE

    for memory in (upload_memory, download_memory, chunked_memory):
        assert memory.growth < MAX_GROWTH, f"the gateway grew by {memory.growth / 2**20:.0f} MiB"
