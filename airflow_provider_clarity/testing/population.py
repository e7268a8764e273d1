"""The sessions behind the emulator's answers: one population per project, seed and day.

The live service answers every request for one project from the same recorded sessions,
so its breakdowns agree with each other. The emulator does the same: it generates, per
project, seed and UTC day, a population of sessions (numpy columns, deterministic), and
every answer aggregates the sessions of its window (see :mod:`.answers`).

A session has one value per session-level dimension (Browser, Device, OS, Country, Source,
Medium, Campaign, Channel; ``None`` is a value, the unattributed bucket), a list of page
views (URLs, repeats allowed), a bot flag, a user, scroll depth, total and active time
and six click-event counts. Besides recorded sessions a population holds *unrecorded
visits* (``recorded=False``): visitors Clarity saw but did not keep as a session. They
count towards ``distinctUserCount`` only, which is why that count is not additive and can
exceed ``totalSessionCount`` as on the live service.

Tests may build a population by hand with :meth:`Population.from_sessions`.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
import numpy.typing as npt

from airflow_provider_clarity.testing import _data

__all__ = ["EVENTS", "SESSION_DIMENSIONS", "Population", "Session", "generate_day", "window"]

#: The session-level dimensions, in the order of ``Population.attrs`` columns.
SESSION_DIMENSIONS: tuple[str, ...] = _data.VALID_DIMENSIONS[:-1]
#: Click events, in the order of ``Population.events`` columns and of Clarity's blocks.
EVENTS: tuple[str, ...] = _data.CLICK_BLOCKS

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Value = str | None


@dataclass(frozen=True)
class Session:
    """One session (or, with ``recorded=False``, an unrecorded visit), for hand-built tests.

    ``attrs`` maps session dimensions to values (missing means ``None``); ``pages`` are the
    URLs viewed in order; ``events`` maps an event block name (``DeadClickCount``...) to how
    many times it happened in the session.
    """

    time: int
    user: int
    attrs: dict[str, Value] = field(default_factory=dict)
    pages: tuple[str, ...] = ()
    bot: bool = False
    recorded: bool = True
    scroll: float = 0.0
    total_time: float = 0.0
    active_time: float = 0.0
    events: dict[str, int] = field(default_factory=dict)
    referrer: str = "None"


@dataclass(frozen=True, eq=False)
class Population:
    """Sessions as numpy columns; value codes index ``vocab`` (code 0 is always ``None``).

    ``page_ptr`` / ``page_url`` hold each session's page views in CSR form: the views of
    session ``i`` are ``page_url[page_ptr[i]:page_ptr[i + 1]]``.
    """

    vocab: dict[str, tuple[Value, ...]]  # the 8 session dimensions and "URL"
    titles: tuple[Value, ...]  # page title of each URL code
    referrers: tuple[str, ...]
    time: IntArray
    user: IntArray
    recorded: BoolArray
    bot: BoolArray
    attrs: IntArray  # shape (n, 8)
    referrer: IntArray
    scroll: FloatArray
    total_time: FloatArray
    active_time: FloatArray
    events: IntArray  # shape (n, 6)
    page_ptr: IntArray
    page_url: IntArray

    def __len__(self) -> int:
        return int(self.time.shape[0])

    @property
    def pages(self) -> IntArray:
        """Page views per session."""
        return np.diff(self.page_ptr)

    def page_session(self) -> IntArray:
        """The session index of each page view."""
        return np.repeat(np.arange(len(self), dtype=np.int64), self.pages)

    def select(self, mask: BoolArray) -> Population:
        """The sessions where ``mask`` is true (their page views follow them)."""
        counts = self.pages
        keep_pages = np.repeat(mask, counts)
        ptr = np.zeros(int(mask.sum()) + 1, dtype=np.int64)
        np.cumsum(counts[mask], out=ptr[1:])
        return Population(
            vocab=self.vocab,
            titles=self.titles,
            referrers=self.referrers,
            time=self.time[mask],
            user=self.user[mask],
            recorded=self.recorded[mask],
            bot=self.bot[mask],
            attrs=self.attrs[mask],
            referrer=self.referrer[mask],
            scroll=self.scroll[mask],
            total_time=self.total_time[mask],
            active_time=self.active_time[mask],
            events=self.events[mask],
            page_ptr=ptr,
            page_url=self.page_url[keep_pages],
        )

    def between(self, start: datetime, end: datetime) -> Population:
        """The sessions that started in ``(start, end]``."""
        lo, hi = int(start.timestamp()), int(end.timestamp())
        return self.select((self.time > lo) & (self.time <= hi))

    @staticmethod
    def concat(parts: Sequence[Population]) -> Population:
        """One population from several sharing one vocabulary (days of one project)."""
        first = parts[0]
        if len(parts) == 1:
            return first
        ptr_parts = [np.zeros(1, dtype=np.int64)]
        offset = 0
        for part in parts:
            ptr_parts.append(part.page_ptr[1:] + offset)
            offset += int(part.page_ptr[-1])
        return Population(
            vocab=first.vocab,
            titles=first.titles,
            referrers=first.referrers,
            time=np.concatenate([p.time for p in parts]),
            user=np.concatenate([p.user for p in parts]),
            recorded=np.concatenate([p.recorded for p in parts]),
            bot=np.concatenate([p.bot for p in parts]),
            attrs=np.concatenate([p.attrs for p in parts]),
            referrer=np.concatenate([p.referrer for p in parts]),
            scroll=np.concatenate([p.scroll for p in parts]),
            total_time=np.concatenate([p.total_time for p in parts]),
            active_time=np.concatenate([p.active_time for p in parts]),
            events=np.concatenate([p.events for p in parts]),
            page_ptr=np.concatenate(ptr_parts),
            page_url=np.concatenate([p.page_url for p in parts]),
        )

    @classmethod
    def from_sessions(
        cls, sessions: Iterable[Session], titles: dict[str, Value] | None = None
    ) -> Population:
        """Build a population from hand-written sessions (for tests); titles default to None."""
        items = list(sessions)
        vocab: dict[str, list[Value]] = {d: [None] for d in (*SESSION_DIMENSIONS, "URL")}
        index: dict[str, dict[Value, int]] = {d: {None: 0} for d in vocab}
        referrers: list[str] = []

        def code(dimension: str, value: Value) -> int:
            known = index[dimension]
            if value not in known:
                known[value] = len(vocab[dimension])
                vocab[dimension].append(value)
            return known[value]

        attrs = [[code(d, s.attrs.get(d)) for d in SESSION_DIMENSIONS] for s in items]
        page_url = [code("URL", url) for s in items for url in s.pages]
        for s in items:
            if s.referrer not in referrers:
                referrers.append(s.referrer)
        ptr = np.zeros(len(items) + 1, dtype=np.int64)
        np.cumsum([len(s.pages) for s in items], out=ptr[1:])
        url_titles = tuple((titles or {}).get(u) if u else None for u in vocab["URL"])
        return cls(
            vocab={d: tuple(v) for d, v in vocab.items()},
            titles=url_titles,
            referrers=tuple(referrers),
            time=np.array([s.time for s in items], dtype=np.int64),
            user=np.array([s.user for s in items], dtype=np.int64),
            recorded=np.array([s.recorded for s in items], dtype=np.bool_),
            bot=np.array([s.bot for s in items], dtype=np.bool_),
            attrs=np.array(attrs, dtype=np.int64).reshape(len(items), len(SESSION_DIMENSIONS)),
            referrer=np.array([referrers.index(s.referrer) for s in items], dtype=np.int64),
            scroll=np.array([s.scroll for s in items], dtype=np.float64),
            total_time=np.array([s.total_time for s in items], dtype=np.float64),
            active_time=np.array([s.active_time for s in items], dtype=np.float64),
            events=np.array(
                [[s.events.get(e, 0) for e in EVENTS] for s in items], dtype=np.int64
            ).reshape(len(items), len(EVENTS)),
            page_ptr=ptr,
            page_url=np.array(page_url, dtype=np.int64),
        )


# ---------------------------------------------------------------------- generation
def _rng(*parts: object) -> np.random.Generator:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "big"))


def _p(weights: Sequence[float] | FloatArray) -> FloatArray:
    arr = np.asarray(weights, dtype=np.float64)
    return arr / arr.sum()


# How the session-level attributes hang together (no Safari on Android, cpc -> Paid search).
_OS_BY_DEVICE: dict[str, tuple[tuple[str, float], ...]] = {
    "PC": (("Windows", 70), ("MacOSX", 20), ("Linux", 6), ("ChromeOS", 4)),
    "Mobile": (("Android", 60), ("iOS", 39), ("Other", 1)),
    "Tablet": (("iOS", 55), ("Android", 45)),
    "Other": (("Other", 60), ("Linux", 20), ("Android", 20)),
}
_BROWSER_BY_OS: dict[str, tuple[tuple[str, float], ...]] = {
    "Windows": (("Chrome", 65), ("Edge", 25), ("Firefox", 7), ("Opera", 3)),
    "MacOSX": (("Safari", 45), ("Chrome", 45), ("Firefox", 7), ("Edge", 3)),
    "Linux": (("Chrome", 60), ("Firefox", 40)),
    "ChromeOS": (("Chrome", 100),),
    "Android": (
        ("ChromeMobile", 75),
        ("SamsungInternet", 15),
        ("FacebookInApp", 6),
        ("Opera", 2),
        ("Firefox", 2),
    ),
    "iOS": (("MobileSafari", 80), ("ChromeMobile", 12), ("FacebookInApp", 8)),
    "Other": (("Other", 100),),
}
_DEVICE_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("PC", 52),
    ("Mobile", 42),
    ("Tablet", 5),
    ("Other", 1),
)
_PAID = ("spring_sale_2025", "brand_search", "retargeting", "black-friday", "launch webinar")
# (source, medium, channel, weight, referrers, campaigns with weights; None = no campaign)
_ACQUISITION: tuple[
    tuple[Value, Value, str, float, tuple[str, ...], tuple[tuple[Value, float], ...]], ...
] = (
    (None, None, "Direct", 30, ("None",), ((None, 97), ("(not set)", 3))),
    (
        "google",
        "organic",
        "Organic search",
        28,
        ("https://www.google.com/", _data.REFERRERS[-1]),
        ((None, 100),),
    ),
    ("google", "cpc", "Paid search", 8, ("https://www.google.com/",), tuple((c, 1) for c in _PAID)),
    ("bing", "organic", "Organic search", 5, ("https://www.bing.com/",), ((None, 100),)),
    ("bing", "cpc", "Paid search", 2, ("https://www.bing.com/",), (("brand_search", 1),)),
    ("duckduckgo", "organic", "Organic search", 2, ("https://duckduckgo.com/",), ((None, 1),)),
    ("yahoo", "organic", "Organic search", 1, ("https://search.yahoo.com/",), ((None, 1),)),
    ("facebook", "social", "Social", 4, ("https://l.facebook.com/",), ((None, 1),)),
    ("facebook", "cpc", "Social", 2, ("https://l.facebook.com/",), (("retargeting", 1),)),
    ("instagram", "social", "Social", 3, ("None",), ((None, 1),)),
    ("t.co", "social", "Social", 2, ("https://t.co/",), ((None, 1),)),
    ("linkedin", "social", "Social", 2, ("https://www.linkedin.com/",), ((None, 1),)),
    (
        "reddit",
        "referral",
        "Referral",
        2,
        ("https://www.reddit.com/r/analytics/comments/1abc2d/which_tool_do_you_use/",),
        ((None, 1),),
    ),
    (None, "referral", "Referral", 3, ("https://news.ycombinator.com/",), ((None, 1),)),
    (
        "newsletter",
        "email",
        "Email",
        4,
        ("android-app://com.google.android.gm/", "None"),
        (("newsletter_weekly", 3), ("spring_sale_2025", 1)),
    ),
    ("chatgpt.com", "referral", "AI platform", 2, ("https://chatgpt.com/",), ((None, 1),)),
    ("google", "display", "Other", 1, ("None",), (("retargeting", 1),)),
)
_BOT_VALUES: dict[str, tuple[tuple[Value, float], ...]] = {
    "Browser": (("Other", 50), ("Chrome", 30), (None, 20)),
    "Device": (("PC", 60), ("Other", 20), (None, 20)),
    "OS": (("Linux", 50), ("Other", 20), ("Windows", 10), (None, 20)),
    "Country": (
        ("United States", 40),
        ("Ireland", 15),
        ("Germany", 10),
        ("Netherlands", 10),
        ("Singapore", 5),
        (None, 20),
    ),
    "Channel": (("Direct", 80), (None, 20)),
}
# Share of click-event sessions per event type (humans only), and events per such session.
_EVENT_RATE: tuple[float, ...] = (0.10, 0.05, 0.02, 0.08, 0.06, 0.03)
_HOURLY = np.array([1.0 + 0.75 * math.cos(2 * math.pi * (h - 15) / 24) for h in range(24)])
_SECONDS_PER_DAY = 86400


def vocabulary(profile: _data.ProjectProfile) -> dict[str, tuple[Value, ...]]:
    """The value table of each dimension for ``profile`` (code 0 is ``None``)."""
    vocab: dict[str, tuple[Value, ...]] = {}
    for dimension in SESSION_DIMENSIONS:
        values = [v for v, _ in _data.FIXED_VALUES[dimension] if v is not None]
        vocab[dimension] = (None, *values)
    vocab["URL"] = (None, *profile.urls)
    return vocab


def _codes(vocab: tuple[Value, ...], values: Sequence[Value]) -> IntArray:
    return np.array([vocab.index(v) for v in values], dtype=np.int64)


def _draw(
    rng: np.random.Generator, vocab: tuple[Value, ...], pairs: Sequence[tuple[Value, float]], n: int
) -> IntArray:
    codes = _codes(vocab, [v for v, _ in pairs])
    return codes[rng.choice(len(pairs), size=n, p=_p([w for _, w in pairs]))]


def _conditional(
    rng: np.random.Generator,
    vocab_out: tuple[Value, ...],
    given: IntArray,
    vocab_in: tuple[Value, ...],
    table: dict[str, tuple[tuple[str, float], ...]],
) -> IntArray:
    out = np.zeros(given.shape[0], dtype=np.int64)
    for value, pairs in table.items():
        mask = given == vocab_in.index(value)
        out[mask] = _draw(rng, vocab_out, pairs, int(mask.sum()))
    return out


def _human_attrs(
    rng: np.random.Generator, vocab: dict[str, tuple[Value, ...]], n: int, referrers: list[str]
) -> tuple[IntArray, IntArray]:
    col = {d: i for i, d in enumerate(SESSION_DIMENSIONS)}
    attrs = np.zeros((n, len(SESSION_DIMENSIONS)), dtype=np.int64)
    device = _draw(rng, vocab["Device"], _DEVICE_WEIGHTS, n)
    os_ = _conditional(rng, vocab["OS"], device, vocab["Device"], _OS_BY_DEVICE)
    attrs[:, col["Device"]] = device
    attrs[:, col["OS"]] = os_
    attrs[:, col["Browser"]] = _conditional(rng, vocab["Browser"], os_, vocab["OS"], _BROWSER_BY_OS)
    # Geography the service could not resolve comes back as null.
    countries = (*((v, w) for v, w in _data.COUNTRIES), (None, 0.8))
    attrs[:, col["Country"]] = _draw(rng, vocab["Country"], countries, n)
    route = rng.choice(len(_ACQUISITION), size=n, p=_p([a[3] for a in _ACQUISITION]))
    referrer = np.zeros(n, dtype=np.int64)
    for index, (source, medium, channel, _, refs, campaigns) in enumerate(_ACQUISITION):
        mask = route == index
        count = int(mask.sum())
        attrs[mask, col["Source"]] = vocab["Source"].index(source)
        attrs[mask, col["Medium"]] = vocab["Medium"].index(medium)
        attrs[mask, col["Channel"]] = vocab["Channel"].index(channel)
        attrs[mask, col["Campaign"]] = _draw(rng, vocab["Campaign"], campaigns, count)
        ref_codes = np.array([referrers.index(r) for r in refs], dtype=np.int64)
        referrer[mask] = ref_codes[rng.integers(0, len(refs), size=count)]
    return attrs, referrer


def _bot_attrs(rng: np.random.Generator, vocab: dict[str, tuple[Value, ...]], n: int) -> IntArray:
    attrs = np.zeros((n, len(SESSION_DIMENSIONS)), dtype=np.int64)
    for i, dimension in enumerate(SESSION_DIMENSIONS):
        pairs = _BOT_VALUES.get(dimension)
        if pairs is not None:
            attrs[:, i] = _draw(rng, vocab[dimension], pairs, n)
    return attrs


def _times(rng: np.random.Generator, day: date, n: int, curve: bool) -> IntArray:
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    if not curve:
        return start + rng.integers(1, _SECONDS_PER_DAY + 1, size=n)
    hours = rng.choice(24, size=n, p=_p(list(_HOURLY)))
    return start + hours * 3600 + rng.integers(1, 3601, size=n)


def _ptr(counts: IntArray) -> IntArray:
    ptr = np.zeros(counts.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    return ptr


def referrer_table() -> tuple[str, ...]:
    """Every referrer string a generated session can carry (``"None"`` is direct traffic)."""
    return tuple(dict.fromkeys(r for a in _ACQUISITION for r in a[4]))


@functools.lru_cache(maxsize=6)  # ~15 MB a day at most; a 3-day window spans 4 UTC days
def generate_day(profile: _data.ProjectProfile, day: date) -> Population:
    """The sessions (and unrecorded visits) of ``profile``'s project that started on ``day``.

    Deterministic in (seed, project, URL count, day). Volume follows the project's daily
    sessions, a weekly rhythm (weekends are quieter) and a daily curve peaking at 15:00 UTC;
    bots arrive at any hour.
    """
    rng = _rng("day", profile.seed, profile.project, len(profile.urls), day.isoformat())
    traits = _rng("traits", profile.seed, profile.project)
    bot_share = float(traits.uniform(0.04, 0.2))
    unrecorded_ratio = float(traits.uniform(0.1, 0.9))
    user_pool = profile.daily_sessions * 3
    weekday = 0.75 if day.weekday() >= 5 else 1.0
    total = int(profile.daily_sessions * weekday * rng.uniform(0.9, 1.1))
    n_bots = int(total * bot_share)
    n_humans = total - n_bots
    n_ghosts = int(n_humans * unrecorded_ratio)
    vocab = vocabulary(profile)
    referrers = list(referrer_table())
    n_urls = len(profile.urls)
    url_p = _p(profile.url_weights)
    user_p = _p(np.power(np.arange(1, user_pool + 1, dtype=np.float64), -0.6))

    # Humans: recorded sessions first, then the unrecorded visits (one page, no recording).
    n_people = n_humans + n_ghosts
    h_attrs, h_ref = _human_attrs(rng, vocab, n_people, referrers)
    h_pages = np.concatenate(
        [np.minimum(rng.geometric(0.42, size=n_humans), 30), np.ones(n_ghosts, dtype=np.int64)]
    ).astype(np.int64)
    h_urls = 1 + rng.choice(n_urls, size=int(h_pages.sum()), p=url_p)
    device_mobile = np.isin(h_attrs[:, 1], [vocab["Device"].index("Mobile")])
    depth = rng.beta(2.0, 2.2, size=n_people) * 100
    depth[device_mobile] = np.minimum(100, depth[device_mobile] * 1.2)
    total_time = rng.lognormal(math.log(45), 0.9, size=n_people) * np.sqrt(h_pages)
    active = total_time * rng.beta(3, 3, size=n_people)
    events = np.zeros((n_people, len(EVENTS)), dtype=np.int64)
    for i, rate in enumerate(_EVENT_RATE):
        boost = np.where(device_mobile, 1.3, 1.0) * np.sqrt(h_pages)
        hit = rng.random(n_people) < np.minimum(0.9, rate * boost)
        events[:, i] = np.where(hit, rng.geometric(0.5, size=n_people), 0)
    ghost = np.arange(n_people) >= n_humans
    events[ghost] = 0

    # Bots: no scroll, time or clicks; they crawl the site evenly, deep pages included.
    # One in six is unattributed: no dimension values and no page at all (the null bucket).
    b_attrs = _bot_attrs(rng, vocab, n_bots)
    blank = rng.random(n_bots) < 1 / 6
    b_attrs[blank] = 0
    b_pages = np.where(blank, 0, rng.integers(1, 12, size=n_bots)).astype(np.int64)
    b_urls = 1 + rng.integers(0, n_urls, size=int(b_pages.sum()))

    return Population(
        vocab=vocab,
        titles=(None, *profile.url_titles),
        referrers=tuple(referrers),
        time=np.concatenate(
            [_times(rng, day, n_people, curve=True), _times(rng, day, n_bots, curve=False)]
        ),
        user=np.concatenate(
            [
                rng.choice(user_pool, size=n_people, p=user_p),
                # Every bot session is a user of its own.
                user_pool + day.toordinal() * 1_000_000 + np.arange(n_bots),
            ]
        ),
        recorded=np.concatenate([~ghost, np.ones(n_bots, dtype=np.bool_)]),
        bot=np.concatenate([np.zeros(n_people, dtype=np.bool_), np.ones(n_bots, dtype=np.bool_)]),
        attrs=np.concatenate([h_attrs, b_attrs]),
        referrer=np.concatenate([h_ref, np.full(n_bots, referrers.index("None"))]),
        scroll=np.concatenate([depth, np.zeros(n_bots)]),
        total_time=np.concatenate([total_time, np.zeros(n_bots)]),
        active_time=np.concatenate([active, np.zeros(n_bots)]),
        events=np.concatenate([events, np.zeros((n_bots, len(EVENTS)), dtype=np.int64)]),
        page_ptr=_ptr(np.concatenate([h_pages, b_pages])),
        page_url=np.concatenate([h_urls, b_urls]).astype(np.int64),
    )


def days_between(start: datetime, end: datetime) -> list[date]:
    """The UTC days that overlap ``(start, end]``."""
    first = start.astimezone(UTC).date()
    last = end.astimezone(UTC).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


@functools.lru_cache(maxsize=2)  # calls within one refresh interval share a window
def window(profile: _data.ProjectProfile, start: datetime, end: datetime) -> Population:
    """The sessions of ``profile``'s project that started in ``(start, end]``."""
    days = [generate_day(profile, day) for day in days_between(start, end)]
    return Population.concat(days).between(start, end)
