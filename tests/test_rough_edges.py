"""The rough edges a new admin hit: console commands, ratings, listing limits, the digest's
report, numeric settings, console deliveries, the Teams secret, CLI wording, oversized files."""

from __future__ import annotations

import io
import json
import os
import re
import select
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from adapters.console import chat
from adapters.server import build_app
from bench.speed import stop_process
from bot import config, messages
from bot.config import ConfigError, Settings
from bot.core import PolicyBot
from bot.models import Actor, IncomingQuestion
from bot.store.database import Storage
from tests.conftest import RunCli
from tests.reliability import record

COVERED = "can I post pictures from the team offsite on instagram?"
NOT_COVERED = "what time does the cafeteria open?"


class Posts:
    """A review channel that keeps what it was given."""

    def __init__(self) -> None:
        self.notices: list[object] = []

    async def post(self, notice: object) -> None:
        self.notices.append(notice)


async def test_an_unknown_console_command_gets_the_help_and_is_not_asked(bot: PolicyBot) -> None:
    stdout = io.StringIO()
    await chat(bot, io.StringIO("!foo\n!HELPFULL please\n!quit\n"), stdout)
    out = stdout.getvalue()
    help_text = messages.console_help(bot.example_question())
    assert out.count(help_text) == 3  # on opening, then once per unknown command
    assert "!foo" in out and "!HELPFULL" in out
    assert bot.storage.questions() == []  # neither went on the log or the review list


async def test_a_not_covered_reply_takes_no_rating_and_a_rating_counts_once(
    bot: PolicyBot,
) -> None:
    channel = Posts()
    bot.review_posters["console"] = channel
    told: list[str] = []

    async def tell(text: str) -> None:
        told.append(text)

    asker = Actor("console", "someone")
    uncovered = await bot.ask(IncomingQuestion(NOT_COVERED, platform="console"))
    assert uncovered.question_id is not None and not uncovered.answered
    before = bot.storage.question(uncovered.question_id)
    for rating in ("helpful", "not_helpful"):
        assert not await bot.react_to_answer(asker, uncovered.question_id, rating, tell)
    assert told == [messages.NOTHING_TO_RATE] * 2 and channel.notices == []
    assert bot.storage.question(uncovered.question_id).feedback == before.feedback

    told.clear()
    answer = await bot.ask(IncomingQuestion(COVERED, platform="console"))
    assert answer.question_id is not None and answer.answered
    for _ in range(3):
        await bot.react_to_answer(asker, answer.question_id, "not_helpful", tell)
    assert told == [
        messages.REACTION_NOTES["not_helpful"],
        messages.ALREADY_NOTED["not_helpful"],
        messages.ALREADY_NOTED["not_helpful"],
    ]
    assert len(channel.notices) == 1  # the review channel is told once
    assert bot.react(answer.question_id, "not_helpful") is None  # the adapters' path as well
    # Changing one's mind is a new reaction, taken.
    told.clear()
    assert await bot.react_to_answer(asker, answer.question_id, "helpful", tell)
    assert told == [messages.REACTION_NOTES["helpful"]]


async def test_a_reviewed_answer_reaches_a_console_asker_when_their_chat_opens(
    bot: PolicyBot,
) -> None:
    first = io.StringIO()
    await chat(bot, io.StringIO(NOT_COVERED + "\n!quit\n"), first, asker="alex")
    (row,) = bot.storage.questions()
    assert row.status == "open"
    report = await bot.answer_group(row.group_id or 0, "The cafeteria opens at 8.", "policy team")
    assert report.waiting == {"console": 1}  # nobody at the terminal to tell yet

    someone_else = io.StringIO()
    await chat(bot, io.StringIO("!quit\n"), someone_else, asker="sam")
    assert "cafeteria opens at 8" not in someone_else.getvalue()

    again = io.StringIO()
    await chat(bot, io.StringIO("!quit\n"), again, asker="alex")
    assert "The cafeteria opens at 8." in again.getvalue()
    assert bot.storage.pending_deliveries() == []  # delivered once, its address deleted
    once_more = io.StringIO()
    await chat(bot, io.StringIO("!quit\n"), once_more, asker="alex")
    assert "cafeteria opens at 8" not in once_more.getvalue()


