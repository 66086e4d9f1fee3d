"""Kith's privacy module: field encryption, keys, blind indexes and subject requests.

It is a built-in plugin (``kith.privacy.plugin``), registered like any third-party plugin.
"""
