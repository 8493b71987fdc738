"""The console's review pages: the queue (filters in a GET form, counts per status, busiest
first, bulk dismiss), a group's page (every question, reasons, closest section, who did what
and when, the answer form with its preview) and the POSTs that answer and dismiss. Every
read and change is a `PolicyBot` use case with the signed-in person's Actor, so access is
checked, refusals logged and answers delivered exactly as on Slack and Teams."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from adapters.web.identity import policy_bot, web_user
from adapters.web.render import page, redirect, refusal
from bot import messages
from bot.use_cases import GROUP_STATUSES, MAX_ANSWER_CHARS, QueueFilter, Resolution, ReviewError

#: What the answer form's two submit buttons send as `intent`.
PREVIEW, SEND = "preview", "send"


def _group_id(request: web.Request) -> int:
    raw = request.match_info.get("group_id", "")
    if not raw.isdigit() or len(raw) > 18:
        raise refusal(request, messages.STALE_GROUP, status=400)
    return int(raw)


async def queue(request: web.Request) -> web.Response:
    user = web_user(request)
    bot = policy_bot(request)
    query = request.query
    given = {name: query.get(name, "") for name in ("owner", "status", "since", "until")}
    if "status" not in query:
        given["status"] = "open"
    try:
        wanted = QueueFilter.parse(**given)
    except ReviewError as error:
        # The filters stay in the form as typed, with what is wrong with them.
        return page(
            request,
            "review/queue.html",
            view=None,
            given=given,
            error=str(error),
            statuses=GROUP_STATUSES,
            request_query=request.query_string,
            status=400,
        )
    shown = await bot.review_queue(user.actor, wanted)
    if shown.value is None:
        raise refusal(request, shown.refusal, status=403)
    return page(
        request,
        "review/queue.html",
        view=shown.value,
        given=given,
        error="",
        statuses=GROUP_STATUSES,
        request_query=request.query_string,
    )


async def group(request: web.Request) -> web.Response:
    return await _group_page(request, _group_id(request))


async def _group_page(
    request: web.Request,
    group_id: int,
    *,
    draft: str = "",
    preview: str = "",
    error: str = "",
    status: int = 200,
) -> web.Response:
    user = web_user(request)
    shown = await policy_bot(request).review_group(user.actor, group_id)
    if shown.value is None:
        raise refusal(request, shown.refusal, status=403 if shown.forbidden else 400)
    view = shown.value
    return page(
        request,
        "review/group.html",
        view=view,
        draft=draft or (view.group.answer if view.group.status == "answered" else ""),
        preview=preview,
        error=error,
        max_answer_chars=MAX_ANSWER_CHARS,
        status=status,
    )


def _refused(request: web.Request, resolution: Resolution) -> web.HTTPException:
    forbidden = resolution.text == messages.NOT_POLICY_TEAM_ACTION
    return refusal(request, resolution.text, status=403 if forbidden else 400)


async def answer(request: web.Request) -> web.Response:
    user = web_user(request)
    bot = policy_bot(request)
    group_id = _group_id(request)
    form = await request.post()
    text = form.get("answer", "")
    text = text if isinstance(text, str) else ""
    if form.get("intent") == PREVIEW:
        shown = await bot.preview_answer(user.actor, group_id, text)
        if shown.forbidden:
            raise refusal(request, shown.refusal, status=403)
        return await _group_page(
            request,
            group_id,
            draft=text,
            preview=shown.value or "",
            error=shown.refusal,
            status=200 if shown.value is not None else 400,
        )
    resolution = await bot.resolve_group(user.actor, group_id, text, action="review answer")
    if resolution.done:
        back = request.app.router["review_group"].url_for(group_id=str(group_id)).path
        raise redirect(request, back, resolution.text)
    if resolution.text == messages.NOT_POLICY_TEAM_ACTION:
        raise _refused(request, resolution)
    # An empty or oversized answer: the page again with the text as typed, nothing lost.
    return await _group_page(request, group_id, draft=text, error=resolution.text, status=400)


async def dismiss(request: web.Request) -> web.Response:
    user = web_user(request)
    group_id = _group_id(request)
    resolution = await policy_bot(request).resolve_group(
        user.actor, group_id, None, action="review dismiss"
    )
    if not resolution.done:
        raise _refused(request, resolution)
    raise redirect(request, request.app.router["review_queue"].url_for().path, resolution.text)


async def bulk_dismiss(request: web.Request) -> web.Response:
    user = web_user(request)
    form = await request.post()
    chosen = [v for v in form.getall("group", []) if isinstance(v, str)]
    back = request.app.router["review_queue"].url_for().path
    back_to = form.get("back", "")
    if isinstance(back_to, str) and back_to.startswith("?"):
        back += "?" + urlencode(dict(_pairs(back_to[1:])))
    if not chosen:
        raise redirect(request, back, "No group was chosen; nothing was dismissed.")
    if not all(v.isdigit() and len(v) <= 18 for v in chosen):
        raise refusal(request, messages.STALE_GROUP, status=400)
    results = await policy_bot(request).dismiss_groups(user.actor, [int(v) for v in chosen])
    if len(results) == 1 and results[0].text == messages.NOT_POLICY_TEAM_ACTION:
        raise _refused(request, results[0])
    done = [r for r in results if r.done]
    left = [r.text for r in results if not r.done]
    text = f"{messages.counted(len(done), 'group')} dismissed."
    if left:
        text += " Not dismissed: " + " ".join(left)
    raise redirect(request, back, text)


def _pairs(query: str) -> list[tuple[str, str]]:
    """The queue's filters carried through the bulk form, only the names the queue reads."""
    names = {"owner", "status", "since", "until"}
    return [(k, v) for k, v in parse_qsl(query) if k in names][:4]


def add_routes(router: web.UrlDispatcher, prefix: str) -> None:
    router.add_get(prefix + "/review", queue, name="review_queue")
    router.add_post(prefix + "/review/dismiss", bulk_dismiss)
    router.add_get(prefix + "/review/{group_id}", group, name="review_group")
    router.add_post(prefix + "/review/{group_id}/answer", answer)
    router.add_post(prefix + "/review/{group_id}/dismiss", dismiss)
