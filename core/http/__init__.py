"""The HTTP API (litestar): thin handlers over the services."""

from kith.http.app import create_app
from kith.http.auth import CurrentActor, current_actor, public, roles
from kith.http.openapi import answers

__all__ = ["CurrentActor", "answers", "create_app", "current_actor", "public", "roles"]
