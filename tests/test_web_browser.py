"""The web console in a real browser: Debian's headless Chromium (tests/browser.py) driving a
real `policybot serve` on 127.0.0.1 as a person would, by clicking links and buttons, typing
and submitting forms, waiting on what the page shows (never sleeping):

1. signing in through the fake Entra ID and the fake Slack provider from the sign-in page;
2. answering a group a Slack asker's question (sent through the fake Slack Web API) made, the
   asker notified through that API, the queue no longer listing it;
3. uploading a DOCX through the file input, reading its diff, activating it, reading the
   re-check, and the next answer coming from the new version;
4. the trend charts' counts for known questions, and the CSV link's numbers;
5. the keyboard (the skip link, then the header's controls by Tab), every control labelled,
   and no page scrolling sideways at a phone's width.

Selenium blocks, and the server runs on the test's event loop: every browser step runs in a
thread (`asyncio.to_thread`) so the server answers meanwhile. Each test writes screenshots
(docs/screenshots/, only under POLICYBOT_SCREENSHOTS=1, as `make screenshots` sets).
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import docx
import httpx
import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.ui import WebDriverWait

from bot.config import Settings
from bot.models import IncomingQuestion
from tests.browser import PHONE, screenshot
from tests.documents import docx_bytes
from tests.fakes.oidc import FakeProvider, fake_provider
from tests.fakes.slack_harness import all_text, slack_server
from tests.reliability import percentiles, record
from tests.test_web_auth import (
    ENTRA_CLIENT,
    ENTRA_SECRET,
    PAT_OID,
    SLACK_ADMIN,
    SLACK_CLIENT,
    SLACK_SECRET,
    TENANT,
    WORKSPACE,
    with_providers,
)
from tests.trend_data import SINCE, UNTIL, WEEKS, known_weeks
from tests.web import ConsoleServer, console_server, new_link

pytestmark = pytest.mark.browser

COMMAND = "POLICYBOT_SCREENSHOTS=1 .venv/bin/pytest -q tests/test_web_browser.py"
REVIEWER = "U0REV"
ADMIN = "U0ADMIN"
CAFETERIA = "what time does the cafeteria open?"
DRONES = b"# Drones policy\n\n## 1. Drones\n\nEmployees must not fly drones over any office.\n"
#: How long a page may take to show what the test waits for (a ceiling, never a measure).
PATIENCE = 20
T = TypeVar("T")


@dataclass
class Person:
    """Someone at the browser: every step finds what a person would see and acts on it."""

    session: WebDriver
    base_url: str
    #: How long each page took to show what was waited for (reported, never asserted).
    waits_ms: list[float] = field(default_factory=list)
    pages: int = 0

    def wait(self, condition: Callable[[WebDriver], T]) -> T:
        started = time.perf_counter()
        found = WebDriverWait(self.session, PATIENCE).until(condition)
        self.waits_ms.append((time.perf_counter() - started) * 1000)
        return found

    def element(self, condition: Callable[[WebDriver], Any]) -> WebElement:
        found = self.wait(condition)
        assert isinstance(found, WebElement)
        return found

    def shown(self, css: str) -> WebElement:
        return self.element(seen.visibility_of_element_located((By.CSS_SELECTOR, css)))

    def open(self, path: str) -> None:
        self.session.get(self.base_url + path)
        self.pages += 1

    def follow(self, link_text: str) -> None:
        """Click the link a person would read as `link_text`, and wait for the next page."""
        link = self.element(seen.element_to_be_clickable((By.LINK_TEXT, link_text)))
        self.click_and_wait(link)

    def click_and_wait(self, element: WebElement) -> None:
        """Click, then wait for the next page: the old one is marked first, so a page without
        the mark, fully loaded, is the new one. (Waiting for the clicked element to go stale
        races the navigation: Chromium may answer that with an inspector error instead.)"""
        self.session.execute_script(f"window.{PAGE_MARK} = true;")
        element.click()
        self.wait(next_page_loaded)
        self.pages += 1

    def press(self, css: str) -> None:
        self.click_and_wait(self.element(seen.element_to_be_clickable((By.CSS_SELECTOR, css))))

    def type_into(self, label: str, text: str) -> WebElement:
        """Type into the control whose <label> reads `label` (found through the label)."""
        label_element = self.session.find_element(
            By.XPATH, f"//label[normalize-space()={xpath_string(label)}]"
        )
        control = self.session.find_element(By.ID, label_element.get_attribute("for") or "")
        control.clear()
        control.send_keys(text)
        return control

    def text(self, css: str) -> str:
        return self.shown(css).text

    def user_name(self) -> str:
        return self.text(".who .user-name")


PAGE_MARK = "policybotOldPage"


def next_page_loaded(session: WebDriver) -> bool:
    try:
        return bool(
            session.execute_script(
                f"return window.{PAGE_MARK} === undefined && document.readyState === 'complete'"
            )
        )
    except WebDriverException:  # asked while the browser swaps the documents
        return False


def xpath_string(text: str) -> str:
    assert '"' not in text
    return f'"{text}"'


@pytest.fixture
def person_session(chromium: WebDriver) -> Iterator[WebDriver]:
    """The session's Chromium with no cookies from an earlier test (cookies on 127.0.0.1 are
    shared by every port) and at desktop width."""
    chromium.execute_cdp_cmd("Network.clearBrowserCookies", {})
    chromium.set_window_size(1280, 900)
    yield chromium
    chromium.execute_cdp_cmd("Network.clearBrowserCookies", {})


async def in_browser(step: Callable[..., T], *args: Any) -> T:
    """A browser step in a thread, so the server on this event loop answers meanwhile."""
    return await asyncio.to_thread(step, *args)


def shots(person: Person, name: str, *, phone: bool = False) -> None:
    """The page at desktop width, and with `phone` at a phone's too (one per test)."""
    screenshot(person.session, name)
    if phone:
        screenshot(person.session, f"{name}-phone", size=PHONE)


