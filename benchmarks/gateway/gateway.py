"""Target (c): whether the API gateway is there to measure, and its settings for the run.

The gateway counts as there once ``services/api_gateway/main.py`` exists *and* it has
its line in ``shared/fleet.py`` (the fleet then starts it). For the run its rate
limits are raised through its own settings (``API_GATEWAY_<SETTING>`` overrides, the
runner's per-service mechanism) so no request is limited, while the limiter still
does its Redis round trip on every request. ``BENCH_GATEWAY_SETTINGS="NAME=value,..."``
(``BenchSettings.gateway_settings``) adds or replaces settings by hand. Should a limit's name change, the run sees 429s
and reports the gateway's figures as not comparable, rather than quoting them.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.fleet import ServiceSpec, by_name
from shared.runner.layout import REPO_ROOT

GATEWAY_NAME = "api-gateway"
GATEWAY_PACKAGE = "api_gateway"
# services/api_gateway/settings.py: requests per window for a person, and for a service account
RAISED_LIMITS = {
    "RATE_LIMIT_REQUESTS": "1000000000",
    "SERVICE_RATE_LIMIT_REQUESTS": "1000000000",
}


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


def gateway_overrides(spec: ServiceSpec, extra: Mapping[str, str]) -> dict[str, str]:
    """Per-service overrides (``API_GATEWAY_...``): the raised rate limits, then ``extra`` settings."""
    chosen = RAISED_LIMITS | dict(extra)
    return {f"{spec.env_prefix}{name}": value for name, value in chosen.items()}
