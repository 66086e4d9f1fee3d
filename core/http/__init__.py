"""The HTTP API (litestar): thin handlers over the services."""

from kith.http.app import create_app
from kith.http.auth import roles

__all__ = ["create_app", "roles"]
