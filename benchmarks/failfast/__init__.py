"""The fail-fast benchmark: how long a client waits on a hanging upstream, with and without an open breaker.

``make bench BENCH=failfast`` (``python -m benchmarks.failfast``) starts a bench fleet of
the gateway, user-service and lesson-service, with the gateway reaching lesson-service
through a TCP proxy (``shared/testing/tcp_proxy.TcpProxy``) run by the harness. In one
run, ``GET /api/v1/lessons`` through the gateway, paced:

1. healthy: the proxy forwards (context for the other two);
2. hanging: ``proxy.hang()`` — connections are accepted, nothing comes back. The
   breaker is still closed, so every request waits for the gateway's upstream timeout
   (``UPSTREAM_TIMEOUT_SECONDS``) and gets 504; as they fail, the breaker opens;
3. breaker open: the same requests now get 503 at once, without a connection.

The figure is p95 (3) ÷ p95 (2). docs/performance.md has the method and the numbers.
"""
