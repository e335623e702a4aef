"""JWT verification. Interface used by shared/app.py:

JwksClient(url: str, *, clock: Clock)   cached keys, refreshed on an unknown kid
TokenVerifier(jwks: JwksClient, *, issuer: str, audience: str)
    async verify(token: str) -> Claims   raises shared.errors.Unauthorized
"""
# STUB: owned by the auth helper — fill in.