def session_cookies(person: Person) -> dict[str, str]:
    return {str(c["name"]): str(c["value"]) for c in person.session.get_cookies()}


# -- 1. signing in through each identity provider -------------------------------------------
@asynccontextmanager
async def providers() -> AsyncIterator[tuple[FakeProvider, FakeProvider]]:
    async with (
        fake_provider(
            "entra", client_id=ENTRA_CLIENT, client_secret=ENTRA_SECRET, tenant=TENANT
        ) as entra,
        fake_provider(
            "slack", client_id=SLACK_CLIENT, client_secret=SLACK_SECRET, tenant=WORKSPACE
        ) as slack,
    ):
        entra.user = {"oid": PAT_OID, "name": "Pat Policy"}
        slack.user = {"https://slack.com/user_id": SLACK_ADMIN, "name": "Sam Admin"}
        yield entra, slack


def sign_in_from_the_page(person: Person, button: str, shot: str = "") -> str:
    """From the console's address, signed out: the sign-in page, the provider's button, and
    back on the console; the name the header shows."""
    person.open("/console/")
    person.shown("h1")
    assert person.session.current_url.endswith("/console/sign-in")
    if shot:
        shots(person, shot, phone=True)
    person.follow(button)
    person.shown(".who .user-name")
    assert person.session.current_url == person.base_url + "/console/"
    return person.user_name()


def sign_out(person: Person) -> None:
    person.press(".who button[type=submit]")
    assert person.session.current_url.endswith("/console/sign-in")


