"""Fetching a standard dataset's archive, shared by every source that can download: stream to a temporary
file, check the md5, rename only then, unpack without letting any member escape the target folder, and
turn every way of not getting the files into the same one-line "put these files there" message.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from email.message import Message
from pathlib import Path
from typing import IO

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from chromaproxy.errors import UserError

CHUNK = 1 << 20


def missing_message(title: str, target: Path, why: str, expected: str, fetch: str) -> str:
    """The one-line "put these files there" error every standard source gives when its files are missing.

    ``expected`` names the files, ``fetch`` says where to get them; the last clause covers a copy that
    exists elsewhere, which is the usual case on a machine without network.
    """
    return (
        f"{title} not found in {target} ({why}): expected {expected}; {fetch}, "
        f"or set data.root=DIR / CHROMAPROXY_DATA=DIR to the folder that holds {target.name}/, "
        "or data.path=DIR (data info --path DIR) to a folder that holds these files under any name"
    )


def fetch_archive(
    url: str, md5: str, target: Path, *, download: bool, progress: bool, missing: Callable[[str], str]
) -> None:
    """Download and unpack ``url`` into ``target``; offline or on a network error raise ``missing(why)``.

    ``missing`` builds the source's "put these files there" line, so every way of not getting the files
    ends in the same instructions.
    """
    if not download:
        raise UserError(missing("data.download=false"))
    try:
        download_and_extract(url, md5, target, progress=progress)
    except OSError as err:
        raise UserError(missing(f"download failed: {err}")) from err


def download_and_extract(url: str, md5: str, target: Path, *, progress: bool = True) -> None:
    """Fetch the archive at ``url`` into ``target``, check its md5, unpack it there and delete it."""
    with made_for_download(target):
        archive = download(url, target / Path(url).name, md5, progress=progress)
        try:
            extract_safely(archive, target)
        finally:
            archive.unlink()


@contextlib.contextmanager
def made_for_download(target: Path) -> Iterator[None]:
    """Create ``target`` for a download and remove it again if the download fails and leaves it empty, so an
    offline attempt leaves no empty dataset folder behind in the data root."""
    created = not target.exists()
    target.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        if created and not any(target.iterdir()):
            target.rmdir()
        raise


def download(url: str, dest: Path, md5: str, *, progress: bool = True) -> Path:
    """Stream ``url`` to a temporary file beside ``dest`` and rename it only once its md5 matches.

    A failed or interrupted download never leaves a file named ``dest`` behind, so the next run retries.
    """
    handle, partial = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            digest = _stream(url, out, progress)
        if digest != md5:
            raise UserError(f"{url} downloaded with md5 {digest}, expected {md5}: the download is corrupt; try again")
        os.replace(partial, dest)
    finally:
        Path(partial).unlink(missing_ok=True)
    return dest


def _stream(url: str, out: IO[bytes], progress: bool) -> str:
    """Copy ``url`` into ``out`` chunk by chunk, returning the md5 hex digest of what was written."""
    digest = hashlib.md5()
    with urllib.request.urlopen(url, timeout=30) as response, _download_bar(progress) as bar:
        task = bar.add_task(f"downloading {Path(url).name}", total=_length(response.headers))
        while chunk := response.read(CHUNK):
            out.write(chunk)
            digest.update(chunk)
            bar.advance(task, len(chunk))
    return digest.hexdigest()


def _length(headers: Message) -> int | None:
    length = headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _download_bar(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(), console=Console(stderr=True), disable=not enabled,
    )


def extract_safely(archive: Path, target: Path) -> None:
    """Unpack a tar archive into ``target``, refusing links, devices and any path that lands outside it."""
    base = target.resolve()
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        for member in members:
            _check_member(member, base, archive)
        if hasattr(tarfile, "data_filter"):
            tar.extractall(base, members=members, filter="data")
        else:
            tar.extractall(base, members=members)


def _check_member(member: tarfile.TarInfo, base: Path, archive: Path) -> None:
    inside = (base / member.name).resolve()
    if not (member.isfile() or member.isdir()):
        raise UserError(f"{archive} holds '{member.name}', which is not a plain file or folder; refusing to extract it")
    if inside != base and base not in inside.parents:
        raise UserError(f"{archive} holds '{member.name}', which would land outside {base}; refusing to extract it")
