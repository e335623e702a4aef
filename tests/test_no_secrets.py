"""No secret in the repository: a gitleaks-style scan of every tracked text file.

The scan reads the working-tree content of each path `git ls-files` lists (so a secret about to be
committed is caught too) and matches it against the rules below: private keys, cloud and chat
tokens, JWTs, URLs that carry a password, and `password/secret/token = "<random>"` assignments
whose value looks random (Shannon entropy). What it may legitimately find is listed in ALLOWLIST,
each entry with the reason it is not a secret; an entry that no longer matches anything fails the
suite too, so the list cannot rot. The fixtures that exercise the scanner build their fake keys at
run time, so this file holds no literal that its own rules would flag.
"""

from __future__ import annotations

import base64
import math
import random
import re
import string
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Characters that may belong to a token: a match must not be glued to more of them on either side.
_T = r"A-Za-z0-9_\-"
# Names under which a secret is assigned; a match starts at the keyword (cheaper than at every position).
_KEY = r"(?:password|passwd|secret|token|api_?key|private_?key|credentials?)[a-z0-9_.\-]*"

RULES: dict[str, re.Pattern[str]] = {
    # A header alone (as in a test that a non-key is refused) is not a key: a base64 body must follow.
    "private-key": re.compile(
        r"-----BEGIN[ A-Z0-9]{0,40} PRIVATE KEY(?: BLOCK)?-----(?:\s|\\n)*"
        r"(?:[A-Za-z-]+: [^\n\\]*(?:\s|\\n)+)*[A-Za-z0-9+/=]{40,}"
    ),
    "aws-access-key-id": re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16}(?![A-Z0-9])"),
    "aws-secret-access-key": re.compile(
        r"(?i)aws_?secret_?(?:access_?)?key\W{0,5}[:=]\s*[\"']?[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])"
    ),
    "github-token": re.compile(rf"(?<![{_T}])(?:gh[pousr]_[A-Za-z0-9]{{36,255}}|github_pat_[A-Za-z0-9_]{{60,255}})"),
    "gitlab-token": re.compile(rf"(?<![{_T}])gl(?:pat|ptt|dt|rt)-[{_T}]{{20,}}"),
    "slack-token": re.compile(rf"(?<![{_T}])xox[abposr]-[A-Za-z0-9\-]{{10,}}"),
    "slack-webhook": re.compile(r"hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9+/]{20,}"),
    "telegram-bot-token": re.compile(rf"(?<![{_T}])\d{{8,10}}:[{_T}]{{35}}(?![{_T}])"),
    "google-api-key": re.compile(rf"(?<![{_T}])AIza[{_T}]{{35}}(?![{_T}])"),
    "stripe-key": re.compile(rf"(?<![{_T}])[rs]k_live_[A-Za-z0-9]{{20,}}"),
    "jwt": re.compile(rf"(?<![{_T}])eyJ[{_T}]{{8,}}\.eyJ[{_T}]{{8,}}\.[{_T}]*"),
    "url-credentials": re.compile(
        r"\b[a-z][a-z0-9+.\-]*://(?P<user>[^\s:/@\"'`<>]+):(?P<password>[^\s/@\"'`<>]+)@(?P<host>[^\s/:\"'`<>?#]+)"
    ),
    # key = "value" in any language (quoted), and KEY=value / key: value lines (env files, YAML, shell).
    "generic-secret": re.compile(
        rf"(?im){_KEY}[\"']?\s*(?::=|=>|[:=])\s*[bfr]?[\"'](?P<value>[^\"'\s]{{16,}})[\"']"
        rf"|^[ \t]*(?:export[ \t]+)?[a-z0-9_.\-]*{_KEY}[ \t]*[:=][ \t]*(?P<bare>[A-Za-z0-9+/=_\-.~:]{{16,}})[ \t]*$"
    ),
}

# Loopback hosts on which `guest:guest` is the documented development default of RabbitMQ.
LOOPBACK = {"127.0.0.1", "localhost", "[::1]"}
# A value of this shape is a placeholder, not a secret: ${VAR}, {name}, <password>, ***, $VAR, %s, xxx.
PLACEHOLDER = re.compile(r"^(?:\$\{[^}]*\}|\{[^}]*\}|<[^>]*>|\*+|\$[A-Za-z_]\w*|%s|%\([a-z_]+\)s|\.\.\.|x+|X+)$")
GENERIC_MIN_ENTROPY = 3.5  # bits per character; gitleaks' generic rule uses the same bound


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    rule: str
    text: str = field(repr=False)  # the whole match: never printed in full, a real secret stays out of logs

    def __str__(self) -> str:
        shown = f"{self.text[:6]}…({len(self.text)} chars)"
        return f"{self.path}:{self.line}: {self.rule}: {shown}"


