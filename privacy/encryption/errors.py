"""Errors of the privacy module. Each message says what happened and what to do."""

from __future__ import annotations

from kith.errors import Conflict, KithError


class PrivacyError(KithError):
    """Base of the privacy module's operational errors (keys, envelopes, registry). A Kith
    error, so the CLI prints it as one line; over HTTP it is a server error, not the client's."""

    status_code = 500
    title = "Personal data protection error"


class KeyFileError(PrivacyError):
    """The key-encryption key file is missing, unsafe or unreadable."""


class RegistryError(PrivacyError):
    """The personal-data registry and the tables disagree."""


class EnvelopeError(PrivacyError):
    """A stored value is not a well-formed encrypted envelope."""


class FieldDecryptionError(PrivacyError):
    """A stored value does not decrypt: it was altered, or copied from another row or column."""


class KeyOfAnotherSubject(PrivacyError):
    """A stored value is encrypted under the data key of a subject other than the one it was
    read for (nor one of that subject's legal holds): it was moved from another subject's row."""


class MissingDataKey(PrivacyError):
    """A value's data key is neither in the key table nor recorded as shredded."""


class UnknownKek(PrivacyError):
    """A data key is wrapped under a key-encryption key the provider does not have."""


class SubjectErased(Conflict):
    """New personal data cannot be stored for a subject whose key was destroyed."""


class AuditUnavailable(PrivacyError):
    """The audit log cannot be written: access to personal data is refused until it can."""

    status_code = 503
    title = "Audit log unavailable"
