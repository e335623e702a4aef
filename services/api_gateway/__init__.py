"""api-gateway: routes /api/v1/<resource>/... to the owning service, with token checks, rate limits,
circuit breakers, discovery and health checks (DESIGN.md §3-4, README "API gateway")."""
