"""The Teams app package: manifest.json filled from settings plus two icons, zipped for upload.

The icons are drawn here with the standard library (a white policy page on the accent colour;
the outline icon is the same page in white on transparent, as Teams requires).
"""

from __future__ import annotations

import io
import json
import re
import struct
import uuid
import zipfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bot.config import TEAMS_CLIENT_ID, Settings

#: The Teams app manifest's schema version: the latest Microsoft has released (its schema is
#: shipped under tests/schemas/teams/ and the manifest is validated against it there).
MANIFEST_VERSION = "1.29"
#: Prompt starters in the personal chat (beside `help` and `review`; a list holds 12 at most).
PROMPT_STARTERS = 6
#: Teams shows a command's title in one short line.
MAX_STARTER_TITLE = 32
MANIFEST_SCHEMA = (
    "https://developer.microsoft.com/en-us/json-schemas/teams/"
    f"v{MANIFEST_VERSION}/MicrosoftTeams.schema.json"
)
ACCENT = (0x1F, 0x6F, 0xB2)
COLOR_ICON = "color.png"
OUTLINE_ICON = "outline.png"
_DOMAIN = re.compile(r"^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:\d+)?$")

Pixel = tuple[int, int, int, int]


class PackageError(ValueError):
    """The settings cannot make a package Teams accepts; the message says which to fix."""


# -- icons -------------------------------------------------------------------------------------
def png(width: int, height: int, pixel: Callable[[int, int], Pixel]) -> bytes:
    """An RGBA PNG whose pixel (x, y) is `pixel(x, y)`."""
    raw = bytearray()
    for y in range(height):
        raw.append(0)  # filter type: none
        for x in range(width):
            raw.extend(pixel(x, y))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(raw), 9))
        + chunk(b"IEND", b"")
    )


def _page(x: float, y: float) -> str:
    """Where (x, y) in the unit square falls on the page drawing: "", "page", "edge" or "line"."""
    left, right, top, bottom, fold = 0.28, 0.72, 0.2, 0.8, 0.12
    if not (left <= x <= right and top <= y <= bottom):
        return ""
    if x - (right - fold) > y - top:  # the folded-over top right corner is cut away
        return ""
    edge = 0.045
    near_edge = (
        x - left < edge
        or right - x < edge
        or bottom - y < edge
        or y - top < edge
        or abs((x - (right - fold)) - (y - top)) < edge
    )
    for line_top in (0.38, 0.5, 0.62):
        if line_top <= y <= line_top + 0.045 and left + 0.09 <= x <= right - 0.09:
            return "line"
    return "edge" if near_edge else "page"


def color_icon(size: int = 192) -> bytes:
    white: Pixel = (255, 255, 255, 255)
    accent: Pixel = (*ACCENT, 255)

    def pixel(x: int, y: int) -> Pixel:
        part = _page((x + 0.5) / size, (y + 0.5) / size)
        return accent if part in ("", "line") else white

    return png(size, size, pixel)


def outline_icon(size: int = 32) -> bytes:
    white: Pixel = (255, 255, 255, 255)
    clear: Pixel = (0, 0, 0, 0)

    def pixel(x: int, y: int) -> Pixel:
        part = _page((x + 0.5) / size, (y + 0.5) / size)
        return white if part in ("edge", "line") else clear

    return png(size, size, pixel)


# -- manifest ----------------------------------------------------------------------------------
def _short(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def _domains(settings: Settings) -> list[str]:
    domains = []
    for raw in settings.teams_valid_domains:
        domain = re.sub(r"^https?://", "", raw).rstrip("/")
        if not _DOMAIN.match(domain):
            raise PackageError(
                f"POLICYBOT_TEAMS_VALID_DOMAINS: {raw!r} is not a host name (e.g. bot.example.com)"
            )
        domains.append(domain)
    return domains


def manifest(
    settings: Settings,
    *,
    developer: str = "",
    website: str = "",
    version: str = "1.0.0",
    starters: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """The app manifest; `starters` are (topic, question) pairs, shown in the personal chat
    as prompt starters that ask the question when chosen."""
    app_id = settings.microsoft_app_id.strip()
    if not app_id:
        raise PackageError(
            f"set {TEAMS_CLIENT_ID} (the Azure Bot's app id, formerly MicrosoftAppId) to build "
            "the package"
        )
    try:
        uuid.UUID(app_id)
    except ValueError:
        raise PackageError(f"{TEAMS_CLIENT_ID} must be a GUID, got {app_id!r}") from None
    name = settings.teams_app_name.strip()
    if not name or len(name) > 30:
        raise PackageError("POLICYBOT_TEAMS_APP_NAME must be 1 to 30 characters")
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise PackageError(f"the version must look like 1.0.0, got {version!r}")
    domains = _domains(settings)
    website = website or (f"https://{domains[0]}/" if domains else "")
    if not website.startswith("https://"):
        raise PackageError(
            "give --website https://... or set POLICYBOT_TEAMS_VALID_DOMAINS "
            "(the host that serves /api/messages); Teams needs https links"
        )
    description = " ".join(settings.teams_app_description.split())
    commands: list[dict[str, str]] = [
        {"title": "help", "description": "What I can do and how to ask"},
        {"title": "review", "description": "Open questions (policy team only)"},
    ]
    prompts = [
        {
            "title": _short(topic, MAX_STARTER_TITLE),
            "description": question[:4000],
            "type": "prompt",
            "prompt": question[:4000],
        }
        for topic, question in starters[:PROMPT_STARTERS]
    ]
    return {
        "$schema": MANIFEST_SCHEMA,
        "manifestVersion": MANIFEST_VERSION,
        "version": version,
        "id": app_id,
        "developer": {
            "name": developer or name,
            "websiteUrl": website,
            "privacyUrl": website,
            "termsOfUseUrl": website,
        },
        "name": {"short": name, "full": name},
        "description": {"short": _short(description, 80), "full": description[:4000]},
        "icons": {"color": COLOR_ICON, "outline": OUTLINE_ICON},
        "accentColor": "#{:02X}{:02X}{:02X}".format(*ACCENT),
        "bots": [
            {
                "botId": app_id,
                "scopes": ["personal", "team", "groupChat"],
                "isNotificationOnly": False,
                "supportsFiles": True,  # admins attach policy files in personal chat
                "commandLists": [
                    {"scopes": ["personal"], "commands": [*prompts, *commands]},
                    {"scopes": ["team", "groupChat"], "commands": commands[:1]},
                ],
            }
        ],
        "permissions": ["identity", "messageTeamMembers"],
        "validDomains": domains,
    }


def package_bytes(settings: Settings, **options: Any) -> bytes:
    data = manifest(settings, **options)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(data, indent=2, ensure_ascii=False))
        archive.writestr(COLOR_ICON, color_icon())
        archive.writestr(OUTLINE_ICON, outline_icon())
    return buffer.getvalue()


def write_package(settings: Settings, path: Path, **options: Any) -> Path:
    """Build everything first, so a settings problem never leaves a half-written zip."""
    data = package_bytes(settings, **options)
    path.write_bytes(data)
    return path
