"""Zip passwords: the policy (docs/reports.md, "The file") and encryption at rest (docs/lifecycle.md)."""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

from coursedash.config import settings

POLICY = "8 to 64 printable ASCII characters, no space at either end, at least one letter and one digit"


class PasswordPolicyError(ValueError):
    pass


def check_policy(password: str) -> None:
    """Raise PasswordPolicyError, naming the policy, when the password breaks it."""
    problems = []
    if not 8 <= len(password) <= 64:
        problems.append(f"it has {len(password)} characters")
    if any(not (32 <= ord(c) <= 126) for c in password):
        problems.append("it has a character that is not printable ASCII")
    if password != password.strip(" "):
        problems.append("it starts or ends with a space")
    if not any(c.isascii() and c.isalpha() for c in password):
        problems.append("it has no letter")
    if not any(c.isdigit() for c in password):
        problems.append("it has no digit")
    if problems:
        raise PasswordPolicyError(f"password refused ({'; '.join(problems)}): use {POLICY}")


def _fernet() -> Fernet:
    # Any secret string works: Fernet wants 32 url-safe base64 bytes, so derive them.
    digest = hashlib.sha256(settings().secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(password: str) -> str:
    return _fernet().encrypt(password.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as e:
        raise RuntimeError(
            "a stored password cannot be decrypted: COURSEDASH_SECRET_KEY differs from the key it was stored with"
        ) from e
