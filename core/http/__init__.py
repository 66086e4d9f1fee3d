"""The HTTP API (litestar): thin handlers over the services."""

from kith.http.app import create_app
from kith.http.auth import CurrentActor, public, roles

__all__ = ["CurrentActor", "create_app", "public", "roles"]
