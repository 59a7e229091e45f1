"""Objects in an S3-compatible bucket (MinIO, AWS, SeaweedFS...) via the minio SDK."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO, cast
from urllib.parse import urlsplit

import certifi
import urllib3
from minio import Minio
from minio.error import MinioException, S3Error
from minio.helpers import check_bucket_name
from urllib3.exceptions import HTTPError, MaxRetryError, ResponseError

from .base import ObjectNotFound, Storage, StorageError, validate_key

# Short connect timeout and few retries: an unreachable endpoint must fail in seconds, not hang
# a web request or `doctor` for minutes (the SDK default is 5 minutes with 5 retries).
CONNECT_TIMEOUT = 4.0
READ_TIMEOUT = 30.0
# Unknown-length uploads are buffered one part at a time; 10 MiB bounds memory per upload.
UNKNOWN_LENGTH_PART_SIZE = 10 * 1024 * 1024
# Lists nothing: only asked to learn why the server refused a HEAD request.
REFUSAL_PROBE_PREFIX = "_threadline/why-refused/"
_CREDENTIAL_ERRORS = {
    "AccessDenied",
    "ExpiredToken",
    "InvalidAccessKeyId",
    "InvalidToken",
    "SignatureDoesNotMatch",
}


def parse_endpoint(endpoint: str, secure: bool) -> tuple[str, bool]:
    """Split "host:port" or "http(s)://host:port" into (host:port, secure); a scheme wins."""
    endpoint = endpoint.strip()
    if "://" not in endpoint:
        if not endpoint or "/" in endpoint:
            raise ValueError(
                f"S3 endpoint {endpoint!r} must look like host:port or http://host:port"
            )
        return endpoint, secure
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"S3 endpoint {endpoint!r} must use http:// or https://")
    if parts.username or parts.password:
        raise ValueError("S3 endpoint must not contain credentials; use the access/secret keys")
    if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"S3 endpoint {endpoint!r} must be scheme://host:port without a path")
    return parts.netloc, parts.scheme == "https"


def http_client() -> urllib3.PoolManager:
    """Build the SDK's connection pool with fail-fast timeouts."""
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
        maxsize=10,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(
            total=3,
            connect=1,
            read=1,
            backoff_factor=0.2,
            status_forcelist=[500, 502, 503, 504],
        ),
    )


