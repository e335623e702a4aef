"""The hot path: ``/api/v1/...`` and ``/.well-known/jwks.json`` as a plain ASGI handler.

For each request, in this order:

1. the route (``routing.py``); anything else under ``/api/`` is 404;
2. the caller: a verified access token (cached per token until it expires), or none
   on a public route; a failed sign-in still counts against the client's address;
3. the rate limit: one Lua call in Redis (``limiter.py``);
4. the body limit of the route (413), on the declared length and again while streaming;
5. an instance (``discovery.py``) whose breaker admits the call, and the exchange:
   method, path, query, headers and body passed through, ``Authorization`` unchanged,
   hop-by-hop headers dropped, ``X-Forwarded-For/Proto/Host`` and ``X-Correlation-ID``
   set by the gateway, both bodies streamed chunk by chunk (never read whole).
   An idempotent request whose connection fails is retried once on another instance.

The request-context middleware around this handler gives each request its
correlation ID, its metrics (labelled with the route prefix) and its access-log line,
which names the upstream instance (:data:`CURRENT_UPSTREAM`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections.abc import AsyncIterator, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp
from prometheus_client import Counter, Histogram
from starlette.requests import Request
from starlette.types import Receive, Scope, Send
from yarl import URL

from services.api_gateway.discovery import Instance
from services.api_gateway.limiter import RateDecision
from services.api_gateway.metrics import UPSTREAM_LATENCY, UPSTREAM_REJECTED, UPSTREAM_REQUESTS, UPSTREAM_RETRIES
from services.api_gateway.routing import Route
from services.api_gateway.upstream import UpstreamConnectionLost
from shared import context
from shared.auth.deps import bearer_token
from shared.auth.jwt import Claims
from shared.errors import (
    ApiError,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    error_response,
)
from shared.http import IDEMPOTENT_METHODS

if TYPE_CHECKING:
    from services.api_gateway.gateway import Gateway

log = logging.getLogger(__name__)

# the instance serving this request, for its access-log line
CURRENT_UPSTREAM: ContextVar[str | None] = ContextVar("upstream", default=None)

# RFC 9110 §7.6.1; besides these, whatever a Connection header names
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)
# The gateway sets these itself; a client's values are never passed on (uvicorn has answered Expect).
REQUEST_HEADERS_SET_HERE = frozenset(
    {
        b"host",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"forwarded",
        b"x-correlation-id",
        b"expect",
    }
)
# uvicorn adds its own Date and Server, the request-context middleware the correlation ID.
RESPONSE_HEADERS_SET_HERE = frozenset({b"date", b"server", b"x-correlation-id"})
FAILURE_STATUSES = frozenset({502, 503, 504})  # an upstream answering these is unwell; 4xx and other 5xx are answers
NOT_DEPLOYED_RETRY_AFTER = 60


class _ClientGone(Exception):
    pass


class _BodyTooLarge(Exception):
    pass


class RequestBody:
    """The client's body, passed on chunk by chunk and held to the route's limit."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self._receive = receive
        self.limit = limit
        self.received = 0
        self.started = False
        self.finished = False
        self.too_large = False
        self.client_gone = False

    async def chunks(self) -> AsyncIterator[bytes]:
        self.started = True
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.client_gone = True
                raise _ClientGone
            chunk = message.get("body", b"")
            self.received += len(chunk)
            if self.received > self.limit:
                self.too_large = True
                raise _BodyTooLarge
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                self.finished = True
                return


@dataclass(slots=True)
class ProxiedRequest:
    method: str
    target: str  # the path and query as the client sent them (still percent-encoded)
    headers: list[tuple[str, str]]  # for the upstream, Host excepted
    declared_length: int | None
    has_body: bool
    client_address: str
    response_started: bool = False

    @property
    def idempotent(self) -> bool:
        return self.method in IDEMPOTENT_METHODS


