"""material-service settings: the common ones plus where blobs live and how large a file may be."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from shared.config import ServiceSettings

MB = 1024 * 1024
MULTIPART_OVERHEAD = 64 * 1024  # room for the form's other fields and part headers beside the file


class MaterialServiceSettings(ServiceSettings):
    service_name: str = "material-service"
    port: int = 8005

    # content-addressed files (var/materials/ in development; a named volume in compose); uploads
    # are spooled to <blob_dir>/tmp first, so the final rename stays on one file system
    blob_dir: Path = Path("var/materials")
    # the largest file accepted (413 above it); the request body may be a little larger (the form)
    max_file_bytes: int = Field(50 * MB, ge=1)
    max_request_body_bytes: int = 50 * MB + MULTIPART_OVERHEAD

    @model_validator(mode="after")
    def _body_fits_the_file(self) -> MaterialServiceSettings:
        # a body limit below the file limit would answer 413 from the middleware for a file we accept
        self.max_request_body_bytes = max(self.max_request_body_bytes, self.max_file_bytes + MULTIPART_OVERHEAD)
        return self