@dataclass(frozen=True)
class Allowed:
    path: str
    rule: str
    contains: str  # a finding is allowed only when its match holds this text, so a new secret beside it is not
    why: str


# Known fixtures that look like secrets and are not. Keep it small; every entry must still match.
ALLOWLIST: list[Allowed] = [
    Allowed(
        "shared/testing/fake_telegram.py",
        "generic-secret",
        "TEST-fake-telegram-token",
        "the default token of the in-process fake Bot API server; no Telegram ever sees it",
    ),
    Allowed(
        "shared/testing/infra.py",
        "url-credentials",
        "guest:guest@{RABBIT_HOST}",
        "RabbitMQ's development default account on the test broker, RABBIT_HOST defaults to 127.0.0.1",
    ),
    Allowed(
        "tests/test_core.py",
        "url-credentials",
        ":Str0ng@",
        "a made-up production DSN (hosts db/mq do not exist) that the settings validator must accept",
    ),
    Allowed(
        "tests/test_core.py",
        "url-credentials",
        ":Strong-1@",
        "a made-up production broker URL (host mq does not exist) for the settings validator",
    ),
    Allowed(
        "tests/test_tcp_proxy.py",
        "url-credentials",
        "guest:secret@",
        "a URL the TCP proxy rewrites: the test checks that credentials survive, nothing connects with them",
    ),
]


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def _credentials_are_harmless(match: re.Match[str]) -> bool:
    user, password, host = match["user"], match["password"], match["host"].lower()
    if PLACEHOLDER.match(password) or PLACEHOLDER.match(user):
        return True
    return (user, password) == ("guest", "guest") and host in LOOPBACK


def _generic_is_secret(match: re.Match[str]) -> bool:
    value = match["value"] or match["bare"]
    if PLACEHOLDER.match(value) or value.startswith(("/", "$", "{{", "os.environ")) or "://" in value:
        return False  # a placeholder, a file path, a template, a URL (its credentials have their own rule)
    has_digit = any(c.isdigit() for c in value)
    has_letter = any(c.isalpha() for c in value)
    return has_digit and has_letter and entropy(value) >= GENERIC_MIN_ENTROPY


def scan_text(path: str, text: str) -> list[Finding]:
    findings: list[Finding] = []
    for rule, pattern in RULES.items():
        for match in pattern.finditer(text):
            if rule == "url-credentials" and _credentials_are_harmless(match):
                continue
            if rule == "generic-secret" and not _generic_is_secret(match):
                continue
            findings.append(Finding(path, text.count("\n", 0, match.start()) + 1, rule, match.group(0)))
    return findings


