"""Durable, all-or-nothing writes to any ``ObjectStoragePath``.

Private helpers of :mod:`airflow_provider_clarity.operators.export`; they may change
without notice. Local files are written to a temporary file in the same folder and then
renamed, so a reader never sees a half-written file under the final name. Object stores
(``s3://``, ``gs://``...) publish an object only when its upload completes, so one put is
already all-or-nothing there.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import tempfile
import threading
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from airflow.sdk import ObjectStoragePath

from airflow_provider_clarity.exceptions import ClarityRequestError

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


def is_local_uri(text: str) -> bool:
    """``is_local`` for a location not yet made a path: a bare path, ``file://``, ``local://``."""
    return (text.split("://", 1)[0] if "://" in text else "") in LOCAL_PROTOCOLS


def resolve_path(
    value: str | ObjectStoragePath, *, what: str, folder_ok: bool = False
) -> ObjectStoragePath:
    """Turn a URI or ``ObjectStoragePath`` into a path whose filesystem is known to load.

    The filesystem is resolved here, before anything else happens, so a missing extra is
    reported before a Clarity call is spent rather than after.

    :param what: the operator argument the value came from, for error messages.
    :param folder_ok: the value may name a folder (``raw_location``); otherwise a value
        ending in ``/`` is refused, since it cannot be the file to write.
    :raises ClarityRequestError: the scheme has no filesystem installed, a local path is
        relative (it would land wherever the worker happens to run), or a file path ends
        in ``/``.
    """
    path = value if isinstance(value, ObjectStoragePath) else ObjectStoragePath(str(value))
    if not folder_ok:
        refuse_folder_name(value, what=what)
        refuse_folder_name(path, what=what)
    if is_local(path) and not os.path.isabs(path.path):
        raise ClarityRequestError(
            f"{what} {str(value)!r} is a relative path; give an absolute one such as "
            f"'file:///data/clarity/os.parquet' so every worker writes to the same place."
        )
    if is_local(path):
        # Local paths always have a filesystem. Resolving .fs would make Airflow register
        # every installed provider's filesystem first (boto3 alone costs ~0.35 s and 8 MiB).
        return path
    try:
        path.fs  # noqa: B018  (resolving it is the check)
    except (ImportError, ValueError) as exc:
        scheme = path.protocol
        extra = _EXTRA_FOR_SCHEME.get(scheme)
        if extra:
            package = f"'airflow-provider-clarity[{extra}]'"
        else:
            package = f"the Airflow provider or fsspec package that handles '{scheme}://'"
        raise ClarityRequestError(
            f"{what} {_without_userinfo(str(value))!r} needs a filesystem for '{scheme}://', "
            f"which is not installed where this task runs ({exc}). Install it on every worker "
            f"with: pip install {package}, then restart the workers. No Clarity call was made."
        ) from None
    return path


def refuse_folder_name(value: str | ObjectStoragePath | Any, *, what: str) -> None:
    """Refuse a file location written as a folder: ``.../out/``, ``.../.``, a bare bucket.

    :raises ClarityRequestError: saying to name the file.
    """
    text = str(value).strip()
    last = text.rpartition("/")[2]
    bare_bucket = isinstance(value, ObjectStoragePath) and not value.name
    if text.endswith("/") or last in (".", "..") or bare_bucket:
        shown = _without_userinfo(text)
        raise ClarityRequestError(
            f"{what} {shown!r} names a folder or bucket (it ends in '/', '.' or has no file "
            f"name), but {what} is the file to write: name the file, e.g. "
            f"'{shown}{'' if shown.endswith('/') else '/'}os.parquet'. No Clarity call was made."
        )


