"""A Clarity API token's claims, read offline.

STYLE: what can be told about a token without calling Clarity (each call is one of ten a
day): is it a JWT, is it for the Data Export audience, which project it names, when it
expires. The signature is never checked (only Clarity can), and nothing here ever puts the
token, or any part of it, into a message.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from airflow_provider_clarity._api import CLARITY_AUDIENCE
from airflow_provider_clarity._values import utc_text

__all__ = ["GET_A_NEW_ONE", "TokenCheck", "inspect_token", "unverified_jwt"]

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
            f"expected {CLARITY_AUDIENCE!r})."
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
