"""Who is calling: bearer JWTs (docs/api.md) and short-lived download tickets.

A token's `sub` is the user id. HS256 tokens are signed with COURSEDASH_JWT_SECRET
(`coursedash token` mints them for development). When COURSEDASH_JWT_PUBLIC_KEY holds
an RSA public key (PEM text, or the path of a PEM file), RS256 tokens from an identity
provider verify with it too; COURSEDASH_JWT_AUDIENCE, when set, is then required.
The key is chosen by the token's algorithm and each algorithm has only its own key,
so a token can never be checked with the wrong kind of key ("alg: none" and HS256
signed with the public key both fail).

A download ticket is a JWT for one request, a minute long, signed with a key derived
from the secret for that purpose alone: it opens that download and nothing else, and
no login token opens a download by query string.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
from functools import lru_cache
from pathlib import Path

import jwt
from jwt.types import Options

from coursedash.config import settings
from coursedash.control_chars import has_control
from coursedash.store import BadRequest, RequestError

ISSUER = "coursedash"
TICKET_AUDIENCE = "coursedash-download"
TICKET_SECONDS = 60
_LEEWAY = 5  # seconds of clock skew between an identity provider and this server


class Unauthorized(RequestError):
    status, code = 401, "unauthorized"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def mint_token(user_id: str, hours: float = 12, email: str | None = None) -> str:
    """A development token for `user_id`, HS256 with the configured secret."""
    if not user_id:
        raise ValueError("a token needs a user id")
    now = _now()
    claims = {"sub": user_id, "iss": ISSUER, "iat": now, "exp": now + dt.timedelta(hours=hours)}
    if email:
        claims["email"] = email
        claims["email_verified"] = True  # this issuer vouches for what the developer typed
    return jwt.encode(claims, settings().jwt_secret, algorithm="HS256")


@lru_cache(maxsize=8)
def _load_public_key(value: str):
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    pem = value if value.lstrip().startswith("-----BEGIN") else Path(value).read_text()
    return load_pem_public_key(pem.encode())


def _public_key():
    value = os.environ.get("COURSEDASH_JWT_PUBLIC_KEY")
    return _load_public_key(value) if value else None


def verify_token(token: str) -> str:
    """The user id of a valid bearer token; Unauthorized otherwise (never says which check failed)."""
    return token_claims(token)["sub"]


def token_claims(token: str, what: str = "the bearer token") -> dict:
    """The claims of a valid token, its `sub` a non-empty user id; `what` names the token in refusals."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Unauthorized(f"{what} is malformed") from None
    alg = header.get("alg")
    options: Options = {"require": ["exp", "sub"]}
    audience = None
    if alg == "HS256":
        key = settings().jwt_secret
    elif alg == "RS256" and _public_key() is not None:
        key = _public_key()
        audience = os.environ.get("COURSEDASH_JWT_AUDIENCE") or None
        if audience is None:
            options["verify_aud"] = False  # an identity provider's tokens often name one
    else:
        raise Unauthorized(f"tokens signed with {alg!r} are not accepted")
    try:
        claims = jwt.decode(token, key, algorithms=[alg], audience=audience, options=options, leeway=_LEEWAY)
    except jwt.ExpiredSignatureError:
        raise Unauthorized(f"{what} has expired; sign in again") from None
    except jwt.PyJWTError:
        raise Unauthorized(f"{what} is not valid") from None
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip():
        raise Unauthorized(f"{what} names no user")
    if has_control(sub):
        raise BadRequest(f"{what}'s user id contains a control character")
    return claims


def user_from_header(authorization: str | None) -> str:
    """The user of an `Authorization: Bearer <JWT>` header value."""
    return claims_from_header(authorization)["sub"]


def claims_from_header(authorization: str | None) -> dict:
    """The claims of an `Authorization: Bearer <JWT>` header value's token."""
    if not authorization:
        raise Unauthorized("sign in: send Authorization: Bearer <token>")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be: Bearer <token>")
    return token_claims(token.strip())


def notice_email(claims: dict) -> str | None:
    """The token's e-mail address for report-ready notices, if the identity provider vouches for it.

    An address the identity provider has not verified may be someone else's: no notice to
    it. Only `true` (or the string "true", as some providers send it) says verified; `false`,
    "false", a missing claim or anything else does not.
    """
    flag = claims.get("email_verified")
    verified = flag is True or flag == "true"  # not 1, "True", "yes": strictly the two spellings
    email = claims.get("email")
    return email if isinstance(email, str) and verified else None


def _ticket_key() -> bytes:
    # Derived, so that a ticket is never a login token and a login token never a ticket.
    return hmac.new(settings().jwt_secret.encode(), b"coursedash download ticket", hashlib.sha256).digest()


def mint_download_ticket(user_id: str, request_id: str, seconds: int = TICKET_SECONDS) -> tuple[str, dt.datetime]:
    now = _now()
    expires = now + dt.timedelta(seconds=seconds)
    claims = {"sub": user_id, "rid": request_id, "aud": TICKET_AUDIENCE, "iat": now, "exp": expires}
    return jwt.encode(claims, _ticket_key(), algorithm="HS256"), expires


def verify_download_ticket(ticket: str, request_id: str) -> str:
    """The user id a ticket was issued to, when it is valid for this request."""
    try:
        claims = jwt.decode(
            ticket,
            _ticket_key(),
            algorithms=["HS256"],
            audience=TICKET_AUDIENCE,
            options={"require": ["exp", "sub", "rid", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the download link has expired; press Download again") from None
    except jwt.PyJWTError:
        raise Unauthorized("the download link is not valid") from None
    if claims.get("rid") != request_id or not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise Unauthorized("the download link is not valid")
    return claims["sub"]
