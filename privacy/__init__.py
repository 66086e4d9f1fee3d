"""Kith's privacy module: three built-in plugins, registered like any third-party plugin.

- :mod:`kith.privacy.encryption`: field encryption and keys;
- :mod:`kith.privacy.rights`: consent, access, erasure, restriction, retention, audit, record
  of processing;
- :mod:`kith.privacy.requests`: data subject requests and their certificates.

Each builds on the one before it; ``KITH_DISABLE_PLUGINS=privacy`` turns all three off.
"""
