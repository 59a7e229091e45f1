"""Storage backends against real disks and a real S3 server (SeaweedFS, no mocks)."""

from __future__ import annotations

import io
import os
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import urllib3
from minio import Minio

from storage import (
    LocalStorage,
    MinioStorage,
    ObjectNotFound,
    Storage,
    StorageError,
    storage_from_settings,
    validate_key,
)
from storage.local import TEMP_PREFIX
from tests.support.s3_server import free_port

# Just over one 10 MiB part, so the unknown-length S3 upload goes through multipart.
OBJECT_SIZE = 10 * 1024 * 1024 + 4097

INVALID_KEYS = [
    "",
    "/etc/passwd",
    "../escape",
    "a/../../b",
    "a/..",
    "a//b",
    "a/",
    "./a",
    "a\\b",
    "a\x00b",
    "k" * 1025,
]


class GeneratorRaw(io.RawIOBase):
    """A raw stream fed by a generator of uneven chunks, with no known length."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if not self._pending:
            self._pending = next(self._chunks, b"")
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def uneven_chunks(data: bytes) -> Iterator[bytes]:
    """Yield data in odd-sized pieces so readers must cope with short reads."""
    sizes = (1, 7_777, 65_536, 333_333, 1_000_003)
    pos, i = 0, 0
    while pos < len(data):
        step = sizes[i % len(sizes)]
        yield data[pos : pos + step]
        pos += step
        i += 1


@pytest.fixture(scope="module")
def payload() -> bytes:
    return os.urandom(OBJECT_SIZE)


def make_s3(server: dict[str, str], bucket: str | None = None) -> MinioStorage:
    return MinioStorage(
        server["endpoint"],
        server["access_key"],
        server["secret_key"],
        bucket or server["bucket"],
    )


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "objects")
    return make_s3(request.getfixturevalue("s3_server"))


@pytest.fixture
def key() -> str:
    """A fresh key per test, so S3 tests sharing one bucket never collide."""
    return f"test/{uuid.uuid4().hex}/blob.bin"


def test_round_trip_known_length(store: Storage, key: str, payload: bytes) -> None:
    assert store.put(key, io.BytesIO(payload), len(payload)) == len(payload)
    assert store.get_bytes(key) == payload


def test_round_trip_unknown_length_stream(store: Storage, key: str, payload: bytes) -> None:
    written = store.put(key, GeneratorRaw(uneven_chunks(payload)), content_type="image/png")
    assert written == len(payload)
    assert store.size(key) == len(payload)
    with store.open(key) as fh:
        head = fh.read(1000)
        rest = fh.read()
    assert head + rest == payload


def test_abandoned_reads_are_closed(store: Storage, key: str, payload: bytes) -> None:
    store.put(key, io.BytesIO(payload), len(payload))
    # More abandoned half-read opens than the S3 connection pool holds (10).
    for _ in range(15):
        with store.open(key) as fh:
            assert fh.read(16) == payload[:16]
    assert store.get_bytes(key) == payload


def test_short_stream_is_rejected(store: Storage, key: str) -> None:
    with pytest.raises(ValueError, match="3 of 10"):
        store.put(key, io.BytesIO(b"abc"), 10)
    assert not store.exists(key)


def test_failed_upload_keeps_previous_object(store: Storage, key: str) -> None:
    store.put(key, io.BytesIO(b"previous"), 8)

    def exploding() -> Iterator[bytes]:
        yield b"partial data"
        raise OSError("client went away")

    with pytest.raises(StorageError, match="client went away"):
        store.put(key, GeneratorRaw(exploding()))
    assert store.get_bytes(key) == b"previous"


def test_exists_size_delete(store: Storage, key: str) -> None:
    assert not store.exists(key)
    store.put(key, io.BytesIO(b"hello"), 5)
    assert store.exists(key)
    assert store.size(key) == 5
    store.put(key, io.BytesIO(b"replaced!"))  # Overwrite keeps one object.
    assert store.get_bytes(key) == b"replaced!"
    store.delete(key)
    assert not store.exists(key)
    store.delete(key)  # Deleting a missing key is fine.
    store.delete("never/stored")


def test_missing_key_raises_object_not_found(store: Storage, key: str) -> None:
    with pytest.raises(ObjectNotFound):
        store.size(key)
    with pytest.raises(ObjectNotFound), store.open(key):
        pass
    with pytest.raises(ObjectNotFound):
        store.get_bytes(key)
    # ObjectNotFound is a StorageError, so callers can catch either.
    with pytest.raises(StorageError):
        store.size(key)


@pytest.mark.parametrize("bad_key", INVALID_KEYS, ids=repr)
def test_invalid_keys_raise_value_error(store: Storage, bad_key: str) -> None:
    with pytest.raises(ValueError):
        validate_key(bad_key)
    with pytest.raises(ValueError):
        store.put(bad_key, io.BytesIO(b"x"), 1)
    with pytest.raises(ValueError):
        store.exists(bad_key)
    with pytest.raises(ValueError):
        store.delete(bad_key)


def test_valid_keys_are_accepted() -> None:
    for good in ("a", "attachments/ab/cd/0123abcd", "x" * 1024, "dots.in.name/..x/x..", "ü/日本"):
        assert validate_key(good) == good


def test_check_passes(store: Storage) -> None:
    store.check()
    assert "_doctor" not in "".join(_local_files(store))


def test_describe_names_location_without_secrets(s3_server: dict[str, str], tmp_path: Path) -> None:
    s3 = make_s3(s3_server)
    assert s3.describe() == f"S3 bucket {s3_server['bucket']} at http://{s3_server['endpoint']}"
    assert s3_server["secret_key"] not in s3.describe()
    assert LocalStorage(tmp_path).describe() == f"local disk {tmp_path}"


def test_s3_creates_missing_bucket(s3_server: dict[str, str]) -> None:
    bucket = f"fresh-{uuid.uuid4().hex[:12]}"
    raw = Minio(
        s3_server["endpoint"],
        access_key=s3_server["access_key"],
        secret_key=s3_server["secret_key"],
        secure=False,
        region="us-east-1",
    )
    assert not raw.bucket_exists(bucket)
    store = make_s3(s3_server, bucket)
    store.put("first", io.BytesIO(b"1"), 1)
    assert raw.bucket_exists(bucket)
    assert store.get_bytes("first") == b"1"


def test_s3_endpoint_url_forms(s3_server: dict[str, str]) -> None:
    store = make_s3({**s3_server, "endpoint": f"http://{s3_server['endpoint']}/"})
    assert not store.secure
    store.check()
    assert MinioStorage("https://s3.example.com", "k", "s", "bkt").url == "https://s3.example.com"
    with pytest.raises(ValueError):
        MinioStorage("http://host:9000/some/path", "k", "s", "bkt")


def test_s3_wrong_secret_fails_with_the_servers_words(s3_server: dict[str, str]) -> None:
    store = make_s3({**s3_server, "secret_key": "not-the-secret"})
    with pytest.raises(StorageError) as err:
        store.check()
    message = str(err.value)
    assert f"S3 storage at http://{s3_server['endpoint']} refused the request" in message
    assert "(SignatureDoesNotMatch: The request signature we calculated" in message
    assert "check MINIO_ACCESS_KEY and MINIO_SECRET_KEY" in message
    assert "not-the-secret" not in message
    with pytest.raises(StorageError, match="SignatureDoesNotMatch"):
        store.put(f"test/{uuid.uuid4().hex}", io.BytesIO(b"x"), 1)


def test_s3_wrong_access_key_fails_with_the_servers_words(s3_server: dict[str, str]) -> None:
    store = make_s3({**s3_server, "access_key": "NOT-A-KEY", "secret_key": "not-the-secret"})
    with pytest.raises(StorageError) as err:
        store.check()
    message = str(err.value)
    assert "(InvalidAccessKeyId: The access key ID you provided does not exist" in message
    assert "check MINIO_ACCESS_KEY and MINIO_SECRET_KEY" in message
    assert "not-the-secret" not in message


def _raw_client(server: dict[str, str]) -> Minio:
    return Minio(
        server["endpoint"],
        access_key=server["access_key"],
        secret_key=server["secret_key"],
        secure=False,
        region="us-east-1",
    )


def _stored(server: dict[str, str], data: bytes) -> str:
    key = f"test/{uuid.uuid4().hex}/presigned.bin"
    make_s3(server).put(key, io.BytesIO(data), len(data))
    return key


def test_anonymous_reads_are_refused(s3_server: dict[str, str]) -> None:
    key = _stored(s3_server, b"private mail")
    response = urllib3.request(
        "GET", f"http://{s3_server['endpoint']}/{s3_server['bucket']}/{key}", retries=False
    )
    assert response.status == 403
    assert b"private mail" not in response.data


def test_presigned_reads_work_and_a_tampered_url_is_refused(s3_server: dict[str, str]) -> None:
    data = os.urandom(256 * 1024)
    key = _stored(s3_server, data)
    url = _raw_client(s3_server).presigned_get_object(
        s3_server["bucket"], key, expires=timedelta(minutes=5)
    )

    response = urllib3.request("GET", url, retries=False)
    assert response.status == 200
    assert response.data == data

    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query["X-Amz-Expires"] = "604800"  # a client stretching its link to a week
    stretched = urlunsplit(parts._replace(query=urlencode(query)))
    other_key = urlunsplit(parts._replace(path=parts.path.replace("presigned.bin", "other.bin")))
    for tampered in (stretched, other_key):
        response = urllib3.request("GET", tampered, retries=False)
        assert response.status == 403, tampered
        assert b"SignatureDoesNotMatch" in response.data


def test_s3_unreachable_endpoint_fails_fast() -> None:
    port = free_port()  # Nothing listens here once the probe socket is closed.
    store = MinioStorage(f"127.0.0.1:{port}", "key", "secret", "threadline")
    started = time.monotonic()
    with pytest.raises(StorageError) as err:
        store.check()
    assert f"127.0.0.1:{port}" in str(err.value)
    assert "MINIO_ENDPOINT" in str(err.value)
    assert time.monotonic() - started < 10


def test_storage_from_settings(s3_server: dict[str, str], tmp_path: Path) -> None:
    class Settings:
        storage_backend = "local"
        storage_local_path = str(tmp_path / "from-settings")
        minio_endpoint = s3_server["endpoint"]
        minio_access_key = s3_server["access_key"]
        minio_secret_key = s3_server["secret_key"]
        minio_bucket = s3_server["bucket"]
        minio_secure = False
        minio_region = "us-east-1"

    local = storage_from_settings(Settings)
    assert isinstance(local, LocalStorage) and local.root == tmp_path / "from-settings"
    Settings.storage_backend = "minio"
    s3 = storage_from_settings(Settings)
    assert isinstance(s3, MinioStorage)
    s3.check()
    Settings.storage_backend = "ftp"
    with pytest.raises(ValueError, match="ftp"):
        storage_from_settings(Settings)


def _local_files(store: Storage) -> list[str]:
    if not isinstance(store, LocalStorage):
        return []
    return [str(p.relative_to(store.root)) for p in store.root.rglob("*") if p.is_file()]


def test_local_leaves_no_temp_files(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "objects")
    store.put("a/b/one", io.BytesIO(b"first"), 5)
    store.put("a/b/one", io.BytesIO(b"second"))

    def exploding() -> Iterator[bytes]:
        yield b"partial data"
        raise OSError("client went away")

    with pytest.raises(StorageError, match="client went away"):
        store.put("a/b/one", GeneratorRaw(exploding()))
    with pytest.raises(ValueError):
        store.put("a/b/two", io.BytesIO(b"abc"), 10)

    # The failed writes left the old object intact and no temp files behind.
    assert store.get_bytes("a/b/one") == b"second"
    assert sorted(_local_files(store)) == ["a/b/one"]
    assert not [p for p in store.root.rglob(f"{TEMP_PREFIX}*")]


def test_local_maps_keys_to_subdirectories(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "missing" / "root")  # Created on demand.
    store.put("attachments/ab/cdef", io.BytesIO(b"x"), 1)
    assert (tmp_path / "missing" / "root" / "attachments" / "ab" / "cdef").read_bytes() == b"x"
