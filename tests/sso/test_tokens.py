"""ID token validation (app/sso/tokens.py) with keys generated here: signature, iss, aud, azp,
exp, nonce, algorithms, and JWKS caching with rotation."""

from __future__ import annotations

import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from app.sso.tokens import IdTokenValidator, InvalidIdToken, JwksCache

ISSUER, CLIENT = "https://idp.example.com", "proxy-client"


def new_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


class Issuer:
    """A JWKS endpoint stand-in: ``keys`` published, ``fetches`` counted."""

    def __init__(self, *keys: RSAKey) -> None:
        self.keys = list(keys)
        self.fetches = 0

    async def jwks(self) -> dict[str, Any]:
        self.fetches += 1
        return {"keys": [k.as_dict(private=False) for k in self.keys]}


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values = {"iss": ISSUER, "aud": CLIENT, "sub": "00u1", "iat": now, "exp": now + 300, "nonce": "n-1",
              "email": "ada@example.com"}
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def sign(key: Any, payload: dict[str, Any], alg: str = "RS256", kid: str | None = "k1") -> str:
    header = {"alg": alg, **({"kid": kid} if kid else {})}
    return jwt.encode(header, payload, key, algorithms=[alg])


def validator(issuer: Issuer, **options: Any) -> IdTokenValidator:
    cache = JwksCache(issuer.jwks, ttl_s=options.pop("ttl_s", 3600), min_refetch_s=options.pop("min_refetch_s", 10))
    return IdTokenValidator(cache, issuer=ISSUER, client_id=CLIENT, leeway_s=options.pop("leeway_s", 60), **options)


async def test_a_good_token_gives_its_claims() -> None:
    key = new_key("k1")
    out = await validator(Issuer(key)).validate(sign(key, claims()), nonce="n-1")
    assert out["sub"] == "00u1" and out["email"] == "ada@example.com"


async def test_a_tampered_payload_fails_the_signature() -> None:
    key = new_key("k1")
    header, payload, signature = sign(key, claims()).split(".")
    forged_payload = sign(key, claims(sub="admin")).split(".")[1]
    with pytest.raises(InvalidIdToken, match="signature"):
        await validator(Issuer(key)).validate(f"{header}.{forged_payload}.{signature}", nonce="n-1")
    assert payload != forged_payload


async def test_a_token_signed_by_another_key_with_a_published_kid_fails() -> None:
    published, attacker = new_key("k1"), new_key("k1")
    with pytest.raises(InvalidIdToken, match="signature"):
        await validator(Issuer(published)).validate(sign(attacker, claims()), nonce="n-1")


@pytest.mark.parametrize(("overrides", "message"), [
    ({"aud": "another-client"}, "aud"),
    ({"aud": ["another-client"]}, "aud"),
    ({"iss": "https://evil.example.com"}, "iss"),
    ({"nonce": "n-other"}, "nonce"),
    ({"nonce": None}, "nonce"),
    ({"sub": None}, "sub"),
    ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "expired"),
])
async def test_wrong_claims_are_refused(overrides: dict[str, Any], message: str) -> None:
    key = new_key("k1")
    with pytest.raises(InvalidIdToken, match=message):
        await validator(Issuer(key)).validate(sign(key, claims(**overrides)), nonce="n-1")


async def test_expiry_within_the_leeway_is_accepted_and_beyond_it_refused() -> None:
    key = new_key("k1")
    now = int(time.time())
    token = sign(key, claims(exp=now - 30, iat=now - 330))
    assert (await validator(Issuer(key), leeway_s=60).validate(token, nonce="n-1"))["sub"] == "00u1"
    with pytest.raises(InvalidIdToken, match="expired"):
        await validator(Issuer(key), leeway_s=0).validate(token, nonce="n-1")


async def test_several_audiences_need_azp_naming_this_client() -> None:
    key = new_key("k1")
    v = validator(Issuer(key))
    with pytest.raises(InvalidIdToken, match="azp"):
        await v.validate(sign(key, claims(aud=[CLIENT, "other"])), nonce="n-1")
    assert (await v.validate(sign(key, claims(aud=[CLIENT, "other"], azp=CLIENT)), nonce="n-1"))["azp"] == CLIENT


async def test_alg_none_and_hmac_are_refused() -> None:
    key = new_key("k1")
    header, payload, _ = sign(key, claims()).split(".")
    import base64
    import json
    none_header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": "k1"}).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidIdToken, match="algorithm"):
        await validator(Issuer(key)).validate(f"{none_header}.{payload}.", nonce="n-1")
    hmac_token = sign(OctKey.import_key(b"client-secret-client-secret-1234"), claims(), alg="HS256")
    with pytest.raises(InvalidIdToken, match="algorithm"):
        await validator(Issuer(key)).validate(hmac_token, nonce="n-1")


async def test_garbage_is_refused_without_echoing_it() -> None:
    with pytest.raises(InvalidIdToken) as caught:
        await validator(Issuer(new_key("k1"))).validate("not-a-jwt-secret-looking-value", nonce="n-1")
    assert "secret-looking" not in str(caught.value)


async def test_keys_are_cached_and_an_unknown_kid_refetches_once_after_rotation() -> None:
    old, new = new_key("k1"), new_key("k2")
    issuer = Issuer(old)
    v = validator(issuer)
    await v.validate(sign(old, claims()), nonce="n-1")
    await v.validate(sign(old, claims()), nonce="n-1")
    assert issuer.fetches == 1  # cached
    issuer.keys = [new]  # the IdP rotates: k1 gone, k2 published
    assert (await v.validate(sign(new, claims(), kid="k2"), nonce="n-1"))["sub"] == "00u1"
    assert issuer.fetches == 2
    with pytest.raises(InvalidIdToken, match="signature|unknown kid"):
        await v.validate(sign(old, claims()), nonce="n-1")  # the retired key no longer verifies


async def test_made_up_kids_cannot_make_the_proxy_hammer_the_issuer() -> None:
    key, stranger = new_key("k1"), new_key("zz")
    issuer = Issuer(key)
    v = validator(issuer, min_refetch_s=3600)
    await v.validate(sign(key, claims()), nonce="n-1")
    for _ in range(5):
        with pytest.raises(InvalidIdToken, match="unknown kid"):
            await v.validate(sign(stranger, claims(), kid="zz"), nonce="n-1")
    assert issuer.fetches == 2  # the first fetch, then one refetch for the unknown kid
