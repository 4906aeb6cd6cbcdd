"""Bearer tokens and download tickets: what verifies, and everything that must not."""

import base64
import datetime as dt
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from coursedash import auth, cli

SECRET = "test-jwt-secret-0123456789abcdef"


@pytest.fixture(autouse=True)
def secret(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSEDASH_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("COURSEDASH_JWT_SECRET", SECRET)
    monkeypatch.delenv("COURSEDASH_JWT_PUBLIC_KEY", raising=False)
    monkeypatch.delenv("COURSEDASH_JWT_AUDIENCE", raising=False)


def now():
    return dt.datetime.now(dt.UTC)


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def refused(token: str) -> str:
    with pytest.raises(auth.Unauthorized) as e:
        auth.verify_token(token)
    assert e.value.status == 401 and e.value.code == "unauthorized"
    return e.value.message


def rsa_pair():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return private_pem, public_pem


def test_minted_token_is_hs256_for_the_user_and_expires_in_the_hours_asked():
    token = auth.mint_token("u_creator", hours=2)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["sub"] == "u_creator"
    assert abs(claims["exp"] - (now() + dt.timedelta(hours=2)).timestamp()) < 5
    assert auth.verify_token(token) == "u_creator"
    default = jwt.decode(auth.mint_token("u1"), SECRET, algorithms=["HS256"])
    assert abs(default["exp"] - default["iat"] - 12 * 3600) <= 1


def test_without_configured_secret_a_local_one_is_made_and_kept(monkeypatch, tmp_path):
    monkeypatch.delenv("COURSEDASH_JWT_SECRET")
    token = auth.mint_token("u1")
    assert (tmp_path / "var" / "jwt_secret").exists()
    assert auth.verify_token(token) == "u1"
    monkeypatch.setenv("COURSEDASH_JWT_SECRET", "another-secret-0123456789abcdefgh")
    refused(token)


def test_cli_token_prints_a_token_that_verifies(capsys):
    cli.main(["token", "u_mentor", "--hours", "1"])
    assert auth.verify_token(capsys.readouterr().out.strip()) == "u_mentor"
    cli.main(["token", "u_mentor", "--email", "mentor@example.org"])
    claims = auth.claims_from_header("Bearer " + capsys.readouterr().out.strip())
    assert (claims["sub"], claims["email"]) == ("u_mentor", "mentor@example.org")


def test_expired_token_is_refused():
    assert "expired" in refused(auth.mint_token("u1", hours=-1))


def test_unsigned_token_is_refused():
    claims = {"sub": "u1", "exp": int((now() + dt.timedelta(hours=1)).timestamp())}
    for alg in ("none", "None", "NONE"):
        refused(f"{b64({'alg': alg, 'typ': 'JWT'})}.{b64(claims)}.")
    refused(jwt.encode(claims, None, algorithm="none"))


def test_wrongly_signed_token_is_refused():
    refused(
        jwt.encode({"sub": "u1", "exp": now() + dt.timedelta(hours=1)}, "not-the-secret-0123456789abcdefgh", "HS256")
    )
    # Same claims, the signature of another token.
    good, other = auth.mint_token("u1"), auth.mint_token("u2")
    refused(good.rsplit(".", 1)[0] + "." + other.rsplit(".", 1)[1])
    # A changed claim breaks the signature.
    head, body, sig = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    refused(f"{head}.{b64({**claims, 'sub': 'u_creator'})}.{sig}")


@pytest.mark.parametrize(
    "token", ["", "abc", "a.b.c", "a.b", "Bearer x", "....", "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln"]
)
def test_malformed_token_is_refused(token):
    refused(token)


def test_token_must_name_a_user_and_expire():
    later = now() + dt.timedelta(hours=1)
    refused(jwt.encode({"exp": later}, SECRET, "HS256"))
    refused(jwt.encode({"sub": "", "exp": later}, SECRET, "HS256"))
    refused(jwt.encode({"sub": "   ", "exp": later}, SECRET, "HS256"))
    refused(jwt.encode({"sub": "u1"}, SECRET, "HS256"))  # no expiry: refused
    assert auth.verify_token(jwt.encode({"sub": "u1", "exp": later}, SECRET, "HS256")) == "u1"


def test_header_parsing():
    token = auth.mint_token("u1")
    assert auth.user_from_header(f"Bearer {token}") == "u1"
    assert auth.user_from_header(f"bearer   {token} ") == "u1"
    for bad in (None, "", "Bearer", "Bearer ", f"Basic {token}", token):
        with pytest.raises(auth.Unauthorized):
            auth.user_from_header(bad)


def test_rs256_tokens_verify_with_the_configured_public_key(monkeypatch, tmp_path):
    private_pem, public_pem = rsa_pair()
    other_private, _ = rsa_pair()
    claims = {"sub": "u_idp", "exp": now() + dt.timedelta(hours=1), "aud": "some-client"}
    token = jwt.encode(claims, private_pem, algorithm="RS256")
    refused(token)  # no public key configured: RS256 is not accepted

    monkeypatch.setenv("COURSEDASH_JWT_PUBLIC_KEY", public_pem)
    assert auth.verify_token(token) == "u_idp"
    assert auth.verify_token(auth.mint_token("u_dev")) == "u_dev"  # HS256 development tokens still work
    refused(jwt.encode(claims, other_private, algorithm="RS256"))  # signed by another key
    refused(jwt.encode({**claims, "exp": now() - dt.timedelta(minutes=5)}, private_pem, algorithm="RS256"))
    # Algorithm confusion: HS256 "signed" with the public key as the HMAC secret.
    head = b64({"alg": "HS256", "typ": "JWT"})
    body = b64({"sub": "u_creator", "exp": int((now() + dt.timedelta(hours=1)).timestamp())})
    import hashlib
    import hmac

    sig = hmac.new(public_pem.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    refused(f"{head}.{body}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}")
    # Other asymmetric algorithms are not configured.
    refused(jwt.encode(claims, private_pem, algorithm="RS512"))

    # The key may be given as the path of a PEM file; an audience, when set, is required.
    pem_file = tmp_path / "idp.pem"
    pem_file.write_text(public_pem)
    monkeypatch.setenv("COURSEDASH_JWT_PUBLIC_KEY", str(pem_file))
    monkeypatch.setenv("COURSEDASH_JWT_AUDIENCE", "coursedash")
    refused(token)
    assert auth.verify_token(jwt.encode({**claims, "aud": "coursedash"}, private_pem, algorithm="RS256")) == "u_idp"


def test_download_ticket_opens_one_request_for_a_minute_and_is_no_login_token():
    ticket, expires = auth.mint_download_ticket("u_creator", "r1")
    assert 50 <= (expires - now()).total_seconds() <= 61
    assert auth.verify_download_ticket(ticket, "r1") == "u_creator"
    with pytest.raises(auth.Unauthorized):
        auth.verify_download_ticket(ticket, "r2")  # bound to its request
    with pytest.raises(auth.Unauthorized):
        auth.verify_token(ticket)  # a ticket is not a sign-in
    with pytest.raises(auth.Unauthorized):
        auth.verify_download_ticket(auth.mint_token("u_creator"), "r1")  # nor a sign-in a ticket
    stale, _ = auth.mint_download_ticket("u_creator", "r1", seconds=-1)
    with pytest.raises(auth.Unauthorized, match="expired"):
        auth.verify_download_ticket(stale, "r1")


@pytest.mark.parametrize(
    "flag, verified",
    [
        (True, True),
        ("true", True),
        (False, False),
        ("false", False),
        ("False", False),
        ("no", False),
        (1, False),
        (None, False),
    ],
)
def test_only_an_address_the_provider_vouches_for_gets_notices(flag, verified):
    claims = {"sub": "u1", "email": "u1@example.org"} | ({} if flag is None else {"email_verified": flag})
    assert auth.notice_email(claims) == ("u1@example.org" if verified else None)
    # This project's own development tokens vouch for the address they were given.
    assert auth.notice_email(auth.token_claims(auth.mint_token("u1", email="u1@example.org"))) == "u1@example.org"