async def test_signing_in_with_entra_id_and_with_slack_from_the_sign_in_page(
    settings: Settings, person_session: WebDriver
) -> None:
    async with (
        providers() as (entra, slack),
        console_server(with_providers(settings, entra, slack), public_url=True) as server,
    ):
        person = Person(person_session, server.base_url)
        entra_name = await in_browser(
            sign_in_from_the_page, person, "Sign in with Microsoft", "sign-in"
        )
        await in_browser(shots, person, "overview")
        await in_browser(sign_out, person)
        slack_name = await in_browser(sign_in_from_the_page, person, "Sign in with Slack")
        await in_browser(sign_out, person)
        assert entra.authorize_requests == 1 and slack.authorize_requests == 1
    assert (entra_name, slack_name) == ("Pat Policy", "Sam Admin")
    record(
        "Console in Chromium: sign in with Entra ID and with Slack",
        COMMAND + " -k signing_in",
        sign_ins=2,
        landed_on_console_with_name=2,
        signed_out=2,
        pages=person.pages,
        **percentiles(person.waits_ms),
    )


# -- 2. answering a group -------------------------------------------------------------------
def sign_in_by_link(person: Person, link: str) -> None:
    person.open(link)
    person.shown(".who .user-name")


def answer_the_group(person: Person, question: str, answer: str) -> str:
    """From the overview: the review queue, the group, a preview, then send; the preview."""
    person.follow("Review")
    person.shown("#queue-table")
    shots(person, "review-queue")
    person.follow(question)
    person.shown("#group-heading")
    asked = person.session.find_element(By.XPATH, "//dt[.='Asked']/following-sibling::dd[1]")
    assert asked.text.startswith("once, first"), asked.text
    person.type_into(
        person.session.find_element(By.CSS_SELECTOR, "label[for=answer-text]").text, answer
    )
    person.press("#preview-answer")
    preview = person.text("#answer-preview pre.preview")
    # The draft is kept in the box after a preview, so sending sends what was previewed.
    assert person.shown("#answer-text").get_attribute("value") == answer
    shots(person, "review-group", phone=True)
    person.press("#send-answer")
    return preview


def queue_rows(person: Person) -> list[str]:
    person.follow("Review")
    person.shown("#review-queue")
    return [
        row.get_attribute("id") or ""
        for row in person.session.find_elements(By.CSS_SELECTOR, "#queue-table tbody tr")
    ]


async def test_answering_a_group_in_the_browser_notifies_the_slack_asker(
    settings: Settings, person_session: WebDriver
) -> None:
    answer = "The cafeteria opens at 7 am on weekdays."
    async with slack_server(
        settings, slack_policy_team=(REVIEWER,), admins=(f"slack:{ADMIN}",)
    ) as slack:
        asked = await slack.dm(CAFETERIA, user="U0ASKER")
        assert asked.status_code == 200
        (reply,) = await slack.api.wait_for("chat.postMessage")
        assert reply["channel"] == "D0ASKER"
        server = ConsoleServer(slack.bot, str(slack.http.base_url).rstrip("/"))
        (group,) = await slack.bot.worker.run(slack.bot.review.queue, None)
        person = Person(person_session, server.base_url)
        await in_browser(sign_in_by_link, person, await new_link(server, as_=f"slack:{REVIEWER}"))
        preview = await in_browser(answer_the_group, person, CAFETERIA, answer)
        flash = await in_browser(person.text, ".flash")
        sent = (await slack.api.wait_for("chat.postMessage", 2))[1]
        rows = await in_browser(queue_rows, person)
    assert answer in preview
    assert sent["channel"] == "D0ASKER"
    assert answer in sent["text"] or answer in all_text(sent.get("blocks", []))
    assert flash
    assert f"group-row-{group.id}" not in rows
    record(
        "Console in Chromium: answer a group, the Slack asker notified",
        COMMAND + " -k answering",
        groups_answered=1,
        previews=1,
        slack_askers_notified=1,
        left_in_queue=len(rows),
        pages=person.pages,
        **percentiles(person.waits_ms),
    )


# -- 3. uploading, comparing and activating a DOCX ------------------------------------------
def drones_docx() -> bytes:
    """The drones policy's next version: its clause reworded, a cafeteria section added."""
    document = docx.Document()
    document.add_heading("Drones policy", 0)
    document.add_heading("1. Drones", 1)
    document.add_paragraph("Employees must not fly drones over any office or warehouse.")
    document.add_heading("2. Cafeteria", 1)
    document.add_paragraph("The staff cafeteria opens at 7 am and closes at 3 pm on weekdays.")
    return docx_bytes(document)


