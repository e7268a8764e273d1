"""Clarity's wire facts: endpoint, dimensions, audience, row cap, aliases.

Constants only, no behaviour and no imports from this package. Everything that must agree
with what the live Data Export API accepts or sends is spelled once, here, and read by
``request.py``, ``connection/token.py``, ``hooks/clarity.py``, ``normalize.py`` and
``derive.py``. The emulator (``testing/``) keeps its own dimension list on purpose: it plays
Clarity's side, so a wrong list here is caught by the tests instead of being mirrored.
"""

from __future__ import annotations

DEFAULT_HOST = "https://www.clarity.ms"
API_ENDPOINT = "/export-data/api/v1/project-live-insights"
CLARITY_AUDIENCE = "clarity.data-exporter"

#: Dimension names exactly as Clarity expects them on the wire (case-sensitive there).
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
#: Dimensions that take one value per session, so a finer breakdown sums to a coarser one.
SESSION_DIMENSIONS: tuple[str, ...] = VALID_DIMENSIONS[:-1]
MAX_DIMENSIONS = 3
NUM_OF_DAYS: tuple[int, ...] = (1, 2, 3)

#: Clarity caps each block at this many rows and does not say when it cut one short.
ROW_CAP = 1000

#: The vendor page documents "Country/Region", but the live API ignores it (200 with the
#: no-dimension snapshot, call still counted); "Country" is what breaks down by geography.
DIMENSION_ALIASES: dict[str, str] = {"country/region": "Country"}

#: Names people reach for that difflib cannot connect to a valid one (keys lowercased,
#: spaces, hyphens and underscores removed or kept as typed).
DIMENSION_HINTS: dict[str, str] = {
    "region": "Country",
    "countryregion": "Country",
    "geo": "Country",
    "location": "Country",
    "operatingsystem": "OS",
    "platform": "OS",
    "page": "URL",
    "pageurl": "URL",
    "path": "URL",
    "referrer": "Source",
    "referrerurl": "Source",
    "utm_source": "Source",
    "utm_medium": "Medium",
    "utm_campaign": "Campaign",
    "devicetype": "Device",
}
