"""What the two token checks share, the Teams connector's (adapters/teams/auth.py) and the web
console's OpenID Connect sign-in (adapters/web/oidc.py): a provider's JSON documents fetched
within a size limit, the RSA signing keys of a JWKS, and one wording of why a JWT failed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

#: The metadata and the JWKS are a few kilobytes; a host sending more is not serving them.
MAX_DOCUMENT_BYTES = 512 * 1024


class FetchFailed(Exception):
    """The metadata or the JWKS could not be fetched or read."""


@dataclass(frozen=True)
class SigningKey:
    key: RSAPublicKey
    #: Channels (e.g. "msteams") the key may sign for; empty when the JWKS names none.
    endorsements: frozenset[str]


async def get_json(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    """A JSON object fetched from `url`, at most MAX_DOCUMENT_BYTES; FetchFailed otherwise."""
    async with client.stream("GET", url, headers={"Accept": "application/json"}) as response:
        if response.status_code != 200:
            raise FetchFailed(f"{url} answered HTTP {response.status_code}")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_DOCUMENT_BYTES:
                raise FetchFailed(f"{url} sent more than {MAX_DOCUMENT_BYTES} bytes")
    try:
        document = json.loads(body)
    except ValueError:
        raise FetchFailed(f"{url} did not send JSON") from None
    if not isinstance(document, dict):
        raise FetchFailed(f"{url} did not send a JSON object")
    return document


def parse_jwks(jwks: dict[str, Any]) -> dict[str, SigningKey]:
    """The RSA signing keys of a JWKS by `kid`; other keys and unreadable ones are left out."""
    keys: dict[str, SigningKey] = {}
    entries = jwks.get("keys")
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA":
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.algorithms.RSAAlgorithm.from_jwk(entry)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            continue
        if not isinstance(key, RSAPublicKey):
            continue  # a private key published by mistake is not one to trust
        endorsed = entry.get("endorsements")
        channels = frozenset(
            e for e in (endorsed if isinstance(endorsed, list) else []) if isinstance(e, str)
        )
        keys[kid] = SigningKey(key, channels)
    return keys


def why_not_valid(error: jwt.PyJWTError, token: str, issuer: str) -> str:
    """Why PyJWT refused `token` ("the token", "the id_token"), for the security log; `issuer`
    names who should have issued it."""
    if isinstance(error, jwt.ExpiredSignatureError):
        return f"{token} has expired"
    if isinstance(error, jwt.ImmatureSignatureError):
        return f"{token} is not valid yet"
    if isinstance(error, jwt.InvalidAudienceError):
        return f"{token} is for another app (audience)"
    if isinstance(error, jwt.InvalidIssuerError):
        return f"{token}'s issuer is not {issuer}"
    if isinstance(error, jwt.InvalidSignatureError):
        return f"{token}'s signature does not verify"
    if isinstance(error, jwt.MissingRequiredClaimError):
        return f"{token} has no {error.claim} claim"
    return f"{token} does not verify"
