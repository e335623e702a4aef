"""HTTP: routers and their schemas. Rules live in ``domain/``."""
