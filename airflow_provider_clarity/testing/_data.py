"""Deterministic, realistic Clarity payloads for the emulator.

Everything here is private to :mod:`airflow_provider_clarity.testing`. The shapes follow
``clarity-api-observed.md`` (the live service), not the vendor page, except where a knob
asks for the vendor page's spellings.

Every value is derived from ``random.Random`` seeded with a string built from the emulator
seed, the project name and the request, so the same request always gets the same answer.
"""

from __future__ import annotations

import itertools
import math
import random
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

VALID_DIMENSIONS: tuple[str, ...] = (
    "Browser",
    "Device",
    "Country",
    "OS",
    "Source",
    "Medium",
    "Campaign",
    "Channel",
    "URL",
)
CLICK_BLOCKS: tuple[str, ...] = (
    "DeadClickCount",
    "ExcessiveScroll",
    "RageClickCount",
    "QuickbackClick",
    "ScriptErrorCount",
    "ErrorClickCount",
)
METRIC_BLOCKS: tuple[str, ...] = (*CLICK_BLOCKS, "ScrollDepth", "Traffic", "EngagementTime")
SNAPSHOT_BLOCKS: tuple[str, ...] = (
    "Browser",
    "Device",
    "OS",
    "Country",
    "PageTitle",
    "ReferrerUrl",
    "PopularPages",
)
MAX_ROWS = 1000

Spelling = bool | Literal["mixed"]
Row = dict[str, Any]
Value = str | None

