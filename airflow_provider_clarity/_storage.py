"""Durable, all-or-nothing writes to any ``ObjectStoragePath``.

Private helpers of :mod:`airflow_provider_clarity.operators.export`; they may change
without notice. Local files are written to a temporary file in the same folder and then
renamed, so a reader never sees a half-written file under the final name. Object stores
(``s3://``, ``gs://``...) publish an object only when its upload completes, so one put is
already all-or-nothing there.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from airflow.sdk import ObjectStoragePath

from airflow_provider_clarity.exceptions import ClarityRequestError

__all__ = [
    "LOCAL_PROTOCOLS",
    "asset_uri",
    "is_local",
    "read_bytes_or_none",
    "resolve_path",
    "write_atomic",
]

LOCAL_PROTOCOLS = ("", "file", "local")

# Which pip extra provides the filesystem for a scheme, for the error a user sees.
_EXTRA_FOR_SCHEME = {
    "s3": "amazon",
    "s3a": "amazon",
    "s3n": "amazon",
    "gs": "google",
    "gcs": "google",
}


def is_local(path: ObjectStoragePath) -> bool:
    """True for paths on the worker's own disk (``file://`` or a bare absolute path)."""
    return path.protocol in LOCAL_PROTOCOLS


def resolve_path(value: str | ObjectStoragePath, *, what: str) -> ObjectStoragePath:
    """Turn a URI or ``ObjectStoragePath`` into a path whose filesystem is known to load.

    The filesystem is resolved here, before anything else happens, so a missing extra is
    reported before a Clarity call is spent rather than after.

    :param what: the operator argument the value came from, for error messages.
    :raises ClarityRequestError: the scheme has no filesystem installed, or a local path is
        relative (it would land wherever the worker happens to run).
    """
    path = value if isinstance(value, ObjectStoragePath) else ObjectStoragePath(str(value))
    if is_local(path) and not os.path.isabs(path.path):
        raise ClarityRequestError(
            f"{what} {str(value)!r} is a relative path; give an absolute one such as "
            f"'file:///data/clarity/os.parquet' so every worker writes to the same place."
        )
    try:
        path.fs  # noqa: B018  (resolving it is the check)
    except (ImportError, ValueError) as exc:
        scheme = path.protocol
        extra = _EXTRA_FOR_SCHEME.get(scheme)
        if extra:
            hint = f"install it with: pip install 'airflow-provider-clarity[{extra}]'"
        else:
            hint = f"install the Airflow provider or fsspec package that handles '{scheme}://'"
        raise ClarityRequestError(
            f"{what} {_without_userinfo(str(value))!r} needs a filesystem for '{scheme}://' "
            f"that is not installed ({exc}); {hint}. No Clarity call was made."
        ) from None
    return path


def write_atomic(path: ObjectStoragePath, data: bytes) -> None:
    """Write ``data`` to ``path`` so that the final name holds either nothing or all of it.

    Local files: a temporary file in the same folder, flushed to disk, then renamed over
    the final name. Other stores: a single upload, which the store publishes only whole.
    """
    if is_local(path):
        _write_local_atomic(path.path, data)
        return
    with path.open("wb") as handle:
        handle.write(data)


def _write_local_atomic(target: str, data: bytes) -> None:
    folder = os.path.dirname(target) or "."
    os.makedirs(folder, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def read_bytes_or_none(path: ObjectStoragePath) -> bytes | None:
    """Return the file's content, or ``None`` when it does not exist."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def asset_uri(value: str | ObjectStoragePath | Any) -> str:
    """The Airflow asset URI of a storage location: no connection id, local paths as ``file://``.

    ``s3://aws_default@bucket/key`` becomes ``s3://bucket/key`` (the connection is how to
    reach the data, not part of its identity), and ``/data/x.parquet`` becomes
    ``file:///data/x.parquet``.
    """
    text = _without_userinfo(str(value))
    parts = urlsplit(text)
    if not parts.scheme or parts.scheme == "local":
        return urlunsplit(("file", "", parts.path, "", ""))
    return text


def _without_userinfo(uri: str) -> str:
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