def read_text(path: Path) -> str | None:
    """The file's text, or None for a binary (a NUL byte, or not UTF-8) or a tracked file deleted on disk."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return None
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def tracked_files(root: Path) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=root, check=True, capture_output=True).stdout
    return [p for p in out.decode().split("\0") if p]


def scan_repository(root: Path) -> list[Finding]:
    findings: list[Finding] = []
    for rel in tracked_files(root):
        text = read_text(root / rel)
        if text is not None:
            findings.extend(scan_text(rel, text))
    return findings


def allowed_by(finding: Finding) -> Allowed | None:
    return next(
        (a for a in ALLOWLIST if (a.path, a.rule) == (finding.path, finding.rule) and a.contains in finding.text),
        None,
    )


@pytest.fixture(scope="module")
def repo_findings() -> list[Finding]:
    return scan_repository(REPO)


def test_no_tracked_file_holds_a_secret(repo_findings: list[Finding]) -> None:
    leaks = [str(f) for f in repo_findings if allowed_by(f) is None]
    assert leaks == [], "secrets in tracked files: remove them, or allowlist a fixture with why\n" + "\n".join(leaks)


def test_this_file_flags_nothing_in_itself() -> None:
    """Its fixtures are built at run time: the file stays clean before it is even tracked."""
    assert scan_text("tests/test_no_secrets.py", Path(__file__).read_text()) == []


def test_every_allowlist_entry_still_matches_and_says_why(repo_findings: list[Finding]) -> None:
    used = {allowed_by(f) for f in repo_findings} - {None}
    assert [a for a in ALLOWLIST if a not in used] == []
    assert all(len(a.why) > 20 for a in ALLOWLIST)


# Fake but well-formed secrets, one per rule, built at run time from a seeded generator so that this
# file holds no literal its own rules flag, and every run plants the same values.
def _random(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


_ALNUM = string.ascii_letters + string.digits
_URLSAFE = _ALNUM + "-_"


def _b64url(data: str) -> str:
    return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")


def _planted(rule: str, rng: random.Random) -> str:
    b64 = _ALNUM + "+/"
    if rule == "private-key":
        body = "\n".join(_random(rng, b64, 64) for _ in range(5))
        kind = "RSA PRIVATE KEY"
        return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n"
    samples = {
        "aws-access-key-id": lambda: "AKIA" + _random(rng, string.ascii_uppercase + "234567", 16),
        "aws-secret-access-key": lambda: "aws_secret_access_key = " + _random(rng, b64, 40),
        "github-token": lambda: "ghp" + "_" + _random(rng, _ALNUM, 36),
        "gitlab-token": lambda: "glpat" + "-" + _random(rng, _URLSAFE, 20),
        "slack-token": lambda: "xoxb" + "-" + _random(rng, string.digits, 12) + "-" + _random(rng, _ALNUM, 24),
        "slack-webhook": lambda: "https://hooks.slack.com/services/T" + _random(rng, string.ascii_uppercase, 30),
        "telegram-bot-token": lambda: f"bot = '{rng.randrange(10**8, 10**9)}:AA{_random(rng, _URLSAFE, 33)}'",
        "google-api-key": lambda: "AIza" + _random(rng, _URLSAFE, 35),
        "stripe-key": lambda: "sk" + "_live_" + _random(rng, _ALNUM, 24),
        "jwt": lambda: ".".join(
            [_b64url('{"alg":"RS256","typ":"JWT"}'), _b64url('{"sub":"42","role":"admin"}'), _random(rng, _URLSAFE, 43)]
        ),
        "url-credentials": lambda: f"DATABASE_URL = postgresql://app:{_random(rng, _ALNUM, 20)}@db.internal:5432/app",
        "generic-secret": lambda: f'client = Client(api_key="{_random(rng, _ALNUM, 32)}")',
    }
    return samples[rule]() + "\n"


@pytest.mark.parametrize("rule", list(RULES))
def test_a_planted_secret_is_flagged_by_its_rule(rule: str, tmp_path: Path) -> None:
    planted = tmp_path / "config.py"
    planted.write_text("import os\n\n" + _planted(rule, random.Random(rule)))
    findings = scan_text("config.py", read_text(planted) or "")
    assert rule in {f.rule for f in findings}, findings
    assert all(f.line == 3 for f in findings if f.rule == rule)


@pytest.mark.parametrize(
    "line",
    [
        "WEBHOOK_SECRET=a8Kd93jfLq0Zx7Vb2Nm4",  # an env file
        "  client_secret: 9fJ2kLq8ZxV0bN3mA7sD",  # YAML
        "export REDIS_PASSWORD=Qw3rTy7uIo9pAs1dFg",  # shell
        "amqp:" + "//guest:guest@mq.example.com:5672/",  # the default account, but not on loopback
    ],
)
def test_secrets_in_config_formats_are_flagged(line: str) -> None:
    assert scan_text("settings", line + "\n") != []


def test_a_clean_file_passes(tmp_path: Path) -> None:
    clean = tmp_path / "settings.py"
    clean.write_text(
        "\n".join(
            [
                'TOKEN_PATH = "/api/v1/auth/token"',
                'password = os.environ["DB_PASSWORD"]',
                'secret_file = "/run/secrets/telegram_bot_token"',
                'jwt_private_key: str = ""',
                'refresh_token = "not-a-secret-at-all"',  # words, no digit
                'WEBHOOK_SECRET = "${WEBHOOK_SECRET}"',
                'RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"',  # the documented development default
                'DATABASE_URL = "postgresql://repitbot:${DB_PASSWORD}@127.0.0.1/repitbot"',
                'header = "-----BEGIN PRIVATE KEY-----"  # a marker, not a key',
                "REDIS_PASSWORD=",
                "lesson_id = 123456789  # digits alone are no token",
            ]
        )
        + "\n"
    )
    assert scan_text("settings.py", read_text(clean) or "") == []


def test_binary_and_deleted_files_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "image.png").write_bytes(
        b"\x89PNG\r\n\x1a\n\0\0" + _planted("aws-access-key-id", random.Random(1)).encode()
    )
    assert read_text(tmp_path / "image.png") is None
    assert read_text(tmp_path / "gone.txt") is None


def test_the_repository_scan_reads_what_git_tracks(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "app.py").write_text(_planted("github-token", random.Random(2)))
    (tmp_path / "untracked.py").write_text(_planted("stripe-key", random.Random(3)))
    git("add", "app.py")
    assert [(f.path, f.rule) for f in scan_repository(tmp_path)] == [("app.py", "github-token")]