# (value, weight). None is a real bucket the live service reports as JSON null.
_BROWSERS: tuple[tuple[Value, float], ...] = (
    ("Chrome", 38),
    ("ChromeMobile", 22),
    ("MobileSafari", 14),
    ("Edge", 9),
    ("Safari", 5),
    ("Firefox", 4),
    ("SamsungInternet", 3),
    ("FacebookInApp", 1.5),
    ("Opera", 1),
    ("Other", 1),
)
_DEVICES: tuple[tuple[Value, float], ...] = (
    ("PC", 52),
    ("Mobile", 42),
    ("Tablet", 5),
    ("Other", 1),
)
_OSES: tuple[tuple[Value, float], ...] = (
    ("Windows", 35),
    ("Android", 28),
    ("iOS", 20),
    ("MacOSX", 10),
    ("Linux", 3),
    ("ChromeOS", 2),
    ("Other", 2),
)
_COUNTRIES: tuple[tuple[Value, float], ...] = tuple(
    (name, 40 / (rank + 1) ** 1.1)
    for rank, name in enumerate(
        (
            "United States",
            "India",
            "United Kingdom",
            "Germany",
            "Canada",
            "France",
            "Brazil",
            "Australia",
            "Japan",
            "Netherlands",
            "Spain",
            "Italy",
            "Mexico",
            "Poland",
            "Sweden",
            "Türkiye",
            "South Korea",
            "Indonesia",
            "Philippines",
            "Nigeria",
            "South Africa",
            "Côte d'Ivoire",
            "Viet Nam",
            "Argentina",
            "Ireland",
            "Switzerland",
            "Singapore",
            "Egypt",
            "Pakistan",
            "New Zealand",
        )
    )
)
_SOURCES: tuple[tuple[Value, float], ...] = (
    (None, 30),
    ("google", 35),
    ("bing", 6),
    ("facebook", 6),
    ("newsletter", 4),
    ("instagram", 3),
    ("duckduckgo", 2),
    ("t.co", 2),
    ("linkedin", 2),
    ("chatgpt.com", 2),
    ("reddit", 2),
    ("yahoo", 1),
)
_MEDIUMS: tuple[tuple[Value, float], ...] = (
    (None, 30),
    ("organic", 38),
    ("cpc", 12),
    ("referral", 8),
    ("social", 7),
    ("email", 4),
    ("display", 1),
)
_CAMPAIGNS: tuple[tuple[Value, float], ...] = (
    (None, 70),
    ("spring_sale_2025", 8),
    ("brand_search", 7),
    ("retargeting", 5),
    ("newsletter_weekly", 4),
    ("black-friday", 3),
    ("launch webinar", 2),
    ("(not set)", 1),
)
_CHANNELS: tuple[tuple[Value, float], ...] = (
    ("Organic search", 35),
    ("Direct", 30),
    ("Paid search", 12),
    ("Social", 9),
    ("Referral", 7),
    ("Email", 4),
    ("AI platform", 2),
    ("Other", 1),
)
_FIXED_VALUES: dict[str, tuple[tuple[Value, float], ...]] = {
    "Browser": _BROWSERS,
    "Device": _DEVICES,
    "Country": _COUNTRIES,
    "OS": _OSES,
    "Source": _SOURCES,
    "Medium": _MEDIUMS,
    "Campaign": _CAMPAIGNS,
    "Channel": _CHANNELS,
}
_REFERRERS: tuple[str, ...] = (
    "https://www.google.com/",
    "https://www.bing.com/",
    "https://l.facebook.com/",
    "https://duckduckgo.com/",
    "https://t.co/",
    "https://www.linkedin.com/",
    "android-app://com.google.android.gm/",
    "https://chatgpt.com/",
    "https://news.ycombinator.com/",
    "https://www.reddit.com/r/analytics/comments/1abc2d/which_tool_do_you_use/",
    "https://search.yahoo.com/",
    "https://www.google.com/url?sa=t&rct=j&q=&esrc=s&source=web&cd=&ved=2ahUKEwi&usg=AOvVaw3",
)
_SECTIONS = ("blog", "products", "docs", "pricing", "help", "news", "category", "events", "careers")
_WORDS = (
    "spring",
    "sale",
    "guide",
    "how-to",
    "best",
    "analytics",
    "dashboard",
    "shoes",
    "summer",
    "release",
    "notes",
    "tips",
    "setup",
    "privacy",
    "checkout",
    "compare",
    "review",
    "faq",
    "heatmaps",
    "session",
    "recordings",
    "new",
    "winter",
    "bundle",
    "starter",
)
_UTM_SOURCES = ("google", "facebook", "newsletter", "linkedin", "bing", "instagram")
_UTM_MEDIUMS = ("cpc", "social", "email", "display", "referral")
_UTM_CAMPAIGNS = ("spring_sale_2025", "brand_search", "retargeting", "black-friday", "launch")
_TOKEN_CHARS = string.ascii_letters + string.digits + "_-"
# One URL in this many is made longer than 800 characters (query strings full of tracking).
_LONG_URL_EVERY = 40
# Share of the total sessions in the Traffic row whose dimension values are all null.
_NULL_ROW_SHARE = 0.02
# Share of a block's rows kept when the population is under the 1000-row cap; Traffic keeps
# all, so blocks differ in length like the live service's do.
_BLOCK_FRACTION: dict[str, float] = {
    "DeadClickCount": 0.55,
    "ExcessiveScroll": 0.35,
    "RageClickCount": 0.4,
    "QuickbackClick": 0.6,
    "ScriptErrorCount": 0.45,
    "ErrorClickCount": 0.5,
    "ScrollDepth": 0.9,
    "Traffic": 1.0,
    "EngagementTime": 0.9,
}
# Enumerate every combination up to this many; above it, sample combinations instead.
_ENUMERATE_LIMIT = 5000


@dataclass(frozen=True)
class ProjectProfile:
    """The fixed facts about one emulated project: its site, URLs and traffic volume."""

    project: str
    seed: int
    urls: tuple[str, ...]
    url_weights: tuple[float, ...]
    titles: tuple[str, ...]
    daily_sessions: int


def _rng(*parts: object) -> random.Random:
    # String seeds are hashed with SHA-512 by random.seed: stable across processes.
    return random.Random("\x1f".join(str(p) for p in parts))


def _token(rng: random.Random, length: int) -> str:
    return "".join(rng.choices(_TOKEN_CHARS, k=length))


