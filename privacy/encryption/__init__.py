"""Field encryption and keys: per-subject data keys, envelopes, blind indexes, key rotation,
crypto-shredding and log redaction. A built-in plugin (``kith.privacy.encryption.plugin``)."""