def upload_and_compare(person: Person, path: Path) -> dict[str, Any]:
    person.follow("Policies")
    person.shown("#upload-form")
    shots(person, "policies")
    file_input = person.session.find_element(By.ID, "policy-file")
    file_input.send_keys(str(path))
    person.press("#upload-policy")
    person.shown("#diff")
    shots(person, "policy-diff", phone=True)
    kinds = [cell.text for cell in person.session.find_elements(By.CSS_SELECTOR, "#diff tbody th")]
    return {
        "kinds": kinds,
        "inserted": [e.text for e in person.session.find_elements(By.CSS_SELECTOR, "#diff ins")],
        "deleted": [e.text for e in person.session.find_elements(By.CSS_SELECTOR, "#diff del")],
        "heading": person.text("#version-heading"),
    }


def activate_shown_version(person: Person) -> str:
    person.follow("Activate this version…")
    person.shown("#confirm-form")
    person.press("#confirm-form button[type=submit]")
    person.shown("#policies-heading")
    return person.text(".flash")


def recheck_results(person: Person) -> list[str]:
    person.follow("Policies")
    person.shown("#history-drones")
    shots(person, "policies-activated")
    return [e.text for e in person.session.find_elements(By.CSS_SELECTOR, "#history-drones li")]


async def test_uploading_a_docx_comparing_and_activating_it_in_the_browser(
    settings: Settings, person_session: WebDriver, tmp_path: Path
) -> None:
    async with console_server(
        settings, slack_policy_team=(REVIEWER,), admins=(f"slack:{ADMIN}",)
    ) as server:
        bot = server.bot
        await bot.worker.run(
            bot.policies.upload, "drones.md", DRONES, uploaded_by="t", activate=True
        )
        before = await bot.ask(IncomingQuestion(CAFETERIA, platform="slack", asker="U1"))
        assert not before.answered
        upload = tmp_path / "drones.docx"
        upload.write_bytes(drones_docx())
        person = Person(person_session, server.base_url)
        await in_browser(sign_in_by_link, person, await new_link(server, as_=f"slack:{ADMIN}"))
        diff = await in_browser(upload_and_compare, person, upload)
        flash = await in_browser(activate_shown_version, person)
        told: list[str] = []

        async def tell(text: str) -> None:
            told.append(text)

        await bot.when_rechecked(tell)
        results = await in_browser(recheck_results, person)
        after = await bot.ask(IncomingQuestion(CAFETERIA, platform="slack", asker="U2"))
    assert "Added" in diff["kinds"] and "Changed" in diff["kinds"]
    assert "office or warehouse." in diff["inserted"] and "office." in diff["deleted"]
    assert "v2" in diff["heading"] and "staged" in diff["heading"]
    assert "activated" in flash.lower() or "v2" in flash
    assert "1 open question now answered by §2 Cafeteria" in results
    assert after.answered and after.citations[0].reference.startswith("2")
    assert "drones" in after.policy_version and "v2" in after.policy_version
    record(
        "Console in Chromium: upload a DOCX, compare, activate",
        COMMAND + " -k uploading",
        docx_uploaded=1,
        diff_rows=len(diff["kinds"]),
        activated=1,
        rechecked_now_answered=1,
        pages=person.pages,
        **percentiles(person.waits_ms),
    )


# -- 4. the trends -------------------------------------------------------------------------
KIND_ATTRIBUTES = ("data-from-policy", "data-reviewed", "data-uncertain", "data-not-covered")
KIND_COLUMNS = ("answered_from_policy", "reviewed_answer", "uncertain", "not_covered")


def as_typed(iso_date: str) -> str:
    """An ISO date as a person types it into Chromium's (en-US) date field."""
    year, month, day = iso_date.split("-")
    return f"{month}{day}{year}"