def _make_url(rng: random.Random, base: str, index: int) -> str:
    if index == 0:
        path = "/"
    elif index < len(_SECTIONS) + 1:
        path = f"/{_SECTIONS[index - 1]}"
    else:
        section = _SECTIONS[index % len(_SECTIONS)]
        path = f"/{section}/{rng.choice(_WORDS)}-{rng.choice(_WORDS)}-{index}"
    url = base + path
    if index <= len(_SECTIONS):
        return url  # the landing pages are mostly reached without tracking parameters
    if index % _LONG_URL_EVERY == _LONG_URL_EVERY - 1:
        # Ad-click landings: tracking ids, a nested redirect and opaque state blobs.
        nested = f"{base}/checkout/return?cart={_token(rng, 40)}&step=payment&ref={_token(rng, 24)}"
        query = (
            f"utm_source={rng.choice(_UTM_SOURCES)}&utm_medium={rng.choice(_UTM_MEDIUMS)}"
            f"&utm_campaign={rng.choice(_UTM_CAMPAIGNS)}&utm_content={_token(rng, 16)}"
            f"&fbclid=IwAR{_token(rng, 120)}&_gl=1*{_token(rng, 60)}"
            f"&redirect_uri={quote(nested, safe='')}&state={_token(rng, 300 + rng.randrange(400))}"
        )
        return f"{url}?{query}"
    roll = rng.random()
    if roll < 0.3:
        return (
            f"{url}?utm_source={rng.choice(_UTM_SOURCES)}&utm_medium={rng.choice(_UTM_MEDIUMS)}"
            f"&utm_campaign={rng.choice(_UTM_CAMPAIGNS)}"
        )
    if roll < 0.4:
        return f"{url}?fbclid=IwAR{_token(rng, 58)}"
    if roll < 0.45:
        return f"{url}?gclid=Cj0KCQ{_token(rng, 80)}"
    if roll < 0.5:
        return f"{url}?q={rng.choice(_WORDS)}+{rng.choice(_WORDS)}&page={rng.randrange(1, 9)}"
    return url


def _title(path_url: str, site: str) -> str:
    path = path_url.split("?", 1)[0].split("/", 3)[-1]
    if not path:
        return f"{site} | Home"
    words = re.sub(r"-\d+$", "", path.rsplit("/", 1)[-1]).replace("-", " ")
    return f"{words.capitalize()} | {site}"


def build_profile(seed: int, project: str, url_count: int) -> ProjectProfile:
    """Build the site of ``project``: ``url_count`` URLs, page titles and a traffic volume."""
    rng = _rng("profile", seed, project)
    slug = re.sub(r"[^a-z0-9]+", "-", project.lower()).strip("-") or "project"
    base = f"https://www.{slug}.example"
    urls = tuple(_make_url(rng, base, i) for i in range(url_count))
    # Popularity falls off like a Zipf law; the home page is the most visited.
    weights = tuple(1.0 / (i + 1) ** 0.9 for i in range(url_count))
    site = slug.replace("-", " ").title()
    titles = tuple(dict.fromkeys(_title(u, site) for u in urls[:300]))
    return ProjectProfile(
        project=project,
        seed=seed,
        urls=urls,
        url_weights=weights,
        titles=titles,
        daily_sessions=rng.randrange(20_000, 80_000),
    )


def _count(value: float) -> str | int:
    """A count the way Clarity sends it: a string holding an int, or the integer 0."""
    number = int(value)
    return str(number) if number else 0


def _pct(value: float) -> float | int:
    """A percentage the way Clarity sends it: 0, 100 or a float with 2 decimals."""
    rounded = round(value, 2)
    if rounded <= 0:
        return 0
    if rounded >= 100:
        return 100
    return rounded


def wire_key(dimension: str, os_key: str) -> str:
    """The row key Clarity uses for a requested dimension (``URL`` -> ``Url``, ``OS`` -> os_key)."""
    if dimension == "URL":
        return "Url"
    if dimension == "OS":
        return os_key
    return dimension


def _values(profile: ProjectProfile, dimension: str) -> tuple[Sequence[Value], Sequence[float]]:
    if dimension == "URL":
        return profile.urls, profile.url_weights
    pairs = _FIXED_VALUES[dimension]
    return [v for v, _ in pairs], [w for _, w in pairs]


