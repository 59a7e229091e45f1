"""Storage interface, errors and key validation shared by all backends."""

from __future__ import annotations

import abc
import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from typing import BinaryIO

MAX_KEY_LENGTH = 1024
PROBE_PREFIX = "_doctor/"
# Reads are chunked so no backend has to hold a whole object in memory.
CHUNK_SIZE = 1024 * 1024


class StorageError(Exception):
    """The storage backend failed or could not be reached."""


class ObjectNotFound(StorageError):
    """No object is stored under the requested key."""


class DamagedObject(StorageError):
    """The object under a key is not the bytes written there (empty, truncated or altered);
    retryable: writing the same bytes again repairs it."""


def validate_key(key: str) -> str:
    """Return key unchanged if it is a safe object key, else raise ValueError."""
    if not isinstance(key, str) or not key:
        raise ValueError("storage key must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(
            f"storage key is {len(key)} characters long; the limit is {MAX_KEY_LENGTH}"
        )
    if "\\" in key or "\x00" in key:
        raise ValueError(f"storage key {key!r} must not contain backslashes or NUL characters")
    if key.startswith("/"):
        raise ValueError(f"storage key {key!r} must not start with '/'")
    # Empty and "." segments would alias other keys on disk; ".." would escape the root.
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise ValueError(
                f"storage key {key!r} has an empty, '.' or '..' path segment; "
                "use segments like 'attachments/ab/cdef'"
            )
    return key


def read_exactly(stream: BinaryIO, length: int) -> Iterator[bytes]:
    """Yield chunks totalling exactly length bytes, or raise ValueError if the stream ends early."""
    remaining = length
    while remaining > 0:
        chunk = stream.read(min(CHUNK_SIZE, remaining))
        if not chunk:
            raise ValueError(f"stream ended after {length - remaining} of {length} declared bytes")
        remaining -= len(chunk)
        yield chunk


def read_all(stream: BinaryIO) -> Iterator[bytes]:
    """Yield chunks until the stream is exhausted."""
    while chunk := stream.read(CHUNK_SIZE):
        yield chunk


class Storage(abc.ABC):
    """A flat key -> bytes object store."""

    #: What an operator should check when check() fails; backends override it.
    hint = "check the storage settings"

    @abc.abstractmethod
    def put(
        self,
        key: str,
        stream: BinaryIO,
        length: int | None = None,
        content_type: str = "application/octet-stream",
    ) -> int:
        """Store the stream's bytes (exactly length of them if given) and return the count."""

    @abc.abstractmethod
    @contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        """Yield a readable binary file-like for key; it is closed when the block exits."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove key; removing a missing key is not an error."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """Return whether an object is stored under key."""

    @abc.abstractmethod
    def size(self, key: str) -> int:
        """Return the object's size in bytes; raise ObjectNotFound if it is missing."""

    @abc.abstractmethod
    def describe(self) -> str:
        """Return a human-readable, secret-free description of where objects live."""

    def get_bytes(self, key: str) -> bytes:
        """Return the whole object; only for objects known to be small."""
        with self.open(key) as fh:
            return fh.read()

    def verify(self, key: str, size: int, sha1: str) -> None:
        """Raise DamagedObject unless key holds exactly size bytes whose SHA-1 is sha1 (for a
        content-addressed key, the key's own name). The size is looked at first, so an empty or
        short object is caught without reading it; a missing one raises ObjectNotFound."""
        stored = self.size(key)
        if stored != size:
            raise self._damaged(key, f"it holds {stored} bytes, not {size}")
        digest = hashlib.sha1()
        with self.open(key) as fh:
            for chunk in read_all(fh):
                digest.update(chunk)
                stored -= len(chunk)
        self._check_read(key, size, size - stored, sha1, digest.hexdigest())

    def get_verified_bytes(self, key: str, size: int, sha1: str) -> bytes:
        """Return the whole object after checking its length and SHA-1, else DamagedObject."""
        data = self.get_bytes(key)
        self._check_read(key, size, len(data), sha1, hashlib.sha1(data).hexdigest())
        return data

    def _check_read(self, key: str, size: int, read: int, sha1: str, digest: str) -> None:
        if read != size:
            raise self._damaged(key, f"{read} bytes were read back, not {size}")
        if digest != sha1:
            raise self._damaged(key, f"its SHA-1 is {digest}, not {sha1}")

    def _damaged(self, key: str, what: str) -> DamagedObject:
        return DamagedObject(f"the stored copy of {key!r} in {self.describe()} is damaged: {what}")

    def check(self) -> None:
        """Round-trip a tiny probe object; raise StorageError explaining what failed."""
        key = f"{PROBE_PREFIX}probe-{uuid.uuid4().hex}"
        payload = b"threadline storage probe\n"
        try:
            self.put(key, BytesIO(payload), len(payload), content_type="text/plain")
            try:
                echoed = self.get_bytes(key)
            finally:
                self.delete(key)
        except StorageError as exc:
            raise StorageError(f"storage check failed: {exc}") from exc
        except OSError as exc:
            raise StorageError(
                f"storage check failed for {self.describe()}: {exc}; {self.hint}"
            ) from exc
        if echoed != payload:
            raise StorageError(
                f"storage check failed for {self.describe()}: the probe object {key!r} read "
                f"back {len(echoed)} bytes that differ from the {len(payload)} written; {self.hint}"
            )
