"""Outgoing webhooks: HMAC-signed deliveries of Kith's events, as a built-in plugin.

Registered through the ``kith`` entry-point group (``webhooks = "kith.plugins.webhooks"``),
exactly like a third-party plugin. Its hooks are added by the webhooks work.
"""