class _CountingReader:
    """Wraps a stream to count bytes handed to the SDK and notice a short stream."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.count = 0
        self.eof = False

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        if not data and size != 0:
            self.eof = True
        # The SDK insists on bytes; raw streams may hand back bytearray or memoryview.
        data = bytes(data) if data else b""
        self.count += len(data)
        return data


class MinioStorage(Storage):
    """Stores each key as an object in one bucket, created on first use."""

    hint = (
        "check MINIO_ENDPOINT, MINIO_ACCESS_KEY, MINIO_SECRET_KEY and MINIO_BUCKET, "
        "and that the S3 server is running"
    )

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        secure: bool = False,
        region: str = "us-east-1",
    ) -> None:
        self.endpoint, self.secure = parse_endpoint(endpoint, secure)
        check_bucket_name(bucket)
        self.bucket = bucket
        self.region = region or "us-east-1"
        self.url = f"{'https' if self.secure else 'http'}://{self.endpoint}"
        self._client = Minio(
            self.endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=self.secure,
            # A fixed region skips the GetBucketLocation round trip many servers lack.
            region=self.region,
            http_client=http_client(),
        )
        self._bucket_ready = False
        self._bucket_lock = threading.Lock()

    @contextmanager
    def _translate(self, key: str | None = None) -> Iterator[None]:
        """Turn SDK and network exceptions into StorageError with an actionable message."""
        try:
            yield
        except S3Error as exc:
            raise self._s3_error(exc, key) from exc
        except MinioException as exc:
            raise StorageError(
                f"S3 storage at {self.url} sent an unexpected response: {exc}; {self.hint}"
            ) from exc
        except MaxRetryError as exc:
            if isinstance(exc.reason, ResponseError):
                raise StorageError(
                    f"S3 storage at {self.url} kept failing: {exc.reason}; "
                    "check the S3 server's logs"
                ) from exc
            raise self._unreachable(exc.reason or exc) from exc
        except HTTPError as exc:
            raise self._unreachable(exc) from exc

    def _unreachable(self, reason: object) -> StorageError:
        return StorageError(
            f"could not reach S3 storage at {self.url}: {reason}; "
            "check MINIO_ENDPOINT (host:port or http(s)://host:port) and that the server is running"
        )

    def _s3_error(self, exc: S3Error, key: str | None) -> StorageError:
        if exc.code == "NoSuchKey" and key is not None:
            return ObjectNotFound(f"no object {key!r} in {self.describe()}")
        if exc.code == "NoSuchBucket":
            self._bucket_ready = False  # Deleted behind our back: recreate on next use.
            return StorageError(f"bucket {self.bucket!r} does not exist at {self.url}; {self.hint}")
        if exc.code in _CREDENTIAL_ERRORS:
            return StorageError(
                f"S3 storage at {self.url} refused the request ({exc.code}: {exc.message}); "
                "check MINIO_ACCESS_KEY and MINIO_SECRET_KEY and the bucket's permissions"
            )
        return StorageError(
            f"S3 storage at {self.url} failed ({exc.code}: {exc.message}); {self.hint}"
        )

    def _ensure_bucket(self) -> None:
        """Create the bucket once per instance; the lock keeps threads from racing."""
        if self._bucket_ready:
            return
        with self._bucket_lock:
            if self._bucket_ready:
                return
            with self._translate():
                if not self._bucket_exists():
                    try:
                        self._client.make_bucket(self.bucket, location=self.region)
                    except S3Error as exc:
                        # Another process may have created it between the two calls.
                        if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                            raise
            self._bucket_ready = True

    def _bucket_exists(self) -> bool:
        """HEAD the bucket. A refused HEAD has no body, so the SDK can only say "Access denied";
        ask again with a GET, whose refusal carries the server's reason (SignatureDoesNotMatch,
        InvalidAccessKeyId...) for the operator to read."""
        try:
            return self._client.bucket_exists(self.bucket)
        except S3Error as exc:
            if exc.code != "AccessDenied" or exc.response.data:
                raise
        next(iter(self._client.list_objects(self.bucket, prefix=REFUSAL_PROBE_PREFIX)), None)
        return True  # listing works where HEAD was refused: the bucket is there

    def put(
        self,
        key: str,
        stream: BinaryIO,
        length: int | None = None,
        content_type: str = "application/octet-stream",
    ) -> int:
        """Upload in one request, or in 10 MiB multipart chunks when length is unknown."""
        validate_key(key)
        if length is not None and length < 0:
            raise ValueError(f"length must be >= 0 or None, not {length}")
        self._ensure_bucket()
        reader = _CountingReader(stream)
        try:
            with self._translate(key):
                if length is None:
                    self._client.put_object(
                        self.bucket,
                        key,
                        cast(BinaryIO, reader),
                        length=-1,
                        part_size=UNKNOWN_LENGTH_PART_SIZE,
                        content_type=content_type,
                    )
                else:
                    self._client.put_object(
                        self.bucket, key, cast(BinaryIO, reader), length, content_type=content_type
                    )
        except OSError as exc:
            # The SDK reports a stream shorter than its declared length as a bare IOError.
            if length is not None and reader.eof and reader.count < length:
                raise ValueError(
                    f"stream ended after {reader.count} of {length} declared bytes"
                ) from exc
            raise StorageError(
                f"could not upload {key!r} to {self.describe()}: {exc}; {self.hint}"
            ) from exc
        return reader.count if length is None else length

    @contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        """Yield the streaming HTTP response; it is closed and its connection released after."""
        validate_key(key)
        self._ensure_bucket()
        with self._translate(key):
            response = self._client.get_object(self.bucket, key)
        try:
            with self._translate(key):  # Network errors while the caller reads the body.
                yield cast(BinaryIO, response)
        finally:
            response.close()
            response.release_conn()

    def delete(self, key: str) -> None:
        """Remove the object; S3 already treats a missing key as success."""
        validate_key(key)
        self._ensure_bucket()
        with self._translate(key):
            self._client.remove_object(self.bucket, key)

    def exists(self, key: str) -> bool:
        """Return whether a HEAD request finds the object."""
        try:
            self.size(key)
        except ObjectNotFound:
            return False
        return True

    def size(self, key: str) -> int:
        """Return the object's size from a HEAD request."""
        validate_key(key)
        self._ensure_bucket()
        with self._translate(key):
            info = self._client.stat_object(self.bucket, key)
        return int(info.size or 0)

    def describe(self) -> str:
        """Return e.g. "S3 bucket threadline at http://127.0.0.1:9000"."""
        return f"S3 bucket {self.bucket} at {self.url}"