def numeric_variables() -> list[tuple[str, str]]:
    """Every variable `Settings.from_env` reads as a number, and how (`_int` or `_float`)."""
    source = Path(config.__file__).read_text(encoding="utf-8")
    return re.findall(r'_(int|float)\(env, "([A-Z_]+)"', source)


def test_every_numeric_setting_is_checked_at_start_up_with_its_range() -> None:
    variables = numeric_variables()
    assert len(variables) >= 11 and ("int", "POLICYBOT_MAX_UPLOAD_BYTES") in variables
    for kind, variable in variables:
        too_large = "99999999999" if kind == "int" else "1e12"
        refused = ["-5", too_large] + (["nan", "inf"] if kind == "float" else [])
        for value in refused:
            with pytest.raises(ConfigError, match=rf"{variable} must be .* at most") as raised:
                Settings.from_env({variable: value})
            assert "got" in str(raised.value)
    with pytest.raises(ConfigError, match=r"at least 1,024 and at most .* bytes, got -5"):
        Settings.from_env({"POLICYBOT_MAX_UPLOAD_BYTES": "-5"})
    assert Settings.from_env({"POLICYBOT_MAX_UPLOAD_BYTES": "2048"}).max_upload_bytes == 2048


APP_ID = "00000000-0000-4000-8000-000000000001"


def test_a_missing_teams_password_stops_only_what_talks_to_teams(
    run: RunCli, tmp_path: Path
) -> None:
    without_password = {"MicrosoftAppId": APP_ID, "MicrosoftAppPassword": ""}
    asked = run("ask", "--json", COVERED, env=without_password)
    assert asked.exit_code == 0, asked.output
    package = tmp_path / "teams.zip"
    packaged = run(
        "teams-package",
        "--out",
        str(package),
        "--website",
        "https://example.com/",
        env=without_password,
    )
    assert packaged.exit_code == 0, packaged.output
    assert package.exists()
    # Where the bot would speak to Teams, it says what is missing.
    digest = run("digest", env={**without_password, "POLICYBOT_DIGEST_TEAMS_CONVERSATION": "19:x"})
    assert digest.exit_code == 0
    assert (
        "teams: not connected: CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID (formerly MicrosoftAppId) is set"
        in digest.output
    )
    bot = PolicyBot.create(
        Settings(db_path=str(tmp_path / "serve.db"), microsoft_app_id=APP_ID),
        storage=Storage.memory(),
    )
    with pytest.raises(ConfigError, match=r"formerly MicrosoftAppPassword\) is needed"):
        build_app(bot, host="127.0.0.1")
    bot.storage.close()


def test_questions_list_says_when_it_stops_at_the_limit(run: RunCli) -> None:
    questions = "".join(f"may I post photo number {n} from the offsite?\n" for n in range(4))
    assert run("ask", "--json", "-", stdin=questions).exit_code == 0
    cut = run("questions", "list", "--json", "--limit", "3")
    lines = [line for line in cut.stdout.splitlines() if line.strip()]
    assert len(lines) == 3 and all(json.loads(line)["id"] for line in lines)
    assert "showing the first 3 questions" in cut.stderr and "--limit" in cut.stderr
    whole = run("questions", "list", "--json", "--limit", "4")
    assert len(whole.stdout.splitlines()) == 4 and whole.stderr == ""


def test_an_unknown_owner_is_named_with_the_teams_there_are(run: RunCli) -> None:
    assert run("ask", NOT_COVERED).exit_code == 0
    unknown = run("questions", "list", "--owner", "Finance")
    assert unknown.exit_code == 2
    assert "no team called 'Finance'" in unknown.stderr and "unrouted" in unknown.stderr
    assert run("questions", "list", "--owner", "unrouted").exit_code == 0
    assert run("questions", "list", "--owner", "HR").exit_code == 0  # initials still work
    assert "Human Resources" in unknown.stderr


