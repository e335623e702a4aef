"""The gateway benchmark: an authenticated database read, direct vs nginx vs the API gateway.

``make bench`` (``python -m benchmarks.gateway``) starts its own fleet (ports +20000,
databases ``repitbot_bench_<svc>``, vhost ``repitbot_bench``, Redis database 14), an nginx
with a generated config under ``var/bench-nginx/``, registers a user, and drives
``GET /api/v1/users/me`` with wrk: (a) straight to user-service, (b) through nginx,
(c) through the gateway; then a paced run at a constant rate. It prints a table and
writes the figures to ``var/bench-results/``. docs/performance.md has the method and
the measured numbers.
"""
