"""The Bot Framework's token signing, on loopback: an OpenID metadata document naming a JWKS,
the JWKS with RSA keys this module generates, and tokens signed (or forged) with them.

The server counts what it serves, so a test can see the keys were cached; `hang` makes the
metadata request be taken and never answered, as by a host that accepts and then stalls.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from tests.fakes.loopback import serving

ISSUER = "https://api.botframework.com"
METADATA_PATH = "/v1/.well-known/openidconfiguration"
JWKS_PATH = "/v1/.well-known/keys"


@dataclass
class SigningKey:
    kid: str
    private: RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    endorsements: tuple[str, ...] = ("msteams",)

    def jwk(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        return {**public, "kid": self.kid, "use": "sig", "endorsements": list(self.endorsements)}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


class KeyServer:
    def __init__(self) -> None:
        self.keys = [SigningKey("key-1")]
        self.url = ""
        self.metadata_requests = 0
        self.jwks_requests = 0
        #: When set, the metadata request is taken and never answered.
        self.hang = False
        self.release = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_get(METADATA_PATH, self._metadata)
        self.app.router.add_get(JWKS_PATH, self._jwks)

    @property
    def metadata_url(self) -> str:
        return self.url + METADATA_PATH

    async def _metadata(self, request: web.Request) -> web.Response:
        self.metadata_requests += 1
        if self.hang:
            await self.release.wait()
        return web.json_response(
            {
                "issuer": ISSUER,
                "jwks_uri": self.url + JWKS_PATH,
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def _jwks(self, request: web.Request) -> web.Response:
        self.jwks_requests += 1
        return web.json_response({"keys": [key.jwk() for key in self.keys]})


@asynccontextmanager
async def key_server() -> AsyncIterator[KeyServer]:
    server = KeyServer()
    async with serving(server.app) as url:
        server.url = url
        try:
            yield server
        finally:
            server.release.set()  # let a stalled request end so the server can stop


def claims(app_id: str, service_url: str, **changes: Any) -> dict[str, Any]:
    """What a Bot Framework channel's token says; `changes` replace claims (None removes)."""
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": ISSUER,
        "aud": app_id,
        "serviceurl": service_url,
        "nbf": now - 60,
        "iat": now - 60,
        "exp": now + 3600,
    }
    for name, value in changes.items():
        if value is None:
            body.pop(name, None)
        else:
            body[name] = value
    return body


def sign(key: SigningKey, body: dict[str, Any], *, kid: str | None = None) -> str:
    return jwt.encode(body, key.private, algorithm="RS256", headers={"kid": kid or key.kid})


def _segment(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], body: dict[str, Any], secret: bytes | None) -> str:
    """A token PyJWT will not make: unsigned (`secret` None) or HS256 with `secret`."""
    signing_input = ".".join(
        _segment(json.dumps(part).encode()) for part in (header, body)
    ).encode()
    signature = b"" if secret is None else hmac.new(secret, signing_input, hashlib.sha256).digest()
    return f"{signing_input.decode()}.{_segment(signature)}"