def read_trends(person: Person) -> dict[str, Any]:
    person.follow("Trends")
    person.shown("#trends-heading")
    for label, day in (("From", SINCE), ("To", UNTIL)):
        typed = person.type_into(label, as_typed(day))
        assert typed.get_attribute("value") == day, f"the {label} field reads {day}"
    person.press("form.range button[type=submit]")
    person.shown("#chart-weekly")
    shots(person, "trends", phone=True)
    bars = {
        week: tuple(
            int(
                person.session.find_element(By.ID, f"chart-weekly-{week}").get_attribute(name) or -1
            )
            for name in KIND_ATTRIBUTES
        )
        for week in WEEKS
    }
    summary = person.session.find_element(By.CSS_SELECTOR, "#trend-weekly details summary")
    summary.click()  # the table is behind a disclosure, as a person opens it
    person.shown("#table-weekly")
    table = {
        row.find_element(By.TAG_NAME, "th").text: tuple(
            int(cell.text) for cell in row.find_elements(By.TAG_NAME, "td")[1:5]
        )
        for row in person.session.find_elements(By.CSS_SELECTOR, "#table-weekly tbody tr")
    }
    link = person.session.find_element(By.CSS_SELECTOR, "#trend-weekly a[download]").get_attribute(
        "href"
    )
    return {"bars": bars, "table": table, "csv": link, "cookies": session_cookies(person)}


async def test_the_trend_charts_show_the_known_counts_and_the_csv_link_agrees(
    settings: Settings, person_session: WebDriver
) -> None:
    async with console_server(settings, slack_policy_team=(REVIEWER,)) as server:
        await known_weeks(server.bot)
        person = Person(person_session, server.base_url)
        await in_browser(sign_in_by_link, person, await new_link(server, as_=f"slack:{REVIEWER}"))
        page = await in_browser(read_trends, person)
        async with httpx.AsyncClient(cookies=page["cookies"], timeout=30) as client:
            download = await client.get(page["csv"])
        async with httpx.AsyncClient(timeout=30) as no_session:
            anonymous = await no_session.get(page["csv"])
    assert page["bars"] == WEEKS
    assert page["table"] == WEEKS
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    from_csv = {
        row["week"]: tuple(int(row[column]) for column in KIND_COLUMNS)
        for row in csv.DictReader(io.StringIO(download.text))
    }
    assert from_csv == WEEKS
    assert anonymous.status_code in (303, 302) or "answered_from_policy" not in anonymous.text
    record(
        "Console in Chromium: trend chart counts and the CSV link",
        COMMAND + " -k trend_charts",
        weeks=len(WEEKS),
        questions=sum(sum(c) for c in WEEKS.values()),
        bars_matching=len(page["bars"]),
        csv_rows_matching=len(from_csv),
        pages=person.pages,
        **percentiles(person.waits_ms),
    )


# -- 5. keyboard, labels, and a phone's width -----------------------------------------------
#: Every console page a policy admin on the policy team reaches, by path.
PAGES = (
    "/console/",
    "/console/review",
    "/console/trends",
    "/console/policies",
    "/console/sessions",
)
UNLABELLED = """
return Array.from(document.querySelectorAll('input, select, textarea'))
  .filter(e => e.type !== 'hidden' && e.type !== 'submit' && e.type !== 'button')
  .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label')
               && !e.getAttribute('aria-labelledby'))
  .map(e => e.id || e.name || e.outerHTML.slice(0, 80));
"""
#: The page's width against the window's (innerWidth) and against what is visible of it
#: (clientWidth: the window less a vertical scrollbar, which headless Chromium draws).
WIDE = """
return [document.documentElement.scrollWidth,
        Math.min(window.innerWidth, document.documentElement.clientWidth)];
"""


LONG_ANSWER = (
    "The cafeteria opens at 7 am on weekdays; see https://intranet.example.com/facilities/"
    "cafeteria-opening-hours-and-holiday-schedule for the holiday hours."
)


