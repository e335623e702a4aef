"""The repository's shape and hygiene: the top level the product brief names, and no secret in git."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

TOP_LEVEL = [
    "services",
    "shared",
    "deploy",
    "docker-compose.microservices.yml",
    "deploy_final_microservices.sh",
    "test_microservices_system.py",
    "Makefile",
    "README.md",
    ".ci/run",
    "docs/decisions",
    "requirements.in",
    "requirements.lock",
    ".env.example",
]


@pytest.mark.parametrize("path", TOP_LEVEL)
def test_the_top_level_named_by_the_brief_exists(path: str) -> None:
    assert (REPO / path).exists()


@pytest.mark.parametrize(
    "path",
    [
        "var/log/user-service.log",
        "app.log",
        "uploads/x.pdf",
        "local.sqlite3",
        "jwt_private.pem",
        "secrets/db_password",
        ".env",
        "services/user_service/.env",
        "service.pid",
        ".venv/bin/python",
    ],
)
def test_runtime_state_and_secrets_are_ignored(path: str) -> None:
    result = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO, check=False)
    assert result.returncode == 0, f"{path} is not ignored by git"


def test_env_example_is_tracked_and_no_secret_file_is() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, check=True, capture_output=True, text=True).stdout.split()
    assert ".env.example" in tracked
    secretive = [
        p
        for p in tracked
        if p.endswith((".pem", ".key"))
        or Path(p).name == ".env"
        or (p.startswith("secrets/") and p != "secrets/.gitignore")
    ]
    assert secretive == []


def test_every_pin_in_the_lock_is_exact() -> None:
    pins = [line for line in (REPO / "requirements.lock").read_text().splitlines() if line and not line.startswith("#")]
    assert pins and all("==" in line for line in pins), [line for line in pins if "==" not in line]


def test_every_requirement_is_pinned_in_the_lock() -> None:
    def name(line: str) -> str:
        return line.split("==")[0].split("[")[0].split(">")[0].split("<")[0].strip().lower().replace("_", "-")

    wanted = {
        name(line)
        for line in (REPO / "requirements.in").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    pinned = {
        name(line)
        for line in (REPO / "requirements.lock").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert wanted - pinned == set()
