"""Where asset files live: the storage adapter interface and the local-filesystem adapter.

A stored file is known by its *path*: a name this server generated (`<uuid hex>.<extension>`), never
one a client sent. The extension comes from the type detected in the file's bytes. Adapters check every
path they are given against that pattern, so no path can reach outside their storage, whatever a
caller passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

CHUNK_SIZE = 64 * 1024

# The only names an adapter stores or opens: 32 hex digits, a dot, a short lower-case extension.
_NAME = re.compile(r"[0-9a-f]{32}\.[a-z0-9]{1,8}")
_EXTENSION = re.compile(r"[a-z0-9]{1,8}")


def storage_name(key: uuid.UUID, extension: str) -> str:
    """The stored name for the file of `key` (an asset id) with a detected-type `extension`."""
    if not _EXTENSION.fullmatch(extension):
        raise ValueError(f"not a safe file extension: {extension!r}")
    return f"{key.hex}.{extension}"


def is_storage_name(name: str) -> bool:
    """Whether `name` has the shape of a generated name (and so cannot leave the storage)."""
    return _NAME.fullmatch(name) is not None


@dataclass(frozen=True)
class StoredObject:
    """An open stored file: its size, and its bytes as chunks."""

    size: int
    chunks: AsyncIterator[bytes]


class StorageAdapter(Protocol):
    """A place for asset files. `name` goes into `cms_assets.storage_adapter`."""

    name: str

    async def save(self, source: IO[bytes] | bytes, *, filename: str) -> str:
        """Store `source` (read from its start) under a generated `filename`; returns the path."""
        ...

    async def open(self, path: str) -> StoredObject | None:
        """The stored file for streaming, or None when there is none."""
        ...

    async def read(self, path: str) -> bytes | None:
        """The whole stored file, or None when there is none."""
        ...

    async def delete(self, path: str) -> bool:
        """Remove the stored file; False when there was none."""
        ...

    def url_for(self, path: str) -> str:
        """The public URL of the stored file."""
        ...


class LocalStorage:
    """Files in one folder of the local filesystem, served under `url_prefix`.

    Writes are atomic: a temporary file in the same folder, flushed to disk, then renamed, so a reader
    never sees half a file and a crash leaves at most a `.tmp-*` file behind. The folder is created on
    the first write.
    """

    name = "local"

    def __init__(self, folder: str | os.PathLike[str], url_prefix: str = "/assets") -> None:
        self.folder = Path(folder).resolve()
        self.url_prefix = url_prefix.rstrip("/")

    def _file(self, path: str) -> Path:
        # Two guards: the name pattern (no separators, no dots but the extension's), and the
        # resolved location, in case the folder itself holds a link planted by someone else.
        if not is_storage_name(path):
            raise ValueError(f"not a stored file name: {path!r}")
        file = (self.folder / path).resolve()
        if file.parent != self.folder:
            raise ValueError(f"not a stored file name: {path!r}")
        return file

    async def save(self, source: IO[bytes] | bytes, *, filename: str) -> str:
        target = self._file(filename)
        await asyncio.to_thread(self._write, source, target)
        return filename

    def _write(self, source: IO[bytes] | bytes, target: Path) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(source, bytes):
                    out.write(source)
                else:
                    source.seek(0)
                    shutil.copyfileobj(source, out, CHUNK_SIZE)
                out.flush()
                os.fsync(out.fileno())
            # mkstemp creates 0600; files are public, and a web server in front may serve them.
            os.chmod(temporary, 0o644)
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise

    async def open(self, path: str) -> StoredObject | None:
        try:
            file = self._file(path)
            stat = await asyncio.to_thread(file.stat)
        except (ValueError, FileNotFoundError):
            return None
        # Opened only when the body is read, so a response that sends none (304) holds no handle.
        return StoredObject(size=stat.st_size, chunks=_chunks(file))

    async def read(self, path: str) -> bytes | None:
        try:
            return await asyncio.to_thread(self._file(path).read_bytes)
        except (ValueError, FileNotFoundError, IsADirectoryError):
            return None

    async def delete(self, path: str) -> bool:
        try:
            await asyncio.to_thread(self._file(path).unlink)
        except (ValueError, FileNotFoundError):
            return False
        return True

    def url_for(self, path: str) -> str:
        return f"{self.url_prefix}/{path}"


async def _chunks(file: Path) -> AsyncIterator[bytes]:
    handle = await asyncio.to_thread(file.open, "rb")
    try:
        while chunk := await asyncio.to_thread(handle.read, CHUNK_SIZE):
            yield chunk
    finally:
        handle.close()