def read_request(scope: Scope) -> ProxiedRequest:
    """What to send upstream: the client's headers minus hop-by-hop ones, plus the gateway's own."""
    headers: list[tuple[str, str]] = []
    declared_length: int | None = None
    chunked = False
    host: bytes | None = None
    connection_tokens: set[bytes] = set()
    for name, value in scope["headers"]:
        if name in HOP_BY_HOP or name in REQUEST_HEADERS_SET_HERE:
            if name == b"transfer-encoding":
                chunked = True
            elif name == b"host":
                host = value
            elif name == b"connection":
                connection_tokens.update(token.strip().lower() for token in value.split(b","))
            continue
        if name == b"content-length":
            declared_length = int(value) if value.isdigit() else None
        headers.append((name.decode("latin-1"), value.decode("latin-1")))
    if connection_tokens - HOP_BY_HOP:  # headers the client declared hop-by-hop for this connection
        dropped = {token.decode("latin-1") for token in connection_tokens}
        headers = [(name, value) for name, value in headers if name not in dropped]
    client = scope.get("client")
    client_address = client[0] if client else "unknown"
    headers.append(("X-Forwarded-For", client_address))
    headers.append(("X-Forwarded-Proto", scope.get("scheme", "http")))
    if host is not None:
        headers.append(("X-Forwarded-Host", host.decode("latin-1")))
    headers.append(("X-Correlation-ID", context.current_correlation_id()))
    raw_path = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string", b"")
    target = (raw_path + b"?" + query if query else raw_path).decode("latin-1")
    return ProxiedRequest(
        method=scope["method"],
        target=target,
        headers=headers,
        declared_length=declared_length,
        has_body=chunked or bool(declared_length),
        client_address=client_address,
    )


def response_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = []
    connection_tokens: set[bytes] = set()
    for name, value in raw:
        lowered = name.lower()
        if lowered in HOP_BY_HOP or lowered in RESPONSE_HEADERS_SET_HERE:
            if lowered == b"connection":
                connection_tokens.update(token.strip().lower() for token in value.split(b","))
            continue
        headers.append((lowered, value))
    if connection_tokens - HOP_BY_HOP:
        headers = [(name, value) for name, value in headers if name not in connection_tokens]
    return headers


@dataclass(frozen=True, slots=True)
class _Failure:
    """Why an exchange with an instance produced no answer."""

    outcome: str  # the metrics label
    retryable: bool  # an idempotent request may go to another instance

    def error(self, retry_after: float) -> ApiError:
        if self.outcome == "connect_error":
            return ServiceUnavailable(
                "The service is unavailable, try again later", retry_after=max(1, math.ceil(retry_after))
            )
        if self.outcome == "timeout":
            return ApiError("The service did not answer in time", code="upstream_timeout", status_code=504)
        return ApiError("The service failed to answer", code="bad_gateway", status_code=502)


CONNECT_ERROR = _Failure("connect_error", retryable=True)
CONNECTION_LOST = _Failure("connection_lost", retryable=True)
TIMEOUT = _Failure("timeout", retryable=False)  # it may have had its effect, and the client has waited long enough
BAD_RESPONSE = _Failure("bad_response", retryable=False)
CLIENT_SIDE = _Failure("client_side", retryable=False)  # the client left, or sent too much: no answer owed
INTERNAL_ERROR = ApiError("Internal error", code="internal_error", status_code=500)


def _classify(exc: BaseException) -> _Failure:
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        return CONNECT_ERROR
    if isinstance(exc, UpstreamConnectionLost):
        return CONNECTION_LOST
    if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
        return TIMEOUT
    return BAD_RESPONSE


