"""The Bot Framework's token signing, on loopback: an OpenID metadata document naming a JWKS,
the JWKS with RSA keys this module generates, and tokens signed (or forged) with them.

The server counts what it serves, so a test can see the keys were cached; `hang` makes the
metadata request be taken and not answered, as by a host that accepts and then stalls.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

ISSUER = "https://api.botframework.com"
METADATA_PATH = "/v1/.well-known/openidconfiguration"
JWKS_PATH = "/v1/.well-known/keys"
#: How long a stalled metadata request is held, as the host in the issue held the bot.
STALL_SECONDS = 15.0


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
    """Serves the metadata and the JWKS from its own thread, as another host would: a bot
    that fetches with a blocking call still gets an answer (and stalls only itself)."""

    def __init__(self) -> None:
        self.keys = [SigningKey("key-1")]
        self.metadata_requests = 0
        self.jwks_requests = 0
        #: When set, the metadata request is taken and answered only after STALL_SECONDS
        #: (or when the server stops): long enough for any fetch timeout to run out.
        self.hang = False
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="bot-framework-keys", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def metadata_url(self) -> str:
        return self.url + METADATA_PATH

    def start(self) -> KeyServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()  # let a stalled request end so the server can stop
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def release_stalled(self) -> None:
        """Answer the stalled metadata requests now, and later ones at once."""
        self._release.set()

    def _document(self, path: str) -> dict[str, Any] | None:
        if path == METADATA_PATH:
            self.metadata_requests += 1
            if self.hang:
                self._release.wait(STALL_SECONDS)
            return {
                "issuer": ISSUER,
                "jwks_uri": self.url + JWKS_PATH,
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        if path == JWKS_PATH:
            self.jwks_requests += 1
            return {"keys": [key.jwk() for key in list(self.keys)]}
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                document = server._document(self.path)
                body = json.dumps(document).encode()
                self.send_response(200 if document is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the bot gave up waiting
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@asynccontextmanager
async def key_server() -> AsyncIterator[KeyServer]:
    server = KeyServer().start()
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


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
