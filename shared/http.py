"""Service-to-service HTTP: the rare call that must be answered now (DESIGN.md §1).

    response = await request.app.state.http.get(f"{settings.user_service_url}/internal/links/{p}/{s}")

One :class:`ServiceClient` per process, over one pooled ``httpx.AsyncClient``:

- every call has a timeout (the client default or ``timeout=`` per call);
- idempotent methods (GET, HEAD, PUT, DELETE, OPTIONS) are retried, a bounded
  number of times with jittered exponential backoff, after a connection error,
  a timeout or a 502/503/504; a POST is retried only when it carries an
  ``Idempotency-Key`` (otherwise it may have had its effect);
- one :class:`~shared.breaker.CircuitBreaker` per upstream origin: while it is
  open a call fails at once with 503, no connection attempted;
- ``X-Correlation-ID`` is passed on, and the call carries this service's own
  token (client credentials at user-service, cached until shortly before it
  expires, fetched again once if the upstream answers 401);
- an upstream that fails (no answer, or 5xx) becomes
  :class:`~shared.errors.ServiceUnavailable` — 503 with ``Retry-After`` for our
  client. 4xx answers are returned for the caller to interpret.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from shared import context
from shared.breaker import CircuitBreaker
from shared.clock import SYSTEM_CLOCK, Clock
from shared.config import ServiceSettings
from shared.errors import ServiceUnavailable

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRYABLE_STATUSES = frozenset({502, 503, 504})
IDEMPOTENCY_HEADER = "Idempotency-Key"
TOKEN_PATH = "/api/v1/auth/token"
DEFAULT_BREAKER_OPTIONS: Mapping[str, Any] = {
    "failure_threshold": 5,
    "failure_rate": 0.5,
    "window": 30.0,
    "min_calls": 20,
    "reset_timeout": 15.0,
    "half_open_max_calls": 1,
}


@dataclass(frozen=True, slots=True)
class _ServiceToken:
    value: str
    refresh_at: float  # on the clock's monotonic scale


class ServiceClient:
    def __init__(
        self,
        settings: ServiceSettings,
        *,
        clock: Clock = SYSTEM_CLOCK,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 5.0,
        retries: int = 2,
        backoff: float = 0.1,
        breaker_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.retries = retries
        self.backoff = backoff
        self._breaker_options = {**DEFAULT_BREAKER_OPTIONS, **(breaker_options or {})}
        self._breakers: dict[str, CircuitBreaker] = {}
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=timeout,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            follow_redirects=False,
        )
        self._token: _ServiceToken | None = None
        self._token_lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- calls ----------------------------------------------------------------------

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", url, **kwargs)

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - httpx applies it to each attempt
        authenticate: bool = True,
        files: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """Send one call (with retries where safe); a 4xx/2xx/3xx answer is returned,
        anything else raises ServiceUnavailable. ``authenticate=False`` sends the caller's own
        ``Authorization`` header (e.g. the bot acting for a user) instead of this service's token."""
        method = method.upper()
        call_headers = {**(headers or {}), context.CORRELATION_HEADER: context.current_correlation_id()}
        token = await self._service_token() if authenticate else None
        if token is not None:
            call_headers["Authorization"] = f"Bearer {token}"
        options: dict[str, Any] = {"json": json, "params": params, "headers": call_headers}
        if files is not None or data is not None:  # multipart (bytes only, so a retry can send them again)
            options.update(files=files, data=data)
        if timeout is not None:
            options["timeout"] = timeout

        response = await self._send(method, url, options)
        if token is not None and response.status_code == 401:
            # our token may have been rotated out or revoked: fetch a new one, try once more
            self._forget_token(token)
            call_headers["Authorization"] = f"Bearer {await self._service_token()}"
            response = await self._send(method, url, options)
        return response

    def breaker_for(self, url: str) -> CircuitBreaker:
        origin = _origin(url)
        breaker = self._breakers.get(origin)
        if breaker is None:
            breaker = self._breakers[origin] = CircuitBreaker(origin, clock=self.clock, **self._breaker_options)
        return breaker

    @property
    def breakers(self) -> Mapping[str, CircuitBreaker]:
        return self._breakers

    # --- internals ----------------------------------------------------------------------

    async def _send(self, method: str, url: str, options: dict[str, Any]) -> httpx.Response:
        breaker = self.breaker_for(url)
        # a POST carrying an Idempotency-Key has its effect once however often it is sent
        retry_safe = method in IDEMPOTENT_METHODS or IDEMPOTENCY_HEADER in options["headers"]
        attempts = 1 + (self.retries if retry_safe else 0)
        for attempt in range(1, attempts + 1):
            if not breaker.allow():
                raise _unavailable(url, breaker.retry_after(), "circuit open")
            try:
                response = await self._client.request(method, url, **options)
            except httpx.TransportError as exc:  # connection refused/reset, timeouts, protocol errors
                breaker.record_failure()
                failure, retry_after = type(exc).__name__, None
            except BaseException:  # cancelled: no verdict on the upstream
                breaker.release()
                raise
            else:
                if response.status_code < 500:
                    breaker.record_success()
                    return response
                breaker.record_failure()
                failure, retry_after = f"HTTP {response.status_code}", _retry_after_header(response)
                if response.status_code not in RETRYABLE_STATUSES:
                    break
            if attempt < attempts:
                log.info("retrying %s %s after %s (attempt %d)", method, url, failure, attempt)
                await asyncio.sleep(random.uniform(0, self.backoff * 2 ** (attempt - 1)))
        raise _unavailable(url, retry_after or breaker.retry_after(), failure)

    async def _service_token(self) -> str:
        cached = self._token
        if cached is not None and self.clock.monotonic() < cached.refresh_at:
            return cached.value
        async with self._token_lock:  # concurrent callers share one token request
            cached = self._token
            if cached is None or self.clock.monotonic() >= cached.refresh_at:
                cached = self._token = await self._fetch_service_token()
            return cached.value

    async def _fetch_service_token(self) -> _ServiceToken:
        client_id, secret = self.settings.service_client_id, self.settings.service_client_secret
        if not client_id or not secret:
            raise RuntimeError("SERVICE_CLIENT_ID and SERVICE_CLIENT_SECRET are needed for calls to other services")
        url = self.settings.user_service_url.rstrip("/") + TOKEN_PATH
        response = await self.request(
            "POST",
            url,
            json={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
            authenticate=False,
        )
        if response.status_code != 200:
            log.error("user-service refused our client credentials: HTTP %d", response.status_code)
            raise ServiceUnavailable("Could not authenticate to an upstream service", retry_after=30)
        body = response.json()
        expires_in = float(body["expires_in"])
        # refresh a little before expiry so a token never expires on its way
        refresh_margin = min(60.0, expires_in / 10)
        return _ServiceToken(body["access_token"], self.clock.monotonic() + expires_in - refresh_margin)

    def _forget_token(self, rejected: str) -> None:
        if self._token is not None and self._token.value == rejected:
            self._token = None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _retry_after_header(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


def _unavailable(url: str, retry_after: float, reason: str) -> ServiceUnavailable:
    log.warning("upstream %s unavailable: %s", _origin(url), reason, extra={"upstream": _origin(url)})
    # the client learns that something upstream is down, not our internal topology
    return ServiceUnavailable(
        "An upstream service is unavailable, try again later", retry_after=max(1, math.ceil(retry_after))
    )
