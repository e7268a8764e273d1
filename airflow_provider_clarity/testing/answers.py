"""A population of sessions -> the JSON Clarity would answer for it.

One rule for every request, so the answers agree with each other like the live service's:

- A row is a group of sessions sharing the requested dimension values. Session-level
  dimensions give each session one group; ``URL`` gives a session one group per distinct
  page it viewed (sessions with no page fall in the ``null`` URL bucket), so URL rows do
  not add up to the total.
- ``Traffic`` counts every recorded session, bots included: ``totalSessionCount``,
  ``totalBotSessionCount``, ``distinctUserCount`` (distinct users of the group's sessions
  *and* unrecorded visits, so it is not additive and can exceed the sessions) and
  ``pagesPerSessionPercentage`` (page views per session, 2 decimals).
- The other eight blocks describe the group's human (non-bot) sessions, and list only
  groups that have some; that is why Traffic can be longer than the rest, as seen live.
  Click blocks: ``sessionsCount`` (human sessions), the share of them with / without the
  event, ``pagesViews`` (their page views) and ``subTotal`` (events). ``ScrollDepth``:
  their average scroll depth. ``EngagementTime``: their average total and active time in
  whole seconds (the live capture reads as per-session averages).
- Rows come heaviest first (ties in value order); each block keeps at most ``row_cap``
  rows (``row_cap_scope="block"``), or the whole response does (``"response"``: blocks
  are filled in order until the cap, later ones come back short or empty).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from airflow_provider_clarity.testing import _data
from airflow_provider_clarity.testing.population import (
    EVENTS,
    SESSION_DIMENSIONS,
    FloatArray,
    IntArray,
    Population,
)

__all__ = ["RowCapScope", "WireStyle", "answer"]

Row = dict[str, Any]
RowCapScope = Literal["block", "response"]

# Fields the live capture (no dimension, 2026-08) left out of some click blocks.
_SNAPSHOT_KEEPS: dict[str, tuple[str, ...]] = {
    "RageClickCount": ("sessionsCount", "sessionsWithMetricPercentage", "subTotal"),
    "QuickbackClick": ("sessionsCount", "sessionsWithMetricPercentage", "subTotal"),
    "ExcessiveScroll": ("sessionsCount", "sessionsWithMetricPercentage", "pagesViews", "subTotal"),
}
_MISSING_SHARE = 5  # percent of click-metric rows that lose a field or two


@dataclass(frozen=True)
class WireStyle:
    """How an answer is spelled and cut; everything but the numbers.

    ``salt`` makes the choice of rows that lose fields (``missing_fields``) differ between
    projects while staying the same for every call of one project.
    """

    spelling: _data.Spelling = False
    os_key: str = "Os"
    missing_fields: bool = False
    mobile_app: bool = False
    row_cap: int = _data.MAX_ROWS
    row_cap_scope: RowCapScope = "block"
    salt: str = ""


@dataclass(frozen=True)
class _Groups:
    vocabs: list[tuple[Any, ...]]  # value table of each requested dimension
    digits: list[IntArray]  # value code of each group, per requested dimension
    sessions: IntArray
    bots: IntArray
    humans: IntArray
    users: IntArray
    pages: FloatArray
    human_pages: FloatArray
    scroll: FloatArray
    total_time: FloatArray
    active_time: FloatArray
    with_event: IntArray  # shape (groups, 6)
    events: IntArray  # shape (groups, 6)

    def values(self, index: int) -> tuple[Any, ...]:
        """The dimension values of group ``index``."""
        return tuple(v[int(d[index])] for v, d in zip(self.vocabs, self.digits, strict=True))


def _distinct(values: IntArray) -> IntArray:
    """Sorted distinct values (np.unique's hash path is many times slower on big arrays)."""
    ordered = np.sort(values)
    if ordered.size == 0:
        return ordered
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


def _factorize(values: IntArray) -> tuple[IntArray, IntArray]:
    """(sorted distinct values, index of each value among them)."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    if ordered.size == 0:
        return ordered, ordered
    first = np.concatenate(([True], ordered[1:] != ordered[:-1]))
    inverse = np.empty(values.shape[0], dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    return ordered[first], inverse


def _sum(inverse: IntArray, weights: Any, size: int) -> FloatArray:
    return np.bincount(inverse, weights=weights, minlength=size).astype(np.float64)


def _units(pop: Population, dimensions: Sequence[str]) -> tuple[IntArray, list[IntArray]]:
    """(session of each unit, value code of each unit per dimension)."""
    if "URL" in dimensions:
        n_urls = len(pop.vocab["URL"])
        pairs = _distinct(pop.page_session() * n_urls + pop.page_url)
        no_page = np.flatnonzero(pop.pages == 0)
        sessions = np.concatenate([pairs // n_urls, no_page])
        urls = np.concatenate([pairs % n_urls, np.zeros(no_page.shape[0], dtype=np.int64)])
    else:
        sessions = np.arange(len(pop), dtype=np.int64)
        urls = sessions  # unused
    codes = [
        urls if d == "URL" else pop.attrs[sessions, SESSION_DIMENSIONS.index(d)] for d in dimensions
    ]
    return sessions, codes


def _group(pop: Population, dimensions: Sequence[str]) -> _Groups:
    sizes = [len(pop.vocab[d]) for d in dimensions]
    sessions, codes = _units(pop, dimensions)
    key = np.zeros(sessions.shape[0], dtype=np.int64)
    for size, column in zip(sizes, codes, strict=True):
        key = key * size + column
    recorded = pop.recorded[sessions]
    keys, inverse = _factorize(key[recorded])
    size = int(keys.shape[0])
    s = sessions[recorded]
    human = ~pop.bot[s]
    pages = pop.pages[s]
    count = np.bincount(inverse, minlength=size)
    bots = np.bincount(inverse, weights=pop.bot[s], minlength=size).astype(np.int64)
    with_event = np.zeros((size, len(EVENTS)), dtype=np.int64)
    events = np.zeros((size, len(EVENTS)), dtype=np.int64)
    for i in range(len(EVENTS)):
        column = pop.events[s, i] * human
        with_event[:, i] = np.bincount(inverse, weights=column > 0, minlength=size)
        events[:, i] = np.bincount(inverse, weights=column, minlength=size)

    # Distinct users over the group's sessions and unrecorded visits.
    position = np.minimum(np.searchsorted(keys, key), max(size - 1, 0))
    member = keys[position] == key if size else np.zeros(key.shape[0], dtype=np.bool_)
    _, dense_user = _factorize(pop.user[sessions[member]])
    n_users = int(dense_user.max()) + 1 if dense_user.size else 1
    pairs = _distinct(position[member] * n_users + dense_user)
    users = np.bincount(pairs // n_users, minlength=size)

    digits: list[IntArray] = []
    rest = keys.copy()
    for size_d in reversed(sizes):
        digits.append(rest % size_d)
        rest = rest // size_d
    digits.reverse()
    return _Groups(
        vocabs=[pop.vocab[d] for d in dimensions],
        digits=digits,
        sessions=count,
        bots=bots,
        humans=count - bots,
        users=users,
        pages=_sum(inverse, pages, size),
        human_pages=_sum(inverse, pages * human, size),
        scroll=_sum(inverse, pop.scroll[s] * human, size),
        total_time=_sum(inverse, pop.total_time[s] * human, size),
        active_time=_sum(inverse, pop.active_time[s] * human, size),
        with_event=with_event,
        events=events,
    )


def _order(weight: IntArray, cap: int) -> list[int]:
    """Indices of the groups with weight, heaviest first (ties in value order), at most cap."""
    index = np.lexsort((np.arange(weight.shape[0]), -weight))
    top: list[int] = index[weight[index] > 0][:cap].tolist()
    return top


def _rounded(total: float, count: int) -> int:
    return round(total / count) if count else 0


def _metric_rows(block: str, g: _Groups, style: WireStyle) -> list[tuple[int, Row]]:
    """(group index, row) pairs of one block, in Clarity's order, before dimension keys."""
    rows: list[tuple[int, Row]] = []
    if block == "Traffic":
        for index, i in enumerate(_order(g.sessions, style.row_cap)):
            n = int(g.sessions[i])
            vendor = style.spelling is True or (style.spelling == "mixed" and index % 2 == 1)
            rows.append(
                (
                    i,
                    {
                        "totalSessionCount": _data.count(n),
                        "totalBotSessionCount": _data.count(int(g.bots[i])),
                        ("distantUserCount" if vendor else "distinctUserCount"): _data.count(
                            int(g.users[i])
                        ),
                        (
                            "PagesPerSessionPercentage" if vendor else "pagesPerSessionPercentage"
                        ): _data.pct(g.pages[i] / n),
                    },
                )
            )
        return rows
    humans = g.humans
    for i in _order(humans, style.row_cap):
        h = int(humans[i])
        if block == "ScrollDepth":
            row: Row = {"averageScrollDepth": _data.pct(g.scroll[i] / h)}
        elif block == "EngagementTime":
            row = {
                "totalTime": _data.count(_rounded(g.total_time[i], h)),
                "activeTime": _data.count(_rounded(g.active_time[i], h)),
            }
        else:
            e = EVENTS.index(block)
            hit = int(g.with_event[i, e])
            row = {
                "sessionsCount": _data.count(h),
                "sessionsWithMetricPercentage": _data.pct(100 * hit / h),
                "sessionsWithoutMetricPercentage": _data.pct(100 * (h - hit) / h),
                "pagesViews": _data.count(round(g.human_pages[i])),
                "subTotal": _data.count(int(g.events[i, e])),
            }
        rows.append((i, row))
    return rows


def _drop_fields(row: Row, block: str, values: tuple[Any, ...], style: WireStyle) -> None:
    """Remove a field or two from about 5% of click rows, the same rows on every call."""
    digest = zlib.crc32(repr((style.salt, block, values)).encode())
    if digest % 100 >= _MISSING_SHARE:
        return
    keys = sorted(row)
    for k in range(1 + (digest >> 8) % 2):
        if len(keys) > 1:
            del row[keys.pop((digest >> (12 + 4 * k)) % len(keys))]


def _cap(blocks: list[Row], style: WireStyle) -> list[Row]:
    if style.row_cap_scope == "block":
        for b in blocks:
            del b["information"][style.row_cap :]
        return blocks
    left = style.row_cap
    for b in blocks:
        del b["information"][left:]
        left -= len(b["information"])
    return blocks


def _mobile(blocks: list[Row]) -> list[Row]:
    names = _data.MOBILE_NAMES
    return [
        {
            "metricName": names.get(b["metricName"], b["metricName"]),
            "information": [{names.get(k, k): v for k, v in r.items()} for r in b["information"]],
        }
        for b in blocks
    ]


def _name_rows(weights: IntArray, names: Sequence[Any], cap: int, field: str = "name") -> list[Row]:
    counts_field = "visitsCount" if field == "url" else "sessionsCount"
    return [
        {field: names[i], counts_field: _data.count(int(weights[i]))} for i in _order(weights, cap)
    ]


def _snapshot_lists(pop: Population, cap: int) -> dict[str, list[Row]]:
    human = pop.recorded & ~pop.bot
    lists: dict[str, list[Row]] = {}
    for dimension in ("Browser", "Device", "OS", "Country"):
        vocab = pop.vocab[dimension]
        codes = pop.attrs[human, SESSION_DIMENSIONS.index(dimension)]
        lists[dimension] = _name_rows(np.bincount(codes, minlength=len(vocab)), vocab, cap)
    # Page titles: human sessions that viewed at least one page with that title.
    titles = tuple(dict.fromkeys(pop.titles))
    title_of_url = np.array([titles.index(t) for t in pop.titles], dtype=np.int64)
    page_session = pop.page_session()
    human_view = human[page_session]
    pairs = _distinct(
        page_session[human_view] * len(titles) + title_of_url[pop.page_url[human_view]]
    )
    lists["PageTitle"] = _name_rows(
        np.bincount(pairs % len(titles), minlength=len(titles)), titles, cap
    )
    lists["ReferrerUrl"] = _name_rows(
        np.bincount(pop.referrer[human], minlength=len(pop.referrers)), pop.referrers, cap
    )
    views = np.bincount(pop.page_url[human_view], minlength=len(pop.vocab["URL"]))
    views[0] = 0
    lists["PopularPages"] = _name_rows(views, pop.vocab["URL"], cap, field="url")
    return lists


def answer(pop: Population, dimensions: Sequence[str], style: WireStyle | None = None) -> list[Row]:
    """What Clarity answers for ``pop`` broken down by ``dimensions`` (canonical names).

    No dimension gives the 16-block snapshot; its Browser, Device, OS and Country blocks
    count the same human sessions as the other blocks.
    """
    style = style or WireStyle()
    dims = tuple(dimensions)
    groups = _group(pop, dims)
    keys = [_data.wire_key(d, style.os_key) for d in dims]
    blocks: list[Row] = []
    for block in _data.METRIC_BLOCKS:
        rows = []
        for i, row in _metric_rows(block, groups, style):
            if dims:
                values = groups.values(i)
                if style.missing_fields and block in _data.CLICK_BLOCKS:
                    _drop_fields(row, block, values, style)
                row.update(zip(keys, values, strict=True))
            elif style.missing_fields and block in _SNAPSHOT_KEEPS:
                row = {k: v for k, v in row.items() if k in _SNAPSHOT_KEEPS[block]}
            rows.append(row)
        blocks.append({"metricName": block, "information": rows})
    if not dims:
        lists = _snapshot_lists(pop, style.row_cap)
        blocks += [
            {"metricName": name, "information": lists[name]} for name in _data.SNAPSHOT_BLOCKS
        ]
    blocks = _cap(blocks, style)
    return _mobile(blocks) if style.mobile_app else blocks
