"""Identity: JWT verification against the JWKS, the caller dependency, roles and access links (DESIGN.md §4)."""
