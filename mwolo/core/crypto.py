"""Encryption of secrets stored in the database (meters' token keys).

Keys come from ``FIELD_ENCRYPTION_KEYS`` (Fernet keys, newest first): values are
encrypted with the first and decrypted with any, so a key can be rotated without
re-encrypting everything at once.
"""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


@cache
def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in settings.FIELD_ENCRYPTION_KEYS])


def encrypt(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    """The plain text; raises ``ValueError`` if no configured key opens it."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as error:
        raise ValueError("the value was encrypted with a key that is not configured") from error
