"""DTOs of the prompt registry: immutable prompt rows and their append-only tags."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from stratlab.models.llm import Role

PromptTag = Literal["draft", "experimental", "candidate", "prod", "archived"]


class PromptRecord(BaseModel):
    id: str
    role: Role
    version: str = "1.0.0"
    content: str = Field(description="Jinja2 template, rendered sandboxed with StrictUndefined")
    system: str = ""
    content_hash: str
    parent_ids: list[str] = Field(default_factory=list)
    generation: int | None = None
    created_at: datetime | None = None
    tag: PromptTag | None = Field(None, description="latest tag event, if any")
