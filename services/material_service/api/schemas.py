"""material-service request and response bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StringConstraints, model_validator

Tag = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=50)]
MAX_TAGS = 20


class MaterialFields(BaseModel):
    """The metadata of a material (form fields of an upload, or the JSON body of a link)."""

    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    subject: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] | None = None
    grade: int | None = Field(None, ge=1, le=11, description="school grade, 1-11")
    tags: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS)
    description: Annotated[str, StringConstraints(max_length=5000)] | None = None
    homework_id: uuid.UUID | None = Field(None, description="a student's file for this homework")
    url: HttpUrl | None = Field(None, description="a link instead of a file")


class ShareIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    student_ids: list[uuid.UUID] = Field(default_factory=list, max_length=200)
    all_students: bool = Field(False, description="every student of the tutor, present and future")

    @model_validator(mode="after")
    def _someone(self) -> ShareIn:
        if not self.student_ids and not self.all_students:
            raise ValueError("name student_ids or set all_students")
        return self


class MaterialOut(BaseModel):
    id: uuid.UUID
    owner_id: uuid.UUID
    owner_role: str
    kind: str  # "file" or "link"
    title: str
    subject: str | None
    grade: int | None
    tags: list[str]
    description: str | None
    url: str | None
    sha256: str | None
    size: int | None
    content_type: str | None
    filename: str | None
    homework_id: uuid.UUID | None
    share_all: bool
    created_at: datetime
    shared_with: list[uuid.UUID] | None = Field(None, description="the owner's view only")
