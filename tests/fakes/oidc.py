"""A loopback OpenID Connect provider, in an Entra ID or a Slack flavour: discovery, an
authorize endpoint that sends the browser straight back with a code for the test's chosen
user, a token endpoint that checks what a real one checks (the code, once; the client secret;
the redirect_uri; the PKCE verifier against the challenge), and a JWKS with an RSA key the
test made. `claims` and `forge` let a test send a token that is wrong in one way.

    async with fake_provider("entra", client_id=..., client_secret=..., tenant=...) as idp:
        idp.user = {"oid": "…", "name": "Pat"}
        settings = replace(settings, entra_discovery_url=idp.metadata_url, ...)
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from tests.fakes.loopback import serving

METADATA_PATH = "/.well-known/openid-configuration"


def _new_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Grant:
    user: dict[str, Any]
    client_id: str
    redirect_uri: str
    nonce: str
    challenge: str


@dataclass
class FakeProvider:
    flavour: str  # "entra" or "slack"
    client_id: str
    client_secret: str
    tenant: str
    base_url: str = ""
    key: RSAPrivateKey = field(default_factory=_new_key)
    kid: str = "test-key-1"
    #: The user the authorize endpoint signs in: the flavour's claims (`oid` or Slack's ids).
    user: dict[str, Any] = field(default_factory=dict)
    #: Claims put over the real ones in the next id_tokens (a wrong `iss`, `aud`, `exp`…).
    claims: dict[str, Any] = field(default_factory=dict)
    #: How the next id_tokens are spoiled: "signature" (a byte of it changed), "other-key"
    #: (signed by a key not in the JWKS, under its kid), "hs256" (HMAC keyed with the public
    #: key, the algorithm-confusion attack), "none".
    forge: str = ""
    grants: dict[str, Grant] = field(default_factory=dict)
    #: Why each refused token request was refused, and how many were granted.
    token_refusals: list[str] = field(default_factory=list)
    tokens_issued: int = 0
    authorize_requests: int = 0
    #: The last authorize request's query, as the browser brought it.
    last_authorize: dict[str, str] = field(default_factory=dict)
    #: Every id_token and code handed out, for the logs to be searched for them.
    handed_out: list[str] = field(default_factory=list)

    @property
    def metadata_url(self) -> str:
        return self.base_url + METADATA_PATH

    @property
    def issuer(self) -> str:
        if self.flavour == "entra":
            return f"{self.base_url}/{self.tenant}/v2.0"
        return self.base_url

    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def id_token(self, grant: Grant) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "nonce": grant.nonce,
        }
        if self.flavour == "entra":
            claims |= {"tid": self.tenant, "sub": "pairwise-" + str(grant.user.get("oid", ""))}
        else:
            claims |= {
                "https://slack.com/team_id": self.tenant,
                "sub": str(grant.user.get("https://slack.com/user_id", "")),
            }
        claims |= grant.user
        claims |= self.claims
        claims = {k: v for k, v in claims.items() if v is not None}
        headers = {"kid": self.kid}
        if self.forge == "other-key":
            return jwt.encode(claims, _new_key(), algorithm="RS256", headers=headers)
        if self.forge == "hs256":
            return _hmac_token(claims, headers, self.public_pem())
        if self.forge == "none":
            return _unsigned_token(claims, headers)
        token = jwt.encode(claims, self.key, algorithm="RS256", headers=headers)
        if self.forge == "signature":
            head, body, signature = token.split(".")
            flipped = ("A" if signature[10] != "A" else "B") + signature[11:]
            token = f"{head}.{body}.{signature[:10]}{flipped}"
        return token

    def public_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    # -- the endpoints --------------------------------------------------------------------
    async def metadata(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": self.issuer,
                "authorization_endpoint": self.base_url + "/authorize",
                "token_endpoint": self.base_url + "/token",
                "jwks_uri": self.base_url + "/keys",
                "response_types_supported": ["code"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    async def keys(self, request: web.Request) -> web.Response:
        return web.json_response(self.jwks())

    async def authorize(self, request: web.Request) -> web.Response:
        self.authorize_requests += 1
        query = dict(request.query)
        self.last_authorize = query
        if (
            query.get("response_type") != "code"
            or query.get("client_id") != self.client_id
            or query.get("code_challenge_method") != "S256"
            or not query.get("code_challenge")
            or "openid" not in query.get("scope", "").split()
        ):
            return web.Response(status=400, text="bad authorization request")
        code = secrets.token_urlsafe(24)
        self.grants[code] = Grant(
            dict(self.user),
            query["client_id"],
            query.get("redirect_uri", ""),
            query.get("nonce", ""),
            query["code_challenge"],
        )
        self.handed_out.append(code)
        back = urlencode({"code": code, "state": query.get("state", "")})
        raise web.HTTPFound(location=f"{query.get('redirect_uri', '')}?{back}")

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        grant = self.grants.pop(str(form.get("code", "")), None)
        why = ""
        if form.get("grant_type") != "authorization_code":
            why = "grant_type"
        elif grant is None:
            why = "unknown or used code"
        elif form.get("client_id") != self.client_id or grant.client_id != self.client_id:
            why = "client_id"
        elif form.get("client_secret") != self.client_secret:
            why = "client_secret"
        elif form.get("redirect_uri") != grant.redirect_uri:
            why = "redirect_uri"
        elif _challenge(str(form.get("code_verifier", ""))) != grant.challenge:
            why = "PKCE verifier"
        if why or grant is None:
            self.token_refusals.append(why)
            return web.json_response({"error": "invalid_grant", "why": why}, status=400)
        self.tokens_issued += 1
        id_token = self.id_token(grant)
        self.handed_out.append(id_token)
        access_token = "fake-access-" + secrets.token_urlsafe(16)
        self.handed_out.append(access_token)
        return web.json_response(
            {"ok": True, "token_type": "Bearer", "access_token": access_token, "id_token": id_token}
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(METADATA_PATH, self.metadata)
        app.router.add_get("/keys", self.keys)
        app.router.add_get("/authorize", self.authorize)
        app.router.add_post("/token", self.token)
        return app


def _challenge(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


def _segment(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _hmac_token(claims: dict[str, Any], headers: dict[str, Any], secret: bytes) -> str:
    import hmac

    signing_input = f"{_segment({'alg': 'HS256', 'typ': 'JWT', **headers})}.{_segment(claims)}"
    signature = hmac.new(secret, signing_input.encode(), "sha256").digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def _unsigned_token(claims: dict[str, Any], headers: dict[str, Any]) -> str:
    return f"{_segment({'alg': 'none', 'typ': 'JWT', **headers})}.{_segment(claims)}."


@asynccontextmanager
async def fake_provider(
    flavour: str, *, client_id: str, client_secret: str, tenant: str
) -> AsyncIterator[FakeProvider]:
    provider = FakeProvider(flavour, client_id, client_secret, tenant)
    # No access log: its lines would carry codes, and the tests search the logs for those.
    async with serving(provider.app(), access_log=None) as base_url:
        provider.base_url = base_url
        yield provider
