"""The gateway's own endpoints (FastAPI): /, /health, /gateway/services, /gateway/metrics, /openapi.json, /docs."""