def require_writable(path: ObjectStoragePath, *, what: str) -> None:
    """Fail before any Clarity call when the local file ``path`` cannot be written.

    It refuses an existing folder under the file's name, and creates the missing folders
    and a temporary file there, as the real write will, so a bad path costs no call and no
    snapshot. Object stores are not write-probed: a test write would cost a request and
    leave an object behind (``read_before_call`` checks that they can be reached).

    :param what: the operator argument the path came from, for the error message.
    :raises ClarityRequestError: naming the path, the reason and the user the task runs as.
    """
    if not is_local(path):
        return
    if os.path.isdir(path.path):
        raise ClarityRequestError(
            f"{what} {str(path)!r} is a folder, so the file cannot be written under that "
            f"name: name a file inside it, such as "
            f"'{path!s}/clarity{os.path.splitext(path.path)[1] or '.parquet'}', or "
            f"remove the folder. No Clarity call was made."
        )
    folder = os.path.dirname(path.path) or "/"
    try:
        os.makedirs(folder, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".clarity-write-check.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ClarityRequestError(
            f"{what} {_without_userinfo(str(path))!r} cannot be written: "
            f"{_why_unwritable(folder, exc)}. Point {what} at a folder that {_task_user()} can "
            f"write to on every worker, or fix this one. No Clarity call was made."
        ) from None


def _why_unwritable(folder: str, error: OSError) -> str:
    existing = folder
    while not os.path.lexists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    if os.path.lexists(existing) and not os.path.isdir(existing):
        return f"'{existing}' is a file, not a folder"
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"no permission to write in '{existing}'"
    if error.errno == errno.EROFS:
        return f"'{existing}' is on a read-only file system"
    return f"{error.strerror or error} ('{error.filename or folder}')"


def _task_user() -> str:
    import getpass  # only for an error message: DAG files parse without it

    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry, as in some containers
        user = f"uid {os.getuid()}"
    return f"the task's user ('{user}' on host '{socket.gethostname()}')"


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


_PROC_STATUS = "/proc/self/status"
_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the system allows.

    Linux reports it in ``/proc/self/status``. Elsewhere the only way is to set it and set
    it back, which a thread creating a file at that moment could see; the lock keeps at
    least this module's writers from racing each other.
    """
    try:
        with open(_PROC_STATUS, encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def _write_local_atomic(target: str, data: bytes) -> None:
    folder = os.path.dirname(target) or "."
    os.makedirs(folder, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=folder)
    try:
        # mkstemp creates the file 0600; give it the mode any other writer would (0666 & ~umask)
        # so a loader running as another user can read it.
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def bucket_of(path: ObjectStoragePath) -> str:
    """The bucket (or container) of an object-storage path, without any connection id.

    The first part of the fsspec path, not ``path.bucket`` or ``path.namespace``: on Airflow
    3.1 (universal-pathlib 0.2) those still carry the connection id, ``aws_default@my-bucket``.
    """
    return path.path.split("/", 1)[0]


def read_before_call(path: ObjectStoragePath, *, what: str) -> bytes | None:
    """Read ``path`` before a Clarity call, proving its storage can be reached.

    Returns the content, or ``None`` when the file does not exist but its bucket does.
    Credentials, permissions and a missing bucket are reported here, before a call is
    spent, instead of after the answer arrives with nowhere to keep it.

    :raises ClarityRequestError: the location cannot be read, with what to check.
    """
    shown = _without_userinfo(str(path))
    bucket = "" if is_local(path) else bucket_of(path)
    try:
        data = read_bytes_or_none(path)
        if data is None and bucket:
            path.fs.info(bucket)  # a missing bucket reads as a missing file
        return data
    except FileNotFoundError:
        problem = f"its bucket '{bucket}' does not exist"
    except IsADirectoryError:
        problem = "it is a folder"
    except Exception as exc:  # botocore, gcsfs... each raise their own types
        problem = f"reading it failed: {type(exc).__name__}: {_without_userinfo(str(exc))}"
    if is_local(path):
        advice = f"check that {_task_user()} can read it"
    else:
        connection = _connection_id(str(path))
        advice = (
            f"check the credentials of the Airflow connection '{connection}' and that they "
            f"may read and write this location"
            if connection
            else f"name the Airflow connection holding the credentials, e.g. "
            f"'{path.protocol}://aws_default@{shown.split('://', 1)[-1]}'"
        )
    raise ClarityRequestError(
        f"{what} {shown!r} cannot be used: {problem}. The raw snapshot is kept there, so it "
        f"must be readable and writable before Clarity is called: {advice}. No Clarity call "
        f"was made."
    ) from None


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


def _connection_id(uri: str) -> str:
    netloc = urlsplit(uri).netloc
    return netloc.rpartition("@")[0] if "@" in netloc else ""


def _without_userinfo(uri: str) -> str:
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