def test_dismissing_one_question_says_one_question(run: RunCli) -> None:
    assert run("ask", NOT_COVERED).exit_code == 0
    (group,) = (
        json.loads(line)
        for line in run("questions", "list", "--groups", "--json").stdout.splitlines()
    )
    dismissed = run("questions", "dismiss", str(group["id"]))
    assert "(1 question)" in dismissed.stdout and "questions)" not in dismissed.stdout


def test_digest_without_channels_says_per_platform_it_was_not_posted(run: RunCli) -> None:
    result = run("digest")
    assert result.exit_code == 0, result.output
    assert "slack: not posted; POLICYBOT_DIGEST_SLACK_CHANNEL is not set." in result.stderr
    assert "teams: not posted; POLICYBOT_DIGEST_TEAMS_CONVERSATION is not set." in result.stderr


def test_serve_says_where_it_listens_once_the_port_is_bound(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("POLICYBOT_", "Microsoft", "SLACK_", "OPENAI_"))
    }
    env.update(POLICYBOT_DB=str(tmp_path / "serve.db"), POLICYBOT_RETRIEVER="lexical")
    command = [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1"]
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        # A start-up limit, not a timing: a build that never says it is listening fails here.
        readable, _, _ = select.select([process.stdout], [], [], 60)
        assert readable, "serve printed nothing within 60 s"
        line = process.stdout.readline()
        assert line.strip() == f"policybot: listening on http://127.0.0.1:{port}"
        # Said once bound: the port answers now.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30) as response:
            assert response.status == 200
    finally:
        stop_process(process)
        if process.stdout is not None:
            process.stdout.close()
    assert messages.listening_on("0.0.0.0", 8080).endswith(":8080 (all interfaces)")
    assert "http://[::1]:8080" in messages.listening_on("::1", 8080)


#: Runs `policybot ARGS` and, on the way out, writes the process's peak resident memory (kB)
#: to stderr: VmHWM starts afresh at exec, unlike the rusage figures a fork inherits.
PEAK_REPORTING = """
import atexit, runpy, sys
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            print("peak-kB", line.split()[1], file=sys.stderr)
atexit.register(peak)
sys.argv = ["policybot", *sys.argv[1:]]
runpy.run_module("bot.cli", run_name="__main__")
"""


def peak_memory_of_policy_load(file: Path, tmp_path: Path, limit: int) -> tuple[int, str]:
    """`policybot policy load FILE` in a process of its own: its peak resident memory in kB,
    and what it said."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("POLICYBOT_")}
    env.update(POLICYBOT_DB=str(tmp_path / "load.db"), POLICYBOT_MAX_UPLOAD_BYTES=str(limit))
    result = subprocess.run(
        [sys.executable, "-c", PEAK_REPORTING, "policy", "load", str(file)],
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 3, result.stderr
    (peak,) = re.findall(r"peak-kB (\d+)", result.stderr)
    return int(peak), result.stderr


def test_a_file_over_the_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    limit = 2**20
    just_over, huge = tmp_path / "just-over.md", tmp_path / "huge.md"
    for file, size in ((just_over, limit + 1), (huge, 80 * 2**20)):
        with file.open("wb") as out:
            out.truncate(size)  # sparse: the disk holds nothing, reading it would fill memory
    small_peak, _ = peak_memory_of_policy_load(just_over, tmp_path, limit)
    huge_peak, said = peak_memory_of_policy_load(huge, tmp_path, limit)
    assert "huge.md is larger than the 1 MB upload limit" in said
    # Reading the 80 MB would add at least that much; refusing by its size adds nothing.
    assert huge_peak - small_peak < 40 * 1024, (small_peak, huge_peak)
    record(
        "Bad input: policy load refuses a file over the limit before reading it",
        "pytest tests/test_rough_edges.py -k over_the_limit",
        file_mb=80,
        limit_mb=1,
        peak_kb_just_over_limit=small_peak,
        peak_kb_80_mb_file=huge_peak,
    )
