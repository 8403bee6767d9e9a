"""Password hashing with Argon2id (argon2-cffi), which picks salts and parameters for us.

The hashes are PHC strings (`$argon2id$v=19$m=...`), so each carries its own parameters: raising the
cost later only needs `needs_rehash` at the next sign-in. Hashing is deliberately slow (tens to
hundreds of milliseconds); async callers run it in a thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from server.errors import InvalidInputError

MIN_PASSWORD_LENGTH = 8
# Argon2 accepts any length; a bound keeps one request from hashing megabytes.
MAX_PASSWORD_LENGTH = 1024

_HASHER = PasswordHasher()


def check_password(password: str) -> str:
    """Return the password when it is acceptable.

    Raises:
        InvalidInputError: shorter than 8 or longer than 1024 characters.
    """
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError(
            f"the password must be at least {MIN_PASSWORD_LENGTH} characters", path="password"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInputError(
            f"the password must be at most {MAX_PASSWORD_LENGTH} characters", path="password"
        )
    return password


def hash_password(password: str) -> str:
    """The Argon2id hash of an acceptable password, with a fresh random salt.

    Raises:
        InvalidInputError: the password is too short or too long.
    """
    return _HASHER.hash(check_password(password))


def verify_password(password_hash: str, password: str) -> bool:
    """Whether `password` matches `password_hash`; False (never an exception) for a malformed hash.

    The comparison inside argon2 is constant-time.
    """
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than the current ones (or is malformed)."""
    try:
        return _HASHER.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@functools.cache
def dummy_hash() -> str:
    """A hash of a random password, made once with the current parameters.

    Verifying against it when an email is unknown makes a failed sign-in cost the same time whether or
    not the account exists.
    """
    return _HASHER.hash(secrets.token_urlsafe(16))
