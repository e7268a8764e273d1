"""The emulated projects' vocabulary: dimension values, sites, URLs, and wire formats.

Everything here is private to :mod:`airflow_provider_clarity.testing`. The shapes follow
``clarity-api-observed.md`` (the live service), not the vendor page, except where a knob
asks for the vendor page's spellings. The sessions are generated in ``population.py`` and
aggregated into answers in ``answers.py``.
"""

from __future__ import annotations

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
#: A mobile-app project's names for the blocks and fields that differ from a website's.
MOBILE_NAMES: dict[str, str] = {
    "DeadClickCount": "DeadTapCount",
    "RageClickCount": "RageTapCount",
    "ScriptErrorCount": "ApplicationErrorCount",
    "PopularPages": "PopularScreens",
    "pagesViews": "screensViews",
    "pagesPerSessionPercentage": "screensPerSessionPercentage",
    "PagesPerSessionPercentage": "screensPerSessionPercentage",
    "url": "screenName",
}

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
COUNTRIES: tuple[tuple[Value, float], ...] = tuple(
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
FIXED_VALUES: dict[str, tuple[tuple[Value, float], ...]] = {
    "Browser": _BROWSERS,
    "Device": _DEVICES,
    "Country": COUNTRIES,
    "OS": _OSES,
    "Source": _SOURCES,
    "Medium": _MEDIUMS,
    "Campaign": _CAMPAIGNS,
    "Channel": _CHANNELS,
}
REFERRERS: tuple[str, ...] = (
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


@dataclass(frozen=True)
class ProjectProfile:
    """The fixed facts about one emulated project: its site, URLs and traffic volume."""

    project: str
    seed: int
    urls: tuple[str, ...]
    url_weights: tuple[float, ...]
    titles: tuple[str, ...]
    daily_sessions: int
    url_titles: tuple[str | None, ...] = ()
    mobile_app: bool = False


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


def _screen(rng: random.Random, index: int) -> str:
    if index == 0:
        return "MainActivity"
    words = "".join(w.replace("-", " ").title().replace(" ", "") for w in rng.sample(_WORDS, 2))
    return f"{words}{'Screen' if index % 2 else 'Activity'}{index}"


def build_profile(
    seed: int, project: str, url_count: int, *, mobile_app: bool = False
) -> ProjectProfile:
    """Build the site (or app) of ``project``: ``url_count`` URLs or screens, titles, volume.

    Ad-click landing pages (the long URLs) have no title: their PageTitle bucket is null.
    """
    rng = _rng("profile", seed, project)
    slug = re.sub(r"[^a-z0-9]+", "-", project.lower()).strip("-") or "project"
    base = f"https://www.{slug}.example"
    daily_sessions = rng.randrange(20_000, 80_000)
    if mobile_app:
        urls = tuple(_screen(rng, i) for i in range(url_count))
    else:
        urls = tuple(_make_url(rng, base, i) for i in range(url_count))
    # Popularity falls off like a Zipf law; the home page is the most visited.
    weights = tuple(1.0 / (i + 1) ** 0.9 for i in range(url_count))
    site = slug.replace("-", " ").title()
    url_titles: tuple[str | None, ...] = tuple(
        None if len(u) > 800 else (u if mobile_app else _title(u, site)) for u in urls
    )
    titles = tuple(dict.fromkeys(t for t in url_titles[:300] if t))
    return ProjectProfile(
        project=project,
        seed=seed,
        urls=urls,
        url_weights=weights,
        titles=titles,
        daily_sessions=daily_sessions,
        url_titles=url_titles,
        mobile_app=mobile_app,
    )


def count(value: float) -> str | int:
    """A count the way Clarity sends it: a string holding an int, or the integer 0."""
    number = int(value)
    return str(number) if number else 0


def pct(value: float) -> float | int:
    """A percentage the way Clarity sends it: 0, 100 or a float with 2 decimals."""
    rounded = round(float(value), 2)
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


def empty_payload(dimensions: Sequence[str]) -> list[Row]:
    """Every block with no rows: what Clarity answers for a project without traffic."""
    names = METRIC_BLOCKS if dimensions else METRIC_BLOCKS + SNAPSHOT_BLOCKS
    return [{"metricName": name, "information": []} for name in names]
