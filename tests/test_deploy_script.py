"""deploy_final_microservices.sh without Docker: its options, the commands it would run (--dry-run), and a
real run against a fake `docker` that records what it is asked."""

from __future__ import annotations

import http.server
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "deploy_final_microservices.sh"
COMPOSE_FILE = "docker-compose.microservices.yml"
COMPOSE = f"docker compose -f {COMPOSE_FILE}"
URLS = [
    "http://localhost:8000",
    "http://localhost:8000/docs",
    "http://localhost:3000",
    "http://localhost:9090",
    "http://localhost:9093",
    "http://localhost:15672",
]


def _migrate_jobs() -> list[str]:
    services = yaml.safe_load((REPO / COMPOSE_FILE).read_text())["services"]
    jobs = [name for name in services if name.endswith("-migrate")]
    assert len(jobs) >= 8, jobs
    return jobs


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _fake_docker(bin_dir: Path, log: Path, *, engine: bool, compose_version: str = "2.29.1") -> None:
    """A `docker` that logs every call; `info` answers only with an engine; `build` fails on FAIL_BUILD."""
    bin_dir.mkdir(exist_ok=True)
    _executable(
        bin_dir / "docker",
        f"""#!/bin/sh
echo "docker $*" >> '{log}'
case "$*" in
  info) exit {0 if engine else 1} ;;
  "compose version --short") echo '{compose_version}'; exit 0 ;;
  *" build") [ -n "${{FAIL_BUILD:-}}" ] && exit 7 ;;
esac
exit 0
""",
    )


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DEPLOY_MODE", "SECRETS_DIR", "FAIL_BUILD"}}
    env.update(extra)
    return env


def _run(*args: str, script: Path = SCRIPT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(script), *args], capture_output=True, text=True, env=env or _env(), timeout=60, check=False
    )


def _commands(stdout: str) -> list[str]:
    return [line[2:] for line in stdout.splitlines() if line.startswith("+ ")]


@pytest.fixture
def secrets_dir(tmp_path: Path) -> Path:
    """A copy of the repository's secrets/ (gitignored, maybe without files yet) with a bot token."""
    copy = tmp_path / "secrets"
    shutil.copytree(REPO / "secrets", copy)
    (copy / "telegram_bot_token").write_text("123456:ABC-token-from-botfather\n")
    return copy


def test_the_script_is_valid_bash_and_strict() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    assert "set -Eeuo pipefail" in SCRIPT.read_text()
    assert os.access(SCRIPT, os.X_OK)


