"""`policybot teams-package` and the Microsoft app settings it and the adapter rely on."""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from adapters.teams import package as teams_package
from bot.cli import main
from bot.config import ConfigError, Settings
from bot.core import PolicyBot

APP_ID = "11111111-2222-3333-4444-555555555555"
ENV = {
    "MicrosoftAppId": APP_ID,
    "MicrosoftAppPassword": "secret",
    "POLICYBOT_TEAMS_VALID_DOMAINS": "policybot.example.com",
}


def decode_png(data: bytes) -> tuple[int, int, list[tuple[int, ...]]]:
    """Width, height and RGBA pixels of an unfiltered 8-bit RGBA PNG (what we write)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body)
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color_type = struct.unpack(">IIBB", header[:10])
    assert (depth, color_type) == (8, 6)
    raw = zlib.decompress(idat)
    stride = 1 + 4 * width
    pixels: list[tuple[int, ...]] = []
    for y in range(height):
        row = raw[y * stride : (y + 1) * stride]
        assert row[0] == 0
        pixels.extend(tuple(row[1 + 4 * x : 5 + 4 * x]) for x in range(width))
    return width, height, pixels


def test_cli_writes_an_uploadable_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POLICYBOT_TEAMS_APP_NAME", "Ask Policy")
    out = tmp_path / "teams.zip"
    db = str(tmp_path / "package.db")  # the prompt starters come from its active policy
    result = CliRunner().invoke(main, ["--db", db, "teams-package", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Upload" in result.output
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(archive.read("manifest.json"))
        color = decode_png(archive.read("color.png"))
        outline = decode_png(archive.read("outline.png"))
    assert manifest["id"] == APP_ID and manifest["bots"][0]["botId"] == APP_ID
    assert manifest["name"] == {"short": "Ask Policy", "full": "Ask Policy"}
    assert manifest["validDomains"] == ["policybot.example.com"]
    assert manifest["developer"]["websiteUrl"] == "https://policybot.example.com/"
    assert set(manifest["bots"][0]["scopes"]) == {"personal", "team", "groupChat"}
    assert manifest["bots"][0]["supportsFiles"] is True  # admins send policy files
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}
    assert len(manifest["description"]["short"]) <= 80

    assert color[:2] == (192, 192)
    assert {p[3] for p in color[2]} == {255}  # the colour icon is opaque
    assert len(set(color[2])) == 2  # accent and white
    assert outline[:2] == (32, 32)
    # Teams requires the outline icon to be white on transparent, nothing else.
    assert set(outline[2]) == {(255, 255, 255, 255), (0, 0, 0, 0)}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "set CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID"),
        ({"MicrosoftAppId": "not-a-guid", "MicrosoftAppPassword": "x"}, "must be a GUID"),
        ({"MicrosoftAppId": APP_ID, "MicrosoftAppPassword": "x"}, "--website"),
        ({**ENV, "POLICYBOT_TEAMS_VALID_DOMAINS": "bad domain/with path"}, "not a host name"),
        ({**ENV, "POLICYBOT_TEAMS_APP_NAME": "x" * 31}, "1 to 30 characters"),
    ],
)
def test_cli_explains_what_to_set_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name in (*ENV, "POLICYBOT_TEAMS_APP_NAME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "teams.zip"
    db = tmp_path / "package.db"
    result = CliRunner().invoke(main, ["--db", str(db), "teams-package", "--out", str(out)])
    assert result.exit_code == 2
    assert message in result.output
    assert not out.exists() and not db.exists()  # nor was a database made for the starters


def test_long_descriptions_are_shortened_at_a_word() -> None:
    settings = Settings(
        microsoft_app_id=APP_ID,
        microsoft_app_password="x",
        teams_app_description="Answers questions about the policy " * 10,
    )
    manifest = teams_package.manifest(settings, website="https://example.com/")
    short = manifest["description"]["short"]
    assert len(short) <= 80 and short.endswith("…")
    assert settings.teams_app_description.startswith(short[:-1] + " ")  # cut between words
    assert manifest["validDomains"] == []


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MicrosoftAppType": "Personal"}, "MicrosoftAppType must be"),
        (
            {
                "MicrosoftAppType": "SingleTenant",
                "MicrosoftAppId": APP_ID,
                "MicrosoftAppPassword": "x",
            },
            "needs CONNECTIONS__SERVICE_CONNECTION__SETTINGS__TENANTID",
        ),
        (
            {"MicrosoftAppType": "UserAssignedMSI"},
            "needs CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID",
        ),
    ],
)
def test_microsoft_app_settings_are_checked_at_start(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_microsoft_and_teams_settings_are_read() -> None:
    settings = Settings.from_env(
        {
            "MicrosoftAppType": "SingleTenant",
            "MicrosoftAppId": APP_ID,
            "MicrosoftAppPassword": "x",
            "MicrosoftAppTenantId": "tenant",
            "POLICYBOT_TEAMS_POLICY_TEAM": "aad-1, aad-2",
            "POLICYBOT_TEAMS_VALID_DOMAINS": "a.example.com,b.example.com",
        }
    )
    assert settings.teams_policy_team == ("aad-1", "aad-2")
    assert settings.teams_valid_domains == ("a.example.com", "b.example.com")
    assert settings.microsoft_app_tenant_id == "tenant"
    assert Settings.from_env({}).teams_app_name == "PolicyBot"


# -- the manifest against Microsoft's published schema -------------------------------------------
#: Microsoft's Teams app manifest schema, v1.29, from github.com/OfficeDev/microsoft-teams-app-schema
#: (MicrosoftTeams.schema.json at commit a2a2ebc36df721a55ffbf8542f003fb4343952bd, MIT licence:
#: tests/schemas/teams/LICENSE); tests cannot fetch it, so it is shipped.
SCHEMA = Path(__file__).parent / "schemas" / "teams" / "MicrosoftTeams.v1.29.schema.json"


def test_the_manifest_is_valid_under_microsofts_published_schema(bot: PolicyBot) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert schema["properties"]["manifestVersion"]["const"] == teams_package.MANIFEST_VERSION
    settings = Settings.from_env(ENV)
    starters = bot.prompt_starters(teams_package.PROMPT_STARTERS)
    manifest = teams_package.manifest(settings, starters=starters)
    errors = sorted(
        jsonschema.Draft4Validator(schema).iter_errors(manifest), key=lambda e: list(e.path)
    )
    assert errors == [], [f"{list(e.path)}: {e.message}" for e in errors]
    assert manifest["manifestVersion"] == teams_package.MANIFEST_VERSION
    assert teams_package.MANIFEST_VERSION in manifest["$schema"]


def test_prompt_starters_are_questions_about_the_active_policys_sections(bot: PolicyBot) -> None:
    starters = bot.prompt_starters(teams_package.PROMPT_STARTERS)
    assert 1 <= len(starters) <= teams_package.PROMPT_STARTERS
    titles = {
        stored.clause.section_title
        for version in bot.storage.active_versions()
        for stored in bot.storage.clauses([version.id])
    }
    assert all(topic in titles for topic, _ in starters)
    assert len({topic for topic, _ in starters}) == len(starters)  # one per section
    manifest = teams_package.manifest(Settings.from_env(ENV), starters=starters)
    personal, channels = manifest["bots"][0]["commandLists"]
    prompts = [c for c in personal["commands"] if c.get("type") == "prompt"]
    assert [p["prompt"] for p in prompts] == [question for _, question in starters]
    assert all(len(p["title"]) <= teams_package.MAX_STARTER_TITLE for p in prompts)
    # help and review stay, after the starters; channels keep help only.
    assert [c["title"] for c in personal["commands"][len(prompts) :]] == ["help", "review"]
    assert [c["title"] for c in channels["commands"]] == ["help"]


def test_the_cli_package_carries_the_prompt_starters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "teams.zip"
    db = tmp_path / "package.db"
    result = CliRunner().invoke(main, ["--db", str(db), "teams-package", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    personal = manifest["bots"][0]["commandLists"][0]["commands"]
    assert any(c.get("type") == "prompt" for c in personal)
