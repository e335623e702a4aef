"""Target (c): whether the API gateway is there to measure, and its settings for the run.

The gateway counts as there once ``services/api_gateway/main.py`` exists *and* it has
its line in ``shared/fleet.py`` (the fleet then starts it). For the run its rate
limits are raised through its own settings (``API_GATEWAY_<SETTING>`` overrides, the
runner's per-service mechanism) so no request is limited, while the limiter still
does its Redis round trip on every request. ``BENCH_GATEWAY_SETTINGS="NAME=value,..."``
adds or replaces settings by hand.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping

from pydantic.fields import FieldInfo

from shared.config import ServiceSettings
from shared.fleet import ServiceSpec, by_name
from shared.runner.layout import REPO_ROOT

GATEWAY_NAME = "api-gateway"
GATEWAY_PACKAGE = "api_gateway"
UNLIMITED = 1_000_000_000  # requests per window: far beyond what one machine can send in a run
_NOT_A_COUNT = ("window", "second", "period", "ttl", "interval", "timeout")


def gateway_spec() -> tuple[ServiceSpec | None, str | None]:
    """The gateway's FLEET entry, or None with the reason it cannot be measured yet."""
    main = REPO_ROOT / "services" / GATEWAY_PACKAGE / "main.py"
    try:
        spec = by_name(GATEWAY_NAME)
    except KeyError:
        spec = None
    if not main.exists():
        return None, "the API gateway is not in the tree yet (no services/api_gateway/main.py)"
    if spec is None:
        return None, "services/api_gateway exists but has no line in shared/fleet.py yet, so no fleet starts it"
    return spec, None


def gateway_overrides(spec: ServiceSpec, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Per-service overrides (``API_GATEWAY_...``) that lift the gateway's rate limits for the run."""
    chosen = {name.upper(): str(value) for name, value in _raised_rate_limits(spec).items()}
    chosen.update(parse_settings_list(environ.get("BENCH_GATEWAY_SETTINGS", "")))
    return {f"{spec.env_prefix}{name}": value for name, value in chosen.items()}


def parse_settings_list(text: str) -> dict[str, str]:
    """``"NAME=value,OTHER=value"`` → ``{"NAME": "value", "OTHER": "value"}``."""
    settings: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = entry.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"BENCH_GATEWAY_SETTINGS must look like 'NAME=value,NAME=value', not {entry!r}")
        settings[name.strip().upper()] = value.strip()
    return settings


def _raised_rate_limits(spec: ServiceSpec) -> dict[str, int]:
    """Every request-count field of the gateway's settings whose name says rate limit, at its ceiling."""
    settings_class = _settings_class(spec)
    if settings_class is None:
        return {}
    return {
        name: _ceiling(field)
        for name, field in settings_class.model_fields.items()
        if "rate_limit" in name and field.annotation is int and not any(word in name for word in _NOT_A_COUNT)
    }


def _settings_class(spec: ServiceSpec) -> type[ServiceSettings] | None:
    try:
        module = importlib.import_module(f"{spec.module}.settings")
    except ImportError:
        return None
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, ServiceSettings) and value.__module__ == module.__name__:
            return value
    return None


def _ceiling(field: FieldInfo) -> int:
    """UNLIMITED, or the field's own upper bound when it declares a lower one."""
    bound = UNLIMITED
    for constraint in field.metadata:
        if getattr(constraint, "le", None) is not None:
            bound = min(bound, int(constraint.le))
        if getattr(constraint, "lt", None) is not None:
            bound = min(bound, int(constraint.lt) - 1)
    return bound