def test_help_names_every_option() -> None:
    result = _run("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: ./deploy_final_microservices.sh")
    for option in ("--compose", "--local", "--timeout SECONDS", "--without-bot", "--dry-run", "-h, --help"):
        assert option in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--frobnicate"], "unknown option: --frobnicate"),
        (["--timeout"], "--timeout needs a number"),
        (["--timeout", "soon"], "whole number of seconds"),
        (["--timeout", "0"], "whole number of seconds"),
    ],
)
def test_bad_usage_exits_2_saying_why(args: list[str], message: str) -> None:
    result = _run("--dry-run", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert _commands(result.stdout) == []


def test_compose_dry_run_prints_secrets_build_migrations_up_wait_then_the_urls(secrets_dir: Path) -> None:
    result = _run("--dry-run", "--compose", "--timeout", "42", env=_env(SECRETS_DIR=str(secrets_dir)))
    assert result.returncode == 0, result.stderr
    commands = _commands(result.stdout)
    expected = [
        ".venv/bin/python -m shared.runner compose-secrets",
        f"{COMPOSE} build",
        f"{COMPOSE} up -d --wait --wait-timeout 42 postgres",
        *(f"{COMPOSE} run --rm --no-deps {job}" for job in _migrate_jobs()),
        f"{COMPOSE} up -d --remove-orphans --wait --wait-timeout 42",
    ]
    assert [c for c in commands if c in expected] == expected
    assert not any("telegram-bot=0" in c for c in commands)  # a token is there: the bot runs
    after_up = result.stdout.split(expected[-1], 1)[1]  # the URLs come once everything is healthy
    for url in URLS:
        assert re.search(rf"{re.escape(url)}(\s|$)", after_up, re.MULTILINE), url
    assert "not started" not in after_up


@pytest.mark.parametrize("token", ["", "  \n"], ids=["empty", "blank"])
def test_compose_refuses_an_empty_bot_token_before_building(secrets_dir: Path, token: str) -> None:
    (secrets_dir / "telegram_bot_token").write_text(token)
    result = _run("--dry-run", "--compose", env=_env(SECRETS_DIR=str(secrets_dir)))
    assert result.returncode == 3
    assert f"{secrets_dir}/telegram_bot_token is empty" in result.stderr
    assert "@BotFather" in result.stderr and "--without-bot" in result.stderr
    assert not any(c.endswith(" build") for c in _commands(result.stdout))


def test_compose_treats_a_missing_token_file_as_empty(secrets_dir: Path) -> None:
    (secrets_dir / "telegram_bot_token").unlink()  # compose-secrets would create it empty
    result = _run("--dry-run", "--compose", env=_env(SECRETS_DIR=str(secrets_dir)))
    assert result.returncode == 3
    assert "telegram_bot_token is empty" in result.stderr


def test_without_bot_deploys_the_rest_with_the_bot_scaled_to_zero(secrets_dir: Path) -> None:
    (secrets_dir / "telegram_bot_token").write_text("")
    result = _run("--dry-run", "--compose", "--without-bot", env=_env(SECRETS_DIR=str(secrets_dir)))
    assert result.returncode == 0, result.stderr
    up = [c for c in _commands(result.stdout) if "--remove-orphans" in c]
    assert up == [f"{COMPOSE} up -d --remove-orphans --wait --wait-timeout 300 --scale telegram-bot=0"]
    assert "telegram-bot         not started (--without-bot)" in result.stdout


def _runner_has_monitoring() -> bool:
    help_text = subprocess.run(
        [sys.executable, "-m", "shared.runner", "up", "--help"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    return "--monitoring" in help_text


def test_local_dry_run_prints_install_the_runner_with_monitoring_and_the_urls() -> None:
    result = _run("--dry-run", "--local", "--timeout", "77")
    assert result.returncode == 0, result.stderr
    runner = "env REPITBOT_READY_TIMEOUT=77 .venv/bin/python -m shared.runner up"
    if _runner_has_monitoring():
        assert _commands(result.stdout) == ["make --no-print-directory install", f"{runner} --monitoring"]
        assert "Prometheus           http://127.0.0.1:9090" in result.stdout
    else:
        assert _commands(result.stdout) == ["make --no-print-directory install", runner]
        assert "monitoring is not available" in result.stdout
    assert "gateway              http://127.0.0.1:8000" in result.stdout
    assert "API docs             http://127.0.0.1:8000/docs" in result.stdout
    assert "Grafana              needs Docker" in result.stdout
    assert not any(c.startswith("docker") for c in _commands(result.stdout))


@pytest.mark.parametrize(("engine", "mode_command"), [(False, "shared.runner up"), (True, "compose-secrets")])
def test_the_mode_follows_whether_docker_info_answers(
    tmp_path: Path, secrets_dir: Path, engine: bool, mode_command: str
) -> None:
    log = tmp_path / "docker.log"
    _fake_docker(tmp_path / "bin", log, engine=engine)
    env = _env(PATH=f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}", SECRETS_DIR=str(secrets_dir))
    result = _run("--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines() == ["docker info"]  # asked once; the dry run runs nothing else
    assert any(mode_command in c for c in _commands(result.stdout))
    assert ("no Docker engine answers" in result.stdout) is not engine


# --- a real run (no --dry-run) in a copy of the script, against a fake docker and a fake venv python ---


@pytest.fixture
def deploy_copy(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    root = tmp_path / "repo"
    (root / ".venv" / "bin").mkdir(parents=True)
    shutil.copy2(SCRIPT, root / SCRIPT.name)
    shutil.copy2(REPO / COMPOSE_FILE, root / COMPOSE_FILE)
    (root / "secrets").mkdir()
    (root / "secrets" / "telegram_bot_token").write_text("123456:token\n")
    log = tmp_path / "calls.log"
    _executable(root / ".venv" / "bin" / "python", f"#!/bin/sh\necho \"python $*\" >> '{log}'\n")
    env = _env(PATH=f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    return root, log, env


def test_a_real_compose_run_calls_docker_in_order_and_prints_the_urls(
    tmp_path: Path, deploy_copy: tuple[Path, Path, dict[str, str]]
) -> None:
    root, log, env = deploy_copy
    _fake_docker(tmp_path / "bin", log, engine=True)
    result = _run("--timeout", "9", script=root / SCRIPT.name, env=env)
    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines() == [
        "docker info",  # the auto-detection
        "docker info",  # the prerequisite check
        "docker compose version --short",
        "python -m shared.runner compose-secrets",
        f"{COMPOSE} build",
        f"{COMPOSE} up -d --wait --wait-timeout 9 postgres",
        *(f"{COMPOSE} run --rm --no-deps {job}" for job in _migrate_jobs()),
        f"{COMPOSE} up -d --remove-orphans --wait --wait-timeout 9",
        f"{COMPOSE} ps",
    ]
    for url in URLS:
        assert re.search(rf"{re.escape(url)}(\s|$)", result.stdout, re.MULTILINE), url


def test_a_failed_step_stops_the_deploy_with_exit_1_naming_it(
    tmp_path: Path, deploy_copy: tuple[Path, Path, dict[str, str]]
) -> None:
    root, log, env = deploy_copy
    _fake_docker(tmp_path / "bin", log, engine=True)
    result = _run("--compose", script=root / SCRIPT.name, env={**env, "FAIL_BUILD": "1"})
    assert result.returncode == 1
    assert "deploy: failed (status 7)" in result.stderr
    assert log.read_text().splitlines()[-1] == f"{COMPOSE} build"  # nothing after it
    assert "RepitBot is up" not in result.stdout


def test_an_old_compose_is_refused_with_exit_3(tmp_path: Path, deploy_copy: tuple[Path, Path, dict[str, str]]) -> None:
    root, log, env = deploy_copy
    _fake_docker(tmp_path / "bin", log, engine=True, compose_version="v2.16.0")
    result = _run("--compose", script=root / SCRIPT.name, env=env)
    assert result.returncode == 3
    assert "docker compose v2.16.0 is too old: v2.17.0 or newer" in result.stderr
    assert "compose-secrets" not in log.read_text()


def test_forcing_compose_without_an_engine_is_refused_with_exit_3(
    tmp_path: Path, deploy_copy: tuple[Path, Path, dict[str, str]]
) -> None:
    root, log, env = deploy_copy
    _fake_docker(tmp_path / "bin", log, engine=False)
    result = _run("--compose", script=root / SCRIPT.name, env=env)
    assert result.returncode == 3
    assert "no Docker engine answers `docker info`" in result.stderr
    assert "--local" in result.stderr


def test_a_real_compose_run_only_uses_the_secrets_compose_mounts(
    tmp_path: Path, secrets_dir: Path, deploy_copy: tuple[Path, Path, dict[str, str]]
) -> None:
    root, log, env = deploy_copy
    _fake_docker(tmp_path / "bin", log, engine=True)
    result = _run("--compose", script=root / SCRIPT.name, env={**env, "SECRETS_DIR": str(secrets_dir)})
    assert result.returncode == 3
    assert "mounts ./secrets" in result.stderr


class _Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/-/ready" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: pytest shows failures, not access lines


@pytest.mark.parametrize("has_monitoring", [True, False], ids=["monitoring", "fallback"])
def test_a_real_local_run_starts_the_runner_with_monitoring_or_falls_back(
    tmp_path: Path, deploy_copy: tuple[Path, Path, dict[str, str]], has_monitoring: bool
) -> None:
    root, log, env = deploy_copy
    _fake_docker(tmp_path / "bin", log, engine=False)
    _executable(tmp_path / "bin" / "make", f"#!/bin/sh\necho \"make $*\" >> '{log}'\n")
    flag = "[--monitoring]" if has_monitoring else ""
    _executable(
        root / ".venv" / "bin" / "python",
        f"""#!/bin/sh
echo "python $* REPITBOT_READY_TIMEOUT=${{REPITBOT_READY_TIMEOUT:-}}" >> '{log}'
[ "$*" = "-m shared.runner up --help" ] && echo "usage: python -m shared.runner up [--timeout TIMEOUT] {flag}"
exit 0
""",
    )
    # a Prometheus that answers /-/ready: listed only when the runner could start one
    server = http.server.HTTPServer(("127.0.0.1", 0), _Ready)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    prometheus = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        result = _run("--timeout", "11", script=root / SCRIPT.name, env={**env, "PROMETHEUS_URL": prometheus})
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    up = "python -m shared.runner up --monitoring" if has_monitoring else "python -m shared.runner up"
    assert calls[0] == "docker info"
    assert calls[1] == "make --no-print-directory install"
    assert calls[-1] == f"{up} REPITBOT_READY_TIMEOUT=11"
    assert ("monitoring is not available" in result.stdout) is not has_monitoring
    assert "gateway              http://127.0.0.1:8000" in result.stdout
    if has_monitoring:
        assert f"Prometheus           {prometheus}" in result.stdout
    else:
        assert "Prometheus           not running" in result.stdout
    assert "Grafana              needs Docker" in result.stdout
