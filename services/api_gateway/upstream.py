"""The one HTTP client the gateway talks to its upstreams with: a shared aiohttp session.

aiohttp rather than httpx: on this machine a minimal proxy on httpx reached 300–580
requests/s (its pool bookkeeping), on aiohttp ~2,100 (docs/decisions/0008-api-gateway-hot-path.md).

The session is a proxy's, not a browser's: no cookie jar (one client's cookies must
never reach another's request), no decompression (bodies pass through as they
are), no headers of its own (no User-Agent, Accept or Accept-Encoding the client
did not send), no redirects followed, and keep-alive shorter than the upstream
uvicorn's 5 s so a pooled connection is never reused just as the upstream closes it.
"""

from __future__ import annotations

import aiohttp
from aiohttp.client_middlewares import ClientHandlerType

from services.api_gateway.settings import GatewaySettings


class UpstreamConnectionLost(aiohttp.ClientConnectionError):
    """The connection was made but broke (reset, closed) before the upstream's answer began."""


async def fail_instead_of_retrying(
    request: aiohttp.ClientRequest, handler: ClientHandlerType
) -> aiohttp.ClientResponse:
    """aiohttp retries an idempotent request once, on the same host, when its connection breaks.
    The gateway retries on *another* instance instead, and a breaker probe must be exactly one
    connection: a broken connection is re-raised as a type aiohttp does not retry."""
    try:
        return await handler(request)
    except aiohttp.ClientConnectorError:
        raise  # the connection was never made; aiohttp does not retry these anyway
    except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
        raise UpstreamConnectionLost(str(exc) or type(exc).__name__) from exc


def new_upstream_session(settings: GatewaySettings) -> aiohttp.ClientSession:
    """Create it inside the running event loop (at start-up) and close it at shutdown."""
    connector = aiohttp.TCPConnector(
        limit=settings.upstream_max_connections,
        limit_per_host=0,
        keepalive_timeout=settings.upstream_keepalive_seconds,
        use_dns_cache=False,  # instances are addresses already; discovery re-resolves the names
    )
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        timeout=aiohttp.ClientTimeout(sock_connect=settings.upstream_connect_timeout_seconds),
        middlewares=(fail_instead_of_retrying,),
        trust_env=False,
    )
