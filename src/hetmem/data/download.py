"""Downloading a data set file: a short timeout, a partial file that only becomes the real one
when complete (and checksummed), and one-line error text for the user."""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import urllib.request
from pathlib import Path

from hetmem.errors import DataNotFoundError

__all__ = ["DOWNLOAD_TIMEOUT_S", "error_line", "fetch_or_explain", "fetch_url"]

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 10.0  # seconds per socket operation: no network fails in at most this long


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_url(url: str, path: Path, *, md5: str | None = None, timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Downloads ``url`` to ``path``, or raises ``OSError`` and leaves nothing behind.

    The bytes go to ``path.part``, renamed to ``path`` once complete (and checked against
    ``md5`` when given), so an interrupted download never looks like a data set. The parent
    folder is created only once the server answers.

    Args:
        url: what to download.
        path: where to write it.
        md5: expected hex digest, or None to skip the check.
        timeout: seconds allowed for each socket operation (connecting, each read).

    Returns:
        ``path``.

    Raises:
        OSError: no network, HTTP error, timeout, truncated transfer or checksum mismatch.
    """
    part = path.with_name(path.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            path.parent.mkdir(parents=True, exist_ok=True)
            log.info("downloading %s to %s", url, path)
            with open(part, "wb") as f:
                shutil.copyfileobj(response, f, length=1 << 20)
        if md5 is not None and (got := _md5(part)) != md5:
            raise OSError(f"checksum mismatch: md5 {got}, expected {md5}")
        os.replace(part, path)
    except (OSError, http.client.HTTPException, ValueError) as err:
        part.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise
        raise OSError(f"{type(err).__name__}: {err}") from err
    return path


def error_line(err: BaseException) -> str:
    """``"Type: message"`` of an exception on one line (for one-line user-facing errors)."""
    return " ".join(f"{type(err).__name__}: {err}".split())


def fetch_or_explain(url: str, path: Path, *, download: bool, missing: str, md5: str | None = None) -> Path:
    """Downloads ``url`` to ``path`` when ``download`` is set; otherwise, or when that fails,
    raises :class:`DataNotFoundError` with ``missing`` (what to fetch and where to put it)
    followed by the reason.

    Returns:
        ``path``, complete.
    """
    reason = "download=False"
    if download:
        try:
            return fetch_url(url, path, md5=md5)
        except OSError as err:
            reason = f"download failed: {error_line(err)}"
    raise DataNotFoundError(f"{missing} ({reason})")
