"""Console insights: views, spins, taps and adds to cart per day and per item (from the widget's events),
and job throughput and failures per day, drawn as SVG on the server (no chart library, no script)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import func, select

from media_service.db import get_session
from media_service.features.console.api import bp, current, render_page
from media_service.models import EmbedEventCount, Job, utcnow

EVENT_SERIES = (("view", "Views", "#0b57d0"), ("spin", "Spins", "#116329"), ("tap", "Taps", "#7a4d00"),
                ("add_to_cart", "Adds to cart", "#b3261e"))
JOB_SERIES = (("succeeded", "Finished", "#116329"), ("failed", "Failed", "#b3261e"))


def _days(count: int) -> list[date]:
    today = utcnow().date()
    return [today - timedelta(days=count - 1 - i) for i in range(count)]


def line_chart(title: str, days: list[date], series: list[tuple[str, str, list[int]]]) -> Markup:
    """An accessible SVG line chart: a title, axes, one polyline per series, a legend, and a data table
    alternative in ``<desc>``."""
    width, height, left, bottom, top = 720, 260, 44, 34, 26
    peak = max([1, *(v for _n, _c, values in series for v in values)])
    step = (width - left - 16) / max(1, len(days) - 1)
    scale = (height - top - bottom) / peak

    def point(i: int, v: int) -> str:
        return f"{left + i * step:.1f},{height - bottom - v * scale:.1f}"

    summary = "; ".join(f"{name}: {sum(values)} in {len(days)} days" for name, _c, values in series)
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-labelledby="t-{id(series)}" '
             f'xmlns="http://www.w3.org/2000/svg"><title id="t-{id(series)}">{escape(title)}</title>'
             f"<desc>{escape(summary)}</desc>",
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - 8}" y2="{height - bottom}" stroke="#4b5563"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#4b5563"/>',
             f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" font-size="11" fill="#1a1f26">{peak}</text>',
             f'<text x="{left - 6}" y="{height - bottom}" text-anchor="end" font-size="11" fill="#1a1f26">0</text>']
    label_every = max(1, len(days) // 7)
    for i, day in enumerate(days):
        last = i == len(days) - 1
        if (i % label_every == 0 and len(days) - 1 - i >= label_every / 2) or last:
            parts.append(f'<text x="{left + i * step:.1f}" y="{height - bottom + 16}" text-anchor="middle" '
                         f'font-size="11" fill="#1a1f26">{day:%d %b}</text>')
    for n, (name, colour, values) in enumerate(series):
        points = " ".join(point(i, v) for i, v in enumerate(values))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2.5" points="{points}"/>')
        parts.append(f'<rect x="{left + 10 + n * 130}" y="6" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{left + 26 + n * 130}" y="16" font-size="12" fill="#1a1f26">'
                     f"{escape(name)} ({sum(values)})</text>")
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(title: str, rows: list[tuple[str, int]], colour: str = "#0b57d0") -> Markup:
    """A horizontal SVG bar chart of labelled counts (per item)."""
    row, left, width = 24, 240, 720
    height = 20 + max(1, len(rows)) * row
    peak = max([1, *(v for _l, v in rows)])
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']
    for i, (label, value) in enumerate(rows):
        y = 10 + i * row
        bar = (width - left - 60) * value / peak
        parts.append(f'<text x="{left - 8}" y="{y + 14}" text-anchor="end" font-size="12" fill="#1a1f26">'
                     f"{escape(label[:34])}</text>"
                     f'<rect x="{left}" y="{y + 2}" width="{bar:.1f}" height="{row - 8}" fill="{colour}"/>'
                     f'<text x="{left + bar + 6:.1f}" y="{y + 14}" font-size="12" fill="#1a1f26">{value}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


@bp.get("/insights", endpoint="insights")
def insights() -> Any:
    me = current()
    session = get_session()
    span = request_days()
    days = _days(span)
    since = utcnow() - timedelta(days=span)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    per_item: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    # the widget's events are kept as counts per item, day and type: one read gives the days and the items
    for kind, when, target, count in session.execute(
            select(EmbedEventCount.type, EmbedEventCount.day, EmbedEventCount.target_id, EmbedEventCount.count)
            .where(EmbedEventCount.merchant_id == me.merchant_id, EmbedEventCount.day >= since.date())):
        counts[(kind, when.isoformat())] += count
        per_item[target][kind] += count
    events = line_chart("Shopper interactions per day", days, [
        (label, colour, [counts[(kind, d.isoformat())] for d in days]) for kind, label, colour in EVENT_SERIES])
    top = sorted(per_item, key=lambda target: (-per_item[target]["view"], target))[:10]
    item_rows = [(target, per_item[target]["view"]) for target in top if per_item[target]["view"]]
    item_table = [{"id": target, **{kind: per_item[target][kind] for kind, _l, _c in EVENT_SERIES}}
                  for target, _views in item_rows]
    finished = func.date(Job.finished_at)
    job_counts: dict[tuple[str, str], int] = defaultdict(int)
    for state, when, count in session.execute(
            select(Job.state, finished, func.count()).where(Job.merchant_id == me.merchant_id, Job.finished_at >= since,
                                                            Job.state.in_(("succeeded", "failed")))
            .group_by(Job.state, finished)):
        job_counts[(state, str(when))] += count
    jobs = line_chart("Jobs finished per day", days, [
        (label, colour, [job_counts[(state, d.isoformat())] for d in days]) for state, label, colour in JOB_SERIES])
    failures = session.execute(select(Job.kind, func.count()).where(
        Job.merchant_id == me.merchant_id, Job.finished_at >= since, Job.state == "failed").group_by(Job.kind)).all()
    return render_page("console/insights.html", span=span, events=events,
                       items=bar_chart("Views per item", item_rows), item_table=item_table, jobs=jobs,
                       failures=bar_chart("Failures per kind of job", [(k, c) for k, c in failures], "#b3261e"),
                       failure_rows=failures)


def request_days() -> int:
    from flask import request

    value = request.args.get("days", "30")
    return int(value) if value in ("7", "30", "90") else 30
