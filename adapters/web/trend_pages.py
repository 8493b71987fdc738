"""The console's trends: what employees asked week by week over a date range (GET form), as
charts with the numbers beside them, and each chart's numbers as CSV
(`/console/trends.csv?chart=weekly|sections|topics|feedback&from=&to=`).

Everything comes from `PolicyBot.trends` with the signed-in person's Actor, so the same
people may see it as may read the review list on Slack or Teams (the policy team, and the
admins); a refusal is in the security log."""

from __future__ import annotations

from aiohttp import web
from markupsafe import Markup

from adapters.web import charts
from adapters.web.identity import policy_bot, web_user
from adapters.web.render import page, refusal
from bot.use_cases import KIND_LABELS, KINDS, TABLES, Trends, TrendsReply, table, table_csv

#: What `?chart=` may name, and the table each downloads.
CSV_CHARTS = tuple(TABLES)
#: The longest date text read from the query (a date is ten characters).
MAX_DATE_CHARS = 40


def _range_of(request: web.Request) -> tuple[str, str]:
    return (
        request.query.get("from", "").strip()[:MAX_DATE_CHARS],
        request.query.get("to", "").strip()[:MAX_DATE_CHARS],
    )


async def _trends_for(request: web.Request, action: str) -> tuple[TrendsReply, str, str]:
    user = web_user(request)
    since, until = _range_of(request)
    reply = await policy_bot(request).trends(user.actor, since, until, action=action)
    if reply.refusal:
        raise refusal(request, reply.refusal, status=403)
    return reply, since, until


async def trends_page(request: web.Request) -> web.Response:
    reply, since, until = await _trends_for(request, "console trends")
    if reply.trends is None:
        # A range that cannot be read: the form again with what was typed, and why.
        return page(
            request,
            "trends/index.html",
            trends=None,
            problem=reply.problem,
            since=since,
            until=until,
            status=400,
        )
    trends = reply.trends
    return page(
        request,
        "trends/index.html",
        trends=trends,
        problem="",
        since=trends.since.isoformat(),
        until=trends.until.isoformat(),
        charts={name: Markup(svg) for name, svg in charts.all_charts(trends).items()},
        tables={name: table(trends, name) for name in TABLES},
        kinds=[(kind, KIND_LABELS[kind]) for kind in KINDS],
        csv_links=_csv_links(trends),
    )


def _csv_links(trends: Trends) -> dict[str, str]:
    dates = f"from={trends.since.isoformat()}&to={trends.until.isoformat()}"
    return {name: f"trends.csv?chart={name}&{dates}" for name in CSV_CHARTS}


async def trends_csv(request: web.Request) -> web.Response:
    chart = request.query.get("chart", "")
    if chart not in CSV_CHARTS:
        raise web.HTTPBadRequest(
            text=f"Choose chart= one of {', '.join(CSV_CHARTS)}.", content_type="text/plain"
        )
    reply, _, _ = await _trends_for(request, "console trends csv")
    if reply.trends is None:
        raise web.HTTPBadRequest(text=reply.problem, content_type="text/plain")
    trends = reply.trends
    name = f"policybot-{chart}-{trends.since.isoformat()}-to-{trends.until.isoformat()}.csv"
    return web.Response(
        text=table_csv(trends, chart),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def add_routes(router: web.UrlDispatcher, prefix: str) -> None:
    router.add_get(prefix + "/trends", trends_page)
    router.add_get(prefix + "/trends.csv", trends_csv)