def _combinations(
    rng: random.Random, profile: ProjectProfile, dimensions: Sequence[str]
) -> list[tuple[tuple[Value, ...], float]]:
    """The dimension-value combinations seen in the window, with a weight each, heaviest first."""
    columns = [_values(profile, d) for d in dimensions]
    size = math.prod(len(values) for values, _ in columns)
    found: dict[tuple[int, ...], float] = {}
    if size <= _ENUMERATE_LIMIT:
        for idx in itertools.product(*(range(len(values)) for values, _ in columns)):
            # With several dimensions some combinations never occur (no Safari on Windows).
            if len(columns) > 1 and rng.random() < 0.3:
                continue
            found[idx] = math.prod(columns[c][1][i] for c, i in enumerate(idx))
    else:
        cum = [list(itertools.accumulate(weights)) for _, weights in columns]
        ranges = [range(len(values)) for values, _ in columns]
        for _ in range(40):
            draws = [rng.choices(ranges[c], cum_weights=cum[c], k=800) for c in range(len(columns))]
            for idx in zip(*draws, strict=True):
                found.setdefault(idx, math.prod(columns[c][1][i] for c, i in enumerate(idx)))
            if len(found) > MAX_ROWS + 100:
                break
    if not found:
        first = tuple(0 for _ in columns)
        found[first] = 1.0
    combos = [
        (tuple(columns[c][0][i] for c, i in enumerate(idx)), w * rng.uniform(0.5, 1.5))
        for idx, w in found.items()
    ]
    combos.sort(key=lambda item: item[1], reverse=True)
    return combos


def _traffic_row(
    rng: random.Random, sessions: int, spelling: Spelling, index: int
) -> dict[str, Any]:
    bots = int(sessions * rng.uniform(0.0, 0.25)) if rng.random() > 0.2 else 0
    users = int(sessions * rng.uniform(0.6, 0.95))
    pages = rng.uniform(1.0, 4.5) if sessions else 0.0
    vendor = spelling is True or (spelling == "mixed" and index % 2 == 1)
    return {
        "totalSessionCount": _count(sessions),
        "totalBotSessionCount": _count(bots),
        ("distantUserCount" if vendor else "distinctUserCount"): _count(users),
        ("PagesPerSessionPercentage" if vendor else "pagesPerSessionPercentage"): _pct(pages),
    }


def _click_row(rng: random.Random, sessions: int, missing_fields: bool) -> dict[str, Any]:
    with_metric = rng.uniform(0, 30) if rng.random() > 0.15 else 0.0
    if not sessions:
        with_metric = 0.0
    row: dict[str, Any] = {
        "sessionsCount": _count(sessions),
        "sessionsWithMetricPercentage": _pct(with_metric),
        "sessionsWithoutMetricPercentage": _pct(100 - round(with_metric, 2)),
        "pagesViews": _count(sessions * rng.uniform(1.0, 4.0)),
        "subTotal": _count(sessions * with_metric / 100 * rng.uniform(1.0, 4.0)),
    }
    if missing_fields and rng.random() < 0.05:
        for key in rng.sample(sorted(row), rng.randrange(1, 3)):
            del row[key]
    return row


def _metric_row(
    block: str,
    rng: random.Random,
    sessions: int,
    *,
    spelling: Spelling,
    missing_fields: bool,
    index: int,
) -> dict[str, Any]:
    if block == "Traffic":
        return _traffic_row(rng, sessions, spelling, index)
    if block == "ScrollDepth":
        depth = rng.uniform(10, 95) if sessions else 0.0
        return {"averageScrollDepth": _pct(depth)}
    if block == "EngagementTime":
        total = sessions * rng.uniform(20, 300)
        return {"totalTime": _count(total), "activeTime": _count(total * rng.uniform(0.2, 0.7))}
    return _click_row(rng, sessions, missing_fields)


def empty_payload(dimensions: Sequence[str]) -> list[Row]:
    """Every block with no rows: what Clarity answers for a project without traffic."""
    names = METRIC_BLOCKS if dimensions else METRIC_BLOCKS + SNAPSHOT_BLOCKS
    return [{"metricName": name, "information": []} for name in names]


