"""Services own the CRM's logic; HTTP and CLI are thin layers over them."""


def is_unique_violation(exc: BaseException) -> bool:
    """Whether a database error is a unique constraint (SQLite and PostgreSQL word it so)."""
    text = f"{type(exc).__name__} {exc}".lower()
    return "unique" in text


def is_foreign_key_violation(exc: BaseException) -> bool:
    """Whether a database error is a foreign key constraint (SQLite and PostgreSQL word it so)."""
    return "foreign key" in str(exc).lower()
