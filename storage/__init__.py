"""Object storage for message bodies and attachments: local disk or any S3 service."""

from __future__ import annotations

from typing import Any

from .base import MAX_KEY_LENGTH, DamagedObject, ObjectNotFound, Storage, StorageError, validate_key
from .local import LocalStorage
from .minio import MinioStorage

__all__ = [
    "MAX_KEY_LENGTH",
    "DamagedObject",
    "LocalStorage",
    "ObjectNotFound",
    "MinioStorage",
    "Storage",
    "StorageError",
    "storage_from_settings",
    "validate_key",
]


def storage_from_settings(settings: Any) -> Storage:
    """Build the backend named by settings.storage_backend ("local" or "minio")."""
    backend = (settings.storage_backend or "local").lower()
    if backend == "local":
        return LocalStorage(settings.storage_local_path)
    if backend == "minio":
        return MinioStorage(
            endpoint=settings.minio_endpoint,
            access_key=settings.minio_access_key,
            secret_key=settings.minio_secret_key,
            bucket=settings.minio_bucket,
            secure=bool(getattr(settings, "minio_secure", False)),
            region=getattr(settings, "minio_region", "") or "us-east-1",
        )
    raise ValueError(f"unknown STORAGE_BACKEND {backend!r}; use 'local' or 'minio'")