class ProxyHandler:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.routing = gateway.routing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routing.match(scope["path"])
        if route is None or _has_dot_segment(scope["path"]):
            await _answer_error(scope, receive, send, NotFound("No such route"))
            return
        scope["route"] = route  # the request-context middleware labels metrics with route.path
        request = read_request(scope)
        try:
            claims = await self._authenticate(scope)
        except ApiError as error:
            decision = None
            if error.status_code == 401:  # a failed sign-in counts too: tokens cannot be sprayed for free
                decision = await self._count(route, None, request)
                if not decision.allowed:
                    error = self._limited(decision)
            await _answer_error(scope, receive, send, error, decision)
            return
        decision = await self._count(route, claims, request)
        try:
            if not decision.allowed:
                raise self._limited(decision)
            if request.declared_length is not None and request.declared_length > route.max_body_bytes:
                raise _too_large(route)
            await self._forward(route, request, receive, send, decision)
        except ApiError as error:
            await _answer_error(scope, receive, send, error, decision)
        except Exception:  # a bug of ours: the one error shape for the client, the trace for the log
            log.exception("the proxy failed")
            if not request.response_started:
                await _answer_error(scope, receive, send, INTERNAL_ERROR, decision)

    # --- who is calling, and may they --------------------------------------------------------

    async def _authenticate(self, scope: Scope) -> Claims | None:
        """The verified caller; None when anonymous on a public route; 401 otherwise."""
        if self.routing.is_public(scope["path"]):
            # a token here only decides whose rate limit applies (the bot's, say); the service judges it
            try:
                token = bearer_token(Request(scope))
                claims = await self.gateway.verifier.verify(token) if token is not None else None
            except ApiError:
                return None
        else:
            token = bearer_token(Request(scope))
            if token is None:
                raise Unauthorized()
            claims = await self.gateway.verifier.verify(token)
        if claims is not None:
            context.user_id.set(claims.sub)
        return claims

    async def _count(self, route: Route, claims: Claims | None, request: ProxiedRequest) -> RateDecision:
        """One request against its caller's limit: a user's, a service account's, or an address's."""
        if claims is None:
            identity, limit = f"ip:{request.client_address}", route.rate_limit
        elif claims.role == "service":
            identity, limit = f"service:{claims.sub}", route.service_rate_limit
        else:
            identity, limit = f"user:{claims.sub}", route.rate_limit
        return await self.gateway.limiter.hit(f"{route.limit_group}:{identity}", limit)

    def _limited(self, decision: RateDecision) -> TooManyRequests:
        window = self.gateway.limiter.window_seconds
        return TooManyRequests(
            f"Too many requests: at most {decision.limit} in {window} s",
            retry_after=decision.retry_after,
            details={"limit": decision.limit, "window_seconds": window},
        )

    # --- the exchange with an upstream -----------------------------------------------------------

    async def _forward(
        self, route: Route, request: ProxiedRequest, receive: Receive, send: Send, decision: RateDecision
    ) -> None:
        pool = self.gateway.registry.pool(route.service)
        if pool is None:
            UPSTREAM_REJECTED.labels(route.service, "not_deployed").inc()
            raise ServiceUnavailable("This part of the API is not available yet", retry_after=NOT_DEPLOYED_RETRY_AFTER)
        body = RequestBody(receive, route.max_body_bytes) if request.has_body else None
        tried: list[Instance] = []
        failure: _Failure | None = None
        while len(tried) < 2:
            instance = pool.choose(tried)
            if instance is None:
                break
            tried.append(instance)
            failure = await self._exchange(instance, route, request, body, receive, send, decision)
            if failure is None:
                return
            if body is not None and body.too_large:
                raise _too_large(route)
            if body is not None and body.client_gone:
                return  # nobody is waiting for an answer
            if not (request.idempotent and failure.retryable and (body is None or not body.started)):
                break
            UPSTREAM_RETRIES.labels(route.service).inc()
        if failure is not None:
            raise failure.error(self.gateway.settings.health_check_interval_seconds)
        UPSTREAM_REJECTED.labels(route.service, "breaker_open" if pool.instances else "no_instance").inc()
        raise ServiceUnavailable(
            "The service is unavailable, try again later", retry_after=max(1, math.ceil(pool.retry_after()))
        )

    async def _exchange(
        self,
        instance: Instance,
        route: Route,
        request: ProxiedRequest,
        body: RequestBody | None,
        receive: Receive,
        send: Send,
        decision: RateDecision,
    ) -> _Failure | None:
        """One attempt on one instance, already admitted by its breaker; None once the answer is relayed."""
        CURRENT_UPSTREAM.set(instance.address)
        breaker = instance.breaker
        instance.outstanding += 1
        started = time.perf_counter()
        try:
            try:
                response = await self.gateway.session.request(
                    request.method,
                    URL(instance.base_url + request.target, encoded=True),
                    headers=[*request.headers, ("Host", instance.host_header)],
                    data=body.chunks() if body is not None else None,
                    timeout=route.timeout,
                    allow_redirects=False,
                )
            except Exception as exc:
                if body is not None and (body.too_large or body.client_gone):
                    breaker.release()  # the client's doing, not the upstream's
                    return CLIENT_SIDE
                if not isinstance(exc, aiohttp.ClientError | TimeoutError):
                    breaker.release()  # our bug, not the upstream's failure
                    raise
                failure = _classify(exc)
                breaker.record_failure()
                UPSTREAM_REQUESTS.labels(route.service, failure.outcome).inc()
                if failure is CONNECT_ERROR:
                    instance.mark_unhealthy(f"cannot connect: {exc}")
                log.warning("%s %s: %s (%s)", route.service, instance.address, failure.outcome, exc)
                return failure
            except BaseException:  # cancelled: no verdict on the upstream
                breaker.release()
                raise
            latency, answered = _answer_series(route.service)
            latency.observe(time.perf_counter() - started)
            if response.status in FAILURE_STATUSES:
                breaker.record_failure()
                UPSTREAM_REQUESTS.labels(route.service, "error_status").inc()
            else:
                breaker.record_success()
                instance.mark_healthy()
                answered.inc()
            try:
                await self._relay(instance, request, response, body, receive, send, decision)
            finally:
                response.release()
            return None
        finally:
            instance.outstanding -= 1

    async def _relay(
        self,
        instance: Instance,
        request: ProxiedRequest,
        response: aiohttp.ClientResponse,
        body: RequestBody | None,
        receive: Receive,
        send: Send,
        decision: RateDecision,
    ) -> None:
        """The upstream's answer to the client as it arrives, with the rate-limit headers added."""
        headers = response_headers(response.raw_headers)
        headers.extend(decision.headers())
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        request.response_started = True
        watcher: asyncio.Future[None] | None = None
        chunks = 0
        try:
            async for chunk in response.content.iter_any():
                if response.content.at_eof():  # the last chunk (often the only one): no empty message after it
                    await send({"type": "http.response.body", "body": chunk, "more_body": False})
                    return
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                chunks += 1
                if watcher is None:
                    # a long answer: notice a client that leaves (uvicorn's send stays silent about it)
                    if chunks == 2 and (body is None or body.finished):
                        watcher = asyncio.ensure_future(_client_disconnect(receive))
                elif watcher.done():
                    log.info("the client left during the answer from %s", instance.address)
                    return
        except (aiohttp.ClientError, TimeoutError) as exc:
            instance.breaker.record_failure()
            UPSTREAM_REQUESTS.labels(instance.service, "connection_lost").inc()
            # returning unfinished makes uvicorn close the connection: the client sees a cut answer
            log.warning("%s %s broke off its answer: %r", instance.service, instance.address, exc)
            return
        finally:
            if watcher is not None:
                watcher.cancel()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


@functools.cache
def _answer_series(service: str) -> tuple[Histogram, Counter]:
    """A service's latency and answered-request series, labelled once rather than on every request."""
    return UPSTREAM_LATENCY.labels(service), UPSTREAM_REQUESTS.labels(service, "ok")


async def _client_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _too_large(route: Route) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The request body exceeds {route.max_body_bytes} bytes", details={"limit": route.max_body_bytes}
    )


def _has_dot_segment(path: str) -> bool:
    return "/." in path and any(segment in (".", "..") for segment in path.split("/"))


async def _answer_error(
    scope: Scope, receive: Receive, send: Send, error: ApiError, decision: RateDecision | None = None
) -> None:
    headers = dict(error.headers or {})
    if decision is not None:
        headers.update((name.decode(), value.decode()) for name, value in decision.headers())
    response = error_response(error.status_code, error.code, error.message, error.details, headers)
    await response(scope, receive, send)
