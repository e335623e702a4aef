"""Where a fleet lives: the one difference between a developer's fleet and the test fleet.

Both run the same services the same way; a layout only names the ports,
databases, vhost, Redis database, ``ENV`` value and the folder holding the
supervisord config, socket and logs. Nothing else in the runner knows which
fleet it is working on.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from shared.fleet import FLEET, TEST_PORT_OFFSET, ServiceSpec, database_name

REPO_ROOT = Path(__file__).resolve().parents[2]
VAR_DIR = REPO_ROOT / "var"
DEV_SECRETS_DIR = VAR_DIR / "dev-secrets"
BOT_PORT = 8009

DEV_VHOST = "repitbot"
DEV_REDIS_DB = 0
TEST_REDIS_DB = 15
TEST_DATABASE_POOL = (3, 4)

# AF_UNIX socket paths are limited to 108 bytes; a deep checkout falls back to the temp folder.
_MAX_SOCKET_PATH = 100


@dataclass(frozen=True)
class FleetLayout:
    name: str  # "dev" or "test-<run id>", shown in messages and in supervisord's identifier
    env: str  # the services' ENV
    port_offset: int
    test_databases: bool
    vhost: str
    redis_db: int
    state_dir: Path
    secrets_dir: Path = DEV_SECRETS_DIR
    specs: tuple[ServiceSpec, ...] = field(default=FLEET)
    # (pool size, overflow) of each service's database pool; None keeps the services' own default
    database_pool: tuple[int, int] | None = None

    @classmethod
    def development(cls) -> FleetLayout:
        return cls(
            name="dev",
            env="development",
            port_offset=0,
            test_databases=False,
            vhost=DEV_VHOST,
            redis_db=DEV_REDIS_DB,
            state_dir=VAR_DIR,
        )

    @classmethod
    def for_test_run(cls, run_id: str) -> FleetLayout:
        return cls(
            name=f"test-{run_id}",
            env="test",
            port_offset=TEST_PORT_OFFSET,
            test_databases=True,
            vhost=f"repitbot_test_{run_id}",
            redis_db=TEST_REDIS_DB,
            state_dir=VAR_DIR / f"test-fleet-{run_id}",
            # The suite shares one PostgreSQL (max_connections 100 by default) with the fleet's eight
            # pools, their relays' and LISTEN connections, second service processes some tests start and the tests'
            # own connections: at the default 5 + 5 a full run peaked at 86. 3 + 4 leaves headroom.
            database_pool=TEST_DATABASE_POOL,
        )

    # --- per service -------------------------------------------------------------------------

    def port(self, spec: ServiceSpec) -> int:
        return spec.port + self.port_offset

    def base_url(self, spec: ServiceSpec) -> str:
        return f"http://127.0.0.1:{self.port(spec)}"

    @property
    def bot_port(self) -> int:
        """The bot's /health and /metrics (it serves no API)."""
        return BOT_PORT + self.port_offset

    @property
    def bot_log_path(self) -> Path:
        return self.log_dir / "telegram-bot.log"

    def database_name(self, spec: ServiceSpec) -> str:
        return database_name(spec, test=self.test_databases)

    def log_path(self, spec: ServiceSpec) -> Path:
        return self.log_dir / f"{spec.name}.log"

    @property
    def database_specs(self) -> tuple[ServiceSpec, ...]:
        return tuple(spec for spec in self.specs if spec.has_database)

    # --- supervisord's files -----------------------------------------------------------------

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "log"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def supervisor_config(self) -> Path:
        return self.state_dir / "supervisord.conf"

    @property
    def supervisor_pidfile(self) -> Path:
        return self.run_dir / "supervisord.pid"

    @property
    def supervisor_log(self) -> Path:
        return self.log_dir / "supervisord.log"

    @property
    def supervisor_socket(self) -> Path:
        socket = self.run_dir / "supervisord.sock"
        if len(str(socket)) <= _MAX_SOCKET_PATH:
            return socket
        digest = hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"repitbot-supervisord-{digest}.sock"
