"""The fleet: one line per service. The runner, the test harness, the compose
consistency test and the migration command all read this table.

Adding a service: its folder under ``services/`` plus one line here (and, once
the gateway exists, one line in its routing and one entry in the compose file);
``tests/test_fleet_consistency.py`` fails while any of those is missing.
"""

from __future__ import annotations

from dataclasses import dataclass

TEST_PORT_OFFSET = 10_000  # the test fleet runs on 18000-18008, beside a developer's fleet


@dataclass(frozen=True)
class ServiceSpec:
    name: str  # compose service name and log/metric label, e.g. "user-service"
    package: str  # python package under services/, e.g. "user_service"
    port: int
    has_database: bool = True

    @property
    def module(self) -> str:
        return f"services.{self.package}"

    @property
    def app_path(self) -> str:
        return f"services.{self.package}.main:app"

    @property
    def database_name(self) -> str:
        return f"repitbot_{self.package.removesuffix('_service')}"

    @property
    def database_role(self) -> str:
        return self.database_name

    @property
    def env_prefix(self) -> str:
        """Prefix of this service's per-service variables in a shared .env, e.g. USER_SERVICE_."""
        return self.package.upper() + "_"


FLEET: tuple[ServiceSpec, ...] = (
    ServiceSpec("api-gateway", "api_gateway", 8000, has_database=False),
    ServiceSpec("user-service", "user_service", 8001),
    ServiceSpec("lesson-service", "lesson_service", 8002),
    ServiceSpec("homework-service", "homework_service", 8003),
    ServiceSpec("payment-service", "payment_service", 8004),
    ServiceSpec("material-service", "material_service", 8005),
    ServiceSpec("analytics-service", "analytics_service", 8007),
    ServiceSpec("notification-service", "notification_service", 8006),
    ServiceSpec("student-service", "student_service", 8008),
)


# The Telegram bot lives under services/ too but is not one of the API services: nothing routes to it,
# it owns no database, and the runner starts it only with a token (runner.environment.bot_environment).
BOT_PACKAGE = "telegram_bot"


def by_name(name: str) -> ServiceSpec:
    for spec in FLEET:
        if spec.name == name or spec.package == name:
            return spec
    raise KeyError(f"unknown service {name!r}; known: {', '.join(s.name for s in FLEET)}")


def database_name(spec: ServiceSpec, *, test: bool = False) -> str:
    return spec.database_name.replace("repitbot_", "repitbot_test_", 1) if test else spec.database_name


def local_database_url(spec: ServiceSpec, *, test: bool = False, host: str = "127.0.0.1", port: int = 5432) -> str:
    """The DSN the local runner gives a service: its own role on its own database."""
    return f"postgresql://{spec.database_role}@{host}:{port}/{database_name(spec, test=test)}"
