"""wrk: the command line for a throughput or a paced run, and its output turned into numbers.

Both Lua scripts end with the ``done()`` hook of ``lua/report.lua``, which prints one
``BENCH_RESULT {json}`` line with exact counts and latency percentiles in
microseconds; :func:`parse_wrk_output` reads that line, not wrk's rounded summary.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LUA_DIR = Path(__file__).resolve().parent / "lua"
REPORT_SCRIPT = LUA_DIR / "report.lua"
PACED_SCRIPT = LUA_DIR / "paced.lua"
RESULT_MARKER = "BENCH_RESULT "
PERCENTILES = ("p50", "p75", "p90", "p99", "p99.9")
ERROR_KINDS = ("connect", "read", "write", "status", "timeout")


class WrkError(RuntimeError):
    """wrk could not run, or its output had no result line."""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_seconds: float
    bytes_read: int
    errors: dict[str, int]  # socket errors by kind; "status" counts answers with a status >= 400
    latency_ms: dict[str, float]  # min, mean, stdev, max and PERCENTILES

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.duration_seconds if self.duration_seconds else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @classmethod
    def combine(cls, rounds: Sequence[WrkResult]) -> WrkResult:
        """Several rounds as one: counts pooled; each percentile the median over rounds.

        wrk hands a script percentiles, not its histogram, so rounds' percentiles cannot be
        pooled exactly; the median keeps one round's hiccup from deciding the figure.
        """
        if not rounds:
            raise ValueError("no rounds to combine")
        requests = sum(r.requests for r in rounds)
        latency = {key: statistics.median(r.latency_ms[key] for r in rounds) for key in ("stdev", *PERCENTILES)}
        latency["min"] = min(r.latency_ms["min"] for r in rounds)
        latency["max"] = max(r.latency_ms["max"] for r in rounds)
        latency["mean"] = (
            sum(r.latency_ms["mean"] * r.requests for r in rounds) / requests
            if requests
            else statistics.fmean(r.latency_ms["mean"] for r in rounds)
        )
        return cls(
            requests=requests,
            duration_seconds=sum(r.duration_seconds for r in rounds),
            bytes_read=sum(r.bytes_read for r in rounds),
            errors={kind: sum(r.errors[kind] for r in rounds) for kind in ERROR_KINDS},
            latency_ms=latency,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "duration_seconds": round(self.duration_seconds, 3),
            "requests_per_second": round(self.requests_per_second, 1),
            "bytes_read": self.bytes_read,
            "errors": dict(self.errors),
            "latency_ms": {key: round(value, 3) for key, value in self.latency_ms.items()},
        }


def parse_wrk_output(output: str) -> WrkResult:
    """The numbers in wrk's stdout, from the ``BENCH_RESULT`` line that ``report.lua`` prints."""
    lines = [line for line in output.splitlines() if line.startswith(RESULT_MARKER)]
    if len(lines) != 1:
        found = "no" if not lines else f"{len(lines)}"
        raise WrkError(f"{found} {RESULT_MARKER.strip()} line in wrk's output:\n{_tail(output)}")
    try:
        raw = json.loads(lines[0].removeprefix(RESULT_MARKER))
        latency_us = raw["latency_us"]
        return WrkResult(
            requests=int(raw["requests"]),
            duration_seconds=int(raw["duration_us"]) / 1e6,
            bytes_read=int(raw["bytes"]),
            errors={kind: int(raw["errors"][kind]) for kind in ERROR_KINDS},
            latency_ms={key: float(latency_us[key]) / 1000 for key in ("min", "mean", "stdev", "max", *PERCENTILES)},
        )
    except (ValueError, KeyError, TypeError) as error:
        raise WrkError(f"unreadable {RESULT_MARKER.strip()} line ({error!r}): {lines[0]}") from error


def find_wrk() -> str | None:
    return shutil.which("wrk")


@dataclass(frozen=True)
class WrkRunner:
    executable: str
    threads: int

    def throughput_command(self, url: str, token: str, *, connections: int, seconds: int) -> list[str]:
        return self._command(url, token, connections=connections, seconds=seconds, script=REPORT_SCRIPT)

    def paced_command(self, url: str, token: str, *, connections: int, seconds: int, rate: int) -> list[str]:
        threads = min(self.threads, connections)
        per_thread_rate = rate / threads
        command = self._command(url, token, connections=connections, seconds=seconds, script=PACED_SCRIPT)
        return [*command, "--", f"{per_thread_rate:g}"]

    def _command(self, url: str, token: str, *, connections: int, seconds: int, script: Path) -> list[str]:
        return [
            self.executable,
            f"-t{min(self.threads, connections)}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout", "5s",
            "-s", str(script),
            "-H", f"Authorization: Bearer {token}",
            url,
        ]  # fmt: skip

    def run(self, command: list[str], *, seconds: int) -> WrkResult:
        try:
            finished = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=seconds + 30,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise WrkError(f"wrk did not finish within {seconds + 30}s") from error
        if finished.returncode != 0:
            raise WrkError(f"wrk exited {finished.returncode}:\n{_tail(finished.stderr + finished.stdout)}")
        return parse_wrk_output(finished.stdout)


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:]) or "(empty)"
