"""A Clarity API token's claims, read offline.

What can be told about a token without calling Clarity (each call is one of ten a
day): is it a JWT, is it for the Data Export audience, which project it names, when it
expires. The signature is never checked (only Clarity can), and nothing here ever puts the
token, or any part of it, into a message.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from airflow_provider_clarity.api_facts import CLARITY_AUDIENCE
from airflow_provider_clarity.windows.utc import utc_text

#: The fix for every token problem; the caller appends where the token lives.
GET_A_NEW_ONE = (
    "Generate a new token in Clarity > Settings > Data Export (Clarity shows it only once) "
    "and paste all of it into"
)


def unverified_jwt(token: str) -> tuple[Any, Any] | None:
    """A JWT's header and claims, signature unchecked; ``None`` if it is not a JWT.

    Decoded by hand rather than with PyJWT, which imports ``cryptography`` (about 40
    modules) in every worker that runs an export just to read an expiry date.
    """
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        return None
    try:
        header, claims = (
            json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
            for part in parts[:2]
        )
    except (ValueError, binascii.Error):  # bad base64, bad UTF-8 or bad JSON
        return None
    return header, claims


@dataclass(frozen=True)
class TokenCheck:
    """What can be told about an API token offline (signature unchecked); never the token.

    ``problem`` is one sentence saying what is wrong, ``None`` when nothing is; the fix is
    left to the caller, which knows where the token lives.
    """

    problem: str | None
    subject: str | None = None
    expires: datetime | None = None
    audience_wrong: bool = False

    @property
    def expired(self) -> bool:
        """True when the token's own ``exp`` has passed: Clarity would certainly answer 401."""
        return self.expires is not None and self.problem is not None


def inspect_token(token: str) -> TokenCheck:
    """Check the token is an unexpired Clarity Data Export JWT, without calling Clarity."""
    not_jwt = TokenCheck(
        "This API token is not a JWT: a Clarity token is one long string of about 700 "
        "characters in three dot-separated parts, starting 'eyJ'."
    )
    decoded = unverified_jwt(token)
    if decoded is None:
        return not_jwt
    header, claims = decoded
    if not isinstance(header, dict) or not header.get("alg") or not isinstance(claims, dict):
        return not_jwt
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if CLARITY_AUDIENCE not in audiences:
        return TokenCheck(
            f"This API token is not a Clarity Data Export token (its audience is {audience!r}, "
            f"expected {CLARITY_AUDIENCE!r}).",
            audience_wrong=True,
        )
    subject = str(claims["sub"]) if claims.get("sub") else None
    expires: datetime | None = None
    raw_exp = claims.get("exp")
    if isinstance(raw_exp, int | float) and not isinstance(raw_exp, bool):
        try:
            expires = datetime.fromtimestamp(raw_exp, tz=UTC)
        except (OverflowError, OSError, ValueError):  # an exp no clock can reach: no expiry
            return TokenCheck(None, subject)
        if expires <= datetime.now(UTC):
            return TokenCheck(
                f"This API token (project {subject or '(unknown)'}) expired on "
                f"{utc_text(expires, minutes=True)}.",
                subject,
                expires,
            )
    return TokenCheck(None, subject, expires)


# ------------------------------------------------------------------ what the user pasted

# Characters a token can hold: base64url (JWT) plus the separators and padding of base64.
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9._~+/=-]+")
# Quotes a document, an e-mail or a shell may wrap around a pasted value.
_QUOTES = "\"'`\u201c\u201d\u2018\u2019\u00ab\u00bb\u201e\u201a\u2039\u203a"
# "Bearer xyz", "Authorization: Bearer xyz", "bearer:xyz".
_PREFIX = re.compile(r"^(?:authorization\s*:\s*)?bearer(?:\s*:\s*|\s+)", re.IGNORECASE)


def _is_blank(char: str) -> bool:
    # Spaces, line breaks, tabs, no-break and zero-width spaces, byte-order marks.
    return char.isspace() or unicodedata.category(char) in ("Cf", "Zs", "Zl", "Zp")


