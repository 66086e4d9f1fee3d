"""Data subject rights: consent, access and portability, rectification, restriction, erasure
with legal holds, suppression, retention, recipients, the audit log and the record of
processing. A built-in plugin (``kith.privacy.rights.plugin``)."""
