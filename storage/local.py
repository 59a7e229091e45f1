"""Objects as files under a directory, written atomically and durably."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from .base import ObjectNotFound, Storage, StorageError, read_all, read_exactly, validate_key

TEMP_PREFIX = ".tmp-"


def _fsync_dir(directory: Path) -> None:
    """Persist a directory's entries (new names, renames) to disk."""
    if not hasattr(os, "O_DIRECTORY"):  # Windows cannot open directories; nothing to do.
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_dirs(directory: Path) -> None:
    """Create directory and missing parents, fsyncing each parent so the new names survive."""
    missing: list[Path] = []
    current = directory
    while not current.is_dir():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=0o700)  # owner-only whatever the umask (files are 0600: mkstemp)
        except FileExistsError:
            if not path.is_dir():  # A file is in the way; another writer making it is fine.
                raise
        _fsync_dir(path.parent)


class LocalStorage(Storage):
    """Stores each key as a file below root; "a/b/c" becomes root/a/b/c."""

    hint = "check that STORAGE_LOCAL_PATH is a writable directory with free space"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        try:
            _make_dirs(self.root)
        except OSError as exc:
            raise StorageError(
                f"could not create local storage directory {self.root}: {exc}; {self.hint}"
            ) from exc

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    def put(
        self,
        key: str,
        stream: BinaryIO,
        length: int | None = None,
        content_type: str = "application/octet-stream",
    ) -> int:
        """Write to a temp file beside the target, fsync it, then rename it into place."""
        path = self._path(key)
        if length is not None and length < 0:
            raise ValueError(f"length must be >= 0 or None, not {length}")
        chunks = read_all(stream) if length is None else read_exactly(stream, length)
        try:
            _make_dirs(path.parent)
            fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
        except OSError as exc:
            raise StorageError(f"could not store {key!r} at {path}: {exc}; {self.hint}") from exc
        written = 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    written += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp_name, path)
            _fsync_dir(path.parent)
        except BaseException as exc:
            # Readers must never see a partial object, and failures must not leak temp files.
            with suppress(FileNotFoundError):
                os.unlink(tmp_name)
            if isinstance(exc, OSError):
                raise StorageError(
                    f"could not store {key!r} at {path}: {exc}; {self.hint}"
                ) from exc
            raise
        return written

    @contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        """Yield the object's file opened for binary reading."""
        path = self._path(key)
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed by the with below
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise ObjectNotFound(f"no object {key!r} in {self.describe()}") from exc
        except OSError as exc:
            raise StorageError(f"could not read {key!r} at {path}: {exc}; {self.hint}") from exc
        with fh:
            yield fh

    def delete(self, key: str) -> None:
        """Unlink the file; empty directories are kept so concurrent puts never lose theirs."""
        path = self._path(key)
        try:
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise StorageError(f"could not delete {key!r} at {path}: {exc}; {self.hint}") from exc
        _fsync_dir(path.parent)

    def exists(self, key: str) -> bool:
        """Return whether a regular file is stored for key."""
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        """Return the file size in bytes."""
        path = self._path(key)
        try:
            info = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            info = None
        except OSError as exc:
            raise StorageError(f"could not stat {key!r} at {path}: {exc}; {self.hint}") from exc
        if info is None or not stat.S_ISREG(info.st_mode):
            raise ObjectNotFound(f"no object {key!r} in {self.describe()}")
        return info.st_size

    def describe(self) -> str:
        """Return e.g. "local disk /srv/threadline/storage"."""
        return f"local disk {self.root}"
