"""create_once: a file written once, the same for every thread and process that races to create it."""

from __future__ import annotations

import multiprocessing
import os
import stat
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest

from shared.files import create_once

RACERS = 8


@pytest.fixture
def strict_umask() -> Iterator[None]:
    previous = os.umask(0o077)
    yield
    os.umask(previous)


def test_text_is_written_as_a_line_and_bytes_exactly(tmp_path: Path) -> None:
    assert create_once(tmp_path / "secret", lambda: "s3cr3t") == b"s3cr3t\n"
    assert (tmp_path / "secret").read_text() == "s3cr3t\n"
    assert create_once(tmp_path / "key.pem", lambda: b"\x00raw") == b"\x00raw"
    assert (tmp_path / "key.pem").read_bytes() == b"\x00raw"


def test_an_existing_file_is_returned_and_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("kept\n")
    assert create_once(path, _must_not_run) == b"kept\n"
    assert path.read_text() == "kept\n"


def test_the_mode_is_kept_whatever_the_umask_and_folders_are_made(tmp_path: Path, strict_umask: None) -> None:
    shared = tmp_path / "compose" / "shared"
    create_once(shared, lambda: "x", mode=0o644)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o644
    private = tmp_path / "deep" / "er" / "private"
    create_once(private, lambda: "x")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(private.parent.stat().st_mode) == 0o700


def test_threads_racing_in_one_process_all_get_the_one_file(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    everyone_is_writing = threading.Barrier(RACERS)
    counter = iter(range(RACERS))

    def make() -> str:
        value = f"value-{next(counter)}"
        everyone_is_writing.wait(timeout=10)  # all of them missed the file and write at once
        return value

    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        results = list(pool.map(lambda _: create_once(path, make), range(RACERS)))
    assert len(set(results)) == 1 and path.read_bytes() == results[0]
    assert [p.name for p in tmp_path.iterdir()] == ["secret"]  # no temporary file left behind


def test_processes_racing_all_get_the_one_file(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    with ProcessPoolExecutor(max_workers=4, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_create_slowly, [path] * RACERS))
    assert len(set(results)) == 1 and path.read_bytes() == results[0]
    assert [p.name for p in tmp_path.iterdir()] == ["secret"]


def _create_slowly(path: Path) -> bytes:
    def make() -> str:
        time.sleep(0.05)  # widen the window between missing the file and linking it
        return f"pid-{os.getpid()}"

    return create_once(path, make)


def _must_not_run() -> str:
    raise AssertionError("make() ran although the file exists")
