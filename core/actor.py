"""Who is doing something: a signed-in user, the system itself or a plugin."""

from __future__ import annotations

import enum
import uuid
from typing import Literal

import msgspec


class Role(enum.StrEnum):
    ADMIN = "admin"
    AGENT = "agent"
    COMPLIANCE = "compliance"


class Actor(msgspec.Struct, frozen=True):
    kind: Literal["user", "system", "plugin"]
    id: uuid.UUID | None = None
    role: Role | None = None
    name: str = "system"

    @property
    def ref(self) -> str:
        """How the actor is recorded in events and logs (never an email)."""
        if self.kind == "user":
            return f"user:{self.id}"
        if self.kind == "plugin":
            return f"plugin:{self.name}"
        return "system"


SYSTEM = Actor(kind="system")
