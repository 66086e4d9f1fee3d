"""The web UI: server-rendered pages for staff, on the same services and role checks as the
API. :func:`web_app_config` gives the app factory what it mounts."""

from kith.web.mount import WebMount, web_mount

__all__ = ["WebMount", "web_mount"]