def _trim(text: str) -> tuple[str, bool]:
    """``text`` without surrounding blanks and quotes, and whether a quote was removed."""
    start, end = 0, len(text)
    while start < end and (_is_blank(text[start]) or text[start] in _QUOTES):
        start += 1
    while end > start and (_is_blank(text[end - 1]) or text[end - 1] in _QUOTES):
        end -= 1
    removed = text[:start] + text[end:]
    return text[start:end], any(c in _QUOTES for c in removed)


@dataclass(frozen=True)
class CleanToken:
    """The token to send, or why there is none; never shows the token itself.

    ``token`` is ``None`` exactly when ``problem`` says what is wrong with what was pasted;
    ``fixed`` lists what was removed from the pasted text (for a log line).
    """

    token: str | None = field(repr=False)
    problem: str | None = None
    fixed: tuple[str, ...] = ()


def clean_token(pasted: object) -> CleanToken:
    """Turn what a user pasted into the token that is sent, or say why it cannot be one.

    Removed, because a token never contains them: surrounding quotes (typographic ones
    too), a ``Bearer `` or ``Authorization: Bearer `` prefix, and every space, line break
    and invisible character inside (a token copied from a wrapped e-mail or a terminal).
    Anything else outside base64url is refused, naming the character but not the token.
    """
    text = "" if pasted is None else str(pasted)
    fixed: list[str] = []
    while True:  # quotes around a prefix around quotes...
        trimmed, quoted = _trim(text)
        if quoted:
            fixed.append("quotes around it")
        prefix = _PREFIX.match(trimmed)
        if prefix:
            trimmed = trimmed[prefix.end() :]
            fixed.append("a 'Bearer ' prefix")
        if trimmed == text:
            break
        text = trimmed
    inner = "".join(c for c in text if not _is_blank(c))
    if inner != text:
        fixed.append("spaces or line breaks inside it")
    if not inner:
        return CleanToken(None, "The connection has no API token.")
    if not _TOKEN_CHARS.fullmatch(inner):
        bad = [(i, c) for i, c in enumerate(inner) if not _TOKEN_CHARS.fullmatch(c)]
        position, char = bad[0]
        name = unicodedata.name(char, f"U+{ord(char):04X}")
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        return CleanToken(
            None,
            f"The API token contains a character no Clarity token has: {name} at position "
            f"{position + 1} of {len(inner)}{more} (a token is letters, digits and '-_.' only; "
            f"typographic quotes or accents come from pasting it through a document).",
        )
    return CleanToken(inner, None, tuple(dict.fromkeys(fixed)))


# ------------------------------------------------------------------ keeping it out of text

#: Any run of this many characters shared with the token is removed from text shown or kept.
SCRUB_MIN_RUN = 16
_REMOVED = "[token removed]"


def scrub(text: str, token: str | None, *, min_run: int = SCRUB_MIN_RUN) -> str:
    """``text`` with every run of ``min_run`` or more characters of ``token`` removed.

    For what a server echoed back (a gateway that reflects the request into its error
    page): the whole token, and any piece of it long enough to matter, is replaced by
    ``[token removed]``.
    """
    if not token or len(token) < min_run or len(text) < min_run:
        return text
    pieces = {token[i : i + min_run] for i in range(len(token) - min_run + 1)}
    covered = bytearray(len(text))
    found = False
    for start in range(len(text) - min_run + 1):
        if text[start : start + min_run] in pieces:
            covered[start : start + min_run] = b"\x01" * min_run
            found = True
    if not found:
        return text
    out: list[str] = []
    previous = 0
    for index, flag in enumerate(covered):
        if flag and previous == 0:
            out.append(_REMOVED)
        if not flag:
            out.append(text[index])
        previous = flag
    return "".join(out)


def mask(token: str) -> None:
    """Tell Airflow's log masker about the cleaned token, which may differ from the pasted
    one (Airflow masks the connection's password as stored, line breaks and all)."""
    try:
        from airflow.sdk.log import mask_secret

        mask_secret(token)
    except Exception:  # outside Airflow's logging set-up (a script): nothing to mask
        return