def focused(person: Person) -> WebElement:
    element: WebElement = person.session.switch_to.active_element
    return element


def tab_through(person: Person) -> list[str]:
    """From the top of the overview, Tab by Tab: what each press puts the focus on."""
    person.open("/console/")
    person.shown("#main")
    reached = []
    body = person.session.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    for _ in range(8):
        element = focused(person)
        reached.append(element.text.strip() or element.get_attribute("aria-label") or "")
        element.send_keys(Keys.TAB)
    return reached


def skip_link_moves_focus(person: Person) -> str:
    person.open("/console/")
    person.shown("#main")
    person.session.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    skip = focused(person)
    assert skip.text == "Skip to content"
    skip.send_keys(Keys.ENTER)
    person.wait(lambda s: s.switch_to.active_element.get_attribute("id") == "main")
    return str(focused(person).get_attribute("id"))


def every_page(person: Person, group_id: int, version_id: int) -> dict[str, Any]:
    paths = [*PAGES, f"/console/review/{group_id}", f"/console/policies/versions/{version_id}"]
    unlabelled: dict[str, list[str]] = {}
    too_wide: dict[str, list[int]] = {}
    for path in paths:
        person.open(path)
        person.shown("#main h1")
        unlabelled[path] = person.session.execute_script(UNLABELLED)
        if path == "/console/sessions":
            shots(person, "sessions")
        if path == "/console/review":
            screenshot(person.session, "review-queue-phone", size=PHONE)
    person.session.set_window_size(*PHONE)
    try:
        for path in [*paths, "/console/sign-in"]:
            if path == "/console/sign-in":
                person.session.execute_cdp_cmd("Network.clearBrowserCookies", {})
            person.open(path)
            person.shown("#main h1")
            if path == f"/console/review/{group_id}":
                # With the preview shown: the text each asker will be sent, line for line.
                person.type_into(
                    person.session.find_element(By.CSS_SELECTOR, "label[for=answer-text]").text,
                    LONG_ANSWER,
                )
                person.press("#preview-answer")
                person.shown("#answer-preview")
                path += " (preview)"
            scroll_width, inner_width = person.session.execute_script(WIDE)
            if scroll_width > inner_width:
                too_wide[path] = [scroll_width, inner_width]
    finally:
        person.session.set_window_size(1280, 900)
    return {"unlabelled": unlabelled, "too_wide": too_wide, "pages": len(paths) + 1}


async def test_keyboard_labels_and_a_phone_width_on_every_page(
    settings: Settings, person_session: WebDriver
) -> None:
    async with console_server(
        settings, slack_policy_team=(REVIEWER,), admins=(f"slack:{REVIEWER}",)
    ) as server:
        bot = server.bot
        await bot.ask(IncomingQuestion(CAFETERIA, platform="slack", asker="U1"))
        (group,) = await bot.worker.run(bot.review.queue, None)
        (version,) = await bot.worker.run(bot.active_versions)
        person = Person(person_session, server.base_url)
        await in_browser(sign_in_by_link, person, await new_link(server, as_=f"slack:{REVIEWER}"))
        reached = await in_browser(tab_through, person)
        landed = await in_browser(skip_link_moves_focus, person)
        checked = await in_browser(every_page, person, group.id, version.id)
    assert reached[:7] == [
        "Skip to content",
        "policybot console",
        "Review",
        "Trends",
        "Policies",
        "Sessions",
        "Sign out",
    ]
    assert landed == "main"
    assert {path: found for path, found in checked["unlabelled"].items() if found} == {}
    assert checked["too_wide"] == {}
    record(
        "Console in Chromium: keyboard, labels, phone width",
        COMMAND + " -k keyboard",
        tab_stops_checked=7,
        pages_checked_for_labels=len(checked["unlabelled"]),
        unlabelled_controls=0,
        pages_checked_at_390px=checked["pages"],
        pages_scrolling_sideways=0,
        **percentiles(person.waits_ms),
    )
