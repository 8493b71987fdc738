"""Secrets kept out of what the bot writes: log lines, reasons stored with a question, exports.

The first defence is not to put a secret into a message at all. `Redactor` is the second: it
replaces every configured secret, in the forms it travels in (as it is, URL-encoded,
JSON-escaped, inside a Basic credential), with REDACTED wherever text leaves the bot;
`redact_logs` applies one to every record the bot's log handlers write, libraries' included.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import (
    parse_qs,
    parse_qsl,
    quote,
    quote_plus,
    unquote,
    urlencode,
    urlsplit,
    urlunsplit,
)

from bot.config import SECRET_FIELDS, Settings

REDACTED = "[redacted]"
#: Shorter values are left alone: replacing them would mangle ordinary words, and a value
#: that short protects nothing anyway.
MIN_SECRET_CHARS = 4


#: A URL's scheme and authority, read without parsing the host: for a URL urlsplit refuses
#: (an unclosed IPv6 bracket, say), whose userinfo must still be found and kept out.
_AUTHORITY = re.compile(r"^\s*[A-Za-z][A-Za-z0-9+.-]*://(?P<authority>[^/?#]*)")
_PASSWORD_PARAMETER = re.compile(r"[?&]password=(?P<value>[^&#]*)")


def _raw_userinfo(url: str) -> str:
    found = _AUTHORITY.match(url)
    if found is None or "@" not in found["authority"]:
        return ""
    return found["authority"].rpartition("@")[0]


def url_credentials(url: str) -> tuple[str, str]:
    """The user name and password of a URL's userinfo (`https://user:pass@host/`), decoded;
    empty strings when it has none."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return "", ""
    return unquote(parts.username or ""), unquote(parts.password or "")


def without_credentials(url: str) -> str:
    """The URL with any userinfo removed: what may be shown, logged or sent as the address."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        userinfo = _raw_userinfo(url)
        return url.strip().replace(userinfo + "@", "", 1) if userinfo else url.strip()
    if "@" not in parts.netloc:
        return url.strip()
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def url_secrets(url: str) -> list[str]:
    """What of a URL must never be shown: its userinfo, raw and decoded, and the Basic
    credential an HTTP client makes of it."""
    try:
        netloc = urlsplit(url.strip()).netloc
    except ValueError:
        userinfo = _raw_userinfo(url)
        password = userinfo.partition(":")[2]
        return [s for s in (userinfo, password, unquote(password)) if s]
    if "@" not in netloc:
        return []
    userinfo = netloc.rpartition("@")[0]
    user, password = url_credentials(url)
    pair = f"{user}:{password}"
    basic = base64.b64encode(pair.encode()).decode()
    return [userinfo, password, pair, basic]


def database_url_secrets(url: str) -> list[str]:
    """A PostgreSQL URL's secrets: its userinfo, and a password given as a query parameter
    (libpq takes `?password=` too)."""
    try:
        query = parse_qs(urlsplit(url.strip()).query)
    except ValueError:
        given = [m["value"] for m in _PASSWORD_PARAMETER.finditer(url)]
        return [*url_secrets(url), *given, *(unquote(v) for v in given)]
    return [*url_secrets(url), *query.get("password", [])]


def shown_database_url(url: str) -> str:
    """A PostgreSQL URL as it may be shown: no userinfo, no password parameter."""
    shown = without_credentials(url)
    try:
        parts = urlsplit(shown)
    except ValueError:
        return _PASSWORD_PARAMETER.sub(lambda m: m[0][0] + "password=" + REDACTED, shown)
    if not parts.query:
        return shown
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "password"]
    return urlunsplit(parts._replace(query=urlencode(kept)))


def settings_secrets(settings: Settings) -> list[str]:
    """Every secret value the settings hold."""
    values = [str(getattr(settings, name)) for name in SECRET_FIELDS]
    return [
        *values,
        *url_secrets(settings.openai_base_url),
        *database_url_secrets(settings.database_url),
    ]


def _forms(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}


class Redactor:
    """Replaces the given secrets, in their usual forms, with REDACTED."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            for value in (secret, secret.strip()):
                if len(value) >= MIN_SECRET_CHARS:
                    forms |= _forms(value)
        # Longest first, so a secret inside a longer form (a Basic pair) goes with the form.
        ordered = sorted(forms, key=len, reverse=True)
        #: The longest form's length: how much of a text still growing (a streamed reply) must
        #: be held back, since a secret may be cut across the end of what has arrived.
        self.longest = len(ordered[0]) if ordered else 0
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    @classmethod
    def of(cls, settings: Settings) -> Redactor:
        return cls(settings_secrets(settings))

    def scrub(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(REDACTED, text)

    def scrub_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """A logged question (or any record) with every string in it scrubbed."""
        return {key: self.scrub_value(value) for key, value in row.items()}

    def scrub_value(self, value: object) -> object:
        """Strings, and the strings in lists and dicts, scrubbed; anything else as it is."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, list):
            return [self.scrub_value(item) for item in value]
        if isinstance(value, dict):
            return {key: self.scrub_value(item) for key, item in value.items()}
        return value


class RedactingFilter(logging.Filter):
    """Scrubs a record's message, arguments, traceback and stack before a handler writes it."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: the handler reports it as it would anyway
            return True
        scrubbed = self.redactor.scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor.scrub(record.stack_info)
        return True


def redact_logs(redactor: Redactor, handlers: Iterable[logging.Handler] | None = None) -> None:
    """Give `handlers` (by default the root logger's and Python's last-resort handler, which
    every logger's records reach) a RedactingFilter, replacing one given before."""
    if handlers is None:
        every = (*logging.getLogger().handlers, logging.lastResort)
        handlers = [handler for handler in every if handler is not None]
    for handler in handlers:
        for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(old)
        handler.addFilter(RedactingFilter(redactor))
