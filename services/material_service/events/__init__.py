"""material-service publishes ``material.uploaded``, ``material.shared`` and ``material.viewed``
through the outbox (``domain/materials.py``) and consumes only the link events every service
keeps (``shared.auth.access``)."""
