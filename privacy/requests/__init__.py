"""Data subject requests: deadlines, identity checks, four-eyes approval, previews, resumable
runs and signed certificates. A built-in plugin (``kith.privacy.requests.plugin``) that carries
each request out through the rights plugin's services."""
