"""Service-to-service HTTP. Interface used by shared/app.py:

ServiceClient(settings: ServiceSettings, *, clock: Clock)
    timeouts; retries on idempotent calls only; a circuit breaker per upstream;
    X-Correlation-ID and a service token (client credentials at user-service) passed on.
    async aclose()
"""
# STUB: owned by the auth helper — fill in.