def dimensioned_payload(
    profile: ProjectProfile,
    *,
    num_of_days: int,
    dimensions: Sequence[str],
    spelling: Spelling,
    os_key: str,
    missing_fields: bool,
) -> list[Row]:
    """The 9 metric blocks broken down by 1 to 3 valid ``dimensions`` (canonical names)."""
    rng = _rng("dims", profile.seed, profile.project, num_of_days, *dimensions)
    combos = _combinations(rng, profile, dimensions)
    keys = [wire_key(d, os_key) for d in dimensions]
    total_weight = sum(w for _, w in combos)
    total_sessions = profile.daily_sessions * num_of_days * rng.uniform(0.9, 1.1)
    sessions = [round(total_sessions * w / total_weight) for _, w in combos]
    null_combo: tuple[Value, ...] = tuple(None for _ in dimensions)
    has_null = any(values == null_combo for values, _ in combos)
    null_sessions = round(total_sessions * _NULL_ROW_SHARE)

    blocks: list[Row] = []
    for block in METRIC_BLOCKS:
        if block == "Traffic":
            members = list(zip((v for v, _ in combos), sessions, strict=True))
            if not has_null:
                # The unattributed bucket: every dimension value null.
                members.append((null_combo, null_sessions))
                members.sort(key=lambda item: item[1], reverse=True)
        elif len(combos) >= MAX_ROWS:
            members = list(zip((v for v, _ in combos[:MAX_ROWS]), sessions, strict=False))
        else:
            keep = max(1, math.ceil(_BLOCK_FRACTION[block] * len(combos)))
            members = list(zip((v for v, _ in combos[:keep]), sessions, strict=False))
        rows: list[Row] = []
        for index, (values, count) in enumerate(members[:MAX_ROWS]):
            row = _metric_row(
                block,
                rng,
                count,
                spelling=spelling,
                missing_fields=missing_fields,
                index=index,
            )
            row.update(zip(keys, values, strict=True))
            rows.append(row)
        blocks.append({"metricName": block, "information": rows})
    return blocks


def _name_rows(rng: random.Random, pairs: Sequence[tuple[Value, float]], total: float) -> list[Row]:
    weighted = [(name, w * rng.uniform(0.6, 1.4)) for name, w in pairs]
    weight_sum = sum(w for _, w in weighted)
    weighted.sort(key=lambda item: item[1], reverse=True)
    return [
        {"name": name, "sessionsCount": _count(total * w / weight_sum)}
        for name, w in weighted[:MAX_ROWS]
    ]


def snapshot_payload(
    profile: ProjectProfile,
    *,
    num_of_days: int,
    spelling: Spelling,
    missing_fields: bool,
) -> list[Row]:
    """The 16-block answer to a call without (valid) dimensions: totals plus top lists."""
    rng = _rng("snapshot", profile.seed, profile.project, num_of_days)
    total = round(profile.daily_sessions * num_of_days * rng.uniform(0.9, 1.1))
    blocks: list[Row] = [
        {
            "metricName": block,
            "information": [
                _metric_row(
                    block, rng, total, spelling=spelling, missing_fields=missing_fields, index=0
                )
            ],
        }
        for block in METRIC_BLOCKS
    ]
    # Sessions whose country could not be resolved come back with a null name.
    countries = (*_COUNTRIES, (None, 0.8))
    titles: list[tuple[Value, float]] = [
        (title, 1.0 / (i + 1) ** 0.9) for i, title in enumerate(profile.titles)
    ]
    titles.append((None, 0.3))
    referrers: list[tuple[Value, float]] = [("None", 40.0)]  # "None" is direct traffic
    referrers += [(ref, 20.0 / (i + 1)) for i, ref in enumerate(_REFERRERS)]
    lists = {
        "Browser": _name_rows(rng, _BROWSERS, total),
        "Device": _name_rows(rng, _DEVICES, total),
        "OS": _name_rows(rng, _OSES, total),
        "Country": _name_rows(rng, countries, total),
        "PageTitle": _name_rows(rng, titles, total),
        "ReferrerUrl": _name_rows(rng, referrers, total),
    }
    weight_sum = sum(profile.url_weights) or 1.0
    pages = [
        {"url": url, "visitsCount": _count(total * 1.6 * w / weight_sum * rng.uniform(0.8, 1.2))}
        for url, w in zip(profile.urls[:MAX_ROWS], profile.url_weights, strict=False)
    ]
    for name in SNAPSHOT_BLOCKS:
        rows = pages if name == "PopularPages" else lists[name]
        blocks.append({"metricName": name, "information": rows})
    return blocks
