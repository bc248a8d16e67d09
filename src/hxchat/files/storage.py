"""Where the contents of files live: a local folder or an S3-compatible object store.

One interface (`FileStorage`) over obstore, whatever the place: a deployment on one
host keeps `file:./hxchat-files`; many hosts share `s3://bucket/prefix` (or one shared
folder). The contents are addressed by their SHA-256 under a folder per owner, so the
same bytes uploaded twice by one person are kept once, and two people never share an
object (deleting one's files can never remove the other's). The owner's folder is a
hash of the owner's id: ids are never written into object names.

S3 credentials and the endpoint come from the standard `AWS_*` variables (obstore
reads them); an `AWS_ENDPOINT_URL` over plain http (a test server, a MinIO on the
same host) is allowed as such. A store that does not answer is retried briefly (three
times, within 15 s), then the request gets 503 with a sentence, never a 500.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import obstore
from obstore.exceptions import BaseError, NotFoundError
from obstore.store import LocalStore, ObjectStore, S3Store

from hxchat.errors import ConfigError, ServiceUnavailable

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig

SETTING = "HXCHAT_FILES_URL"
logger = logging.getLogger(__name__)


RETRIES: RetryConfig = {
    "max_retries": 3,
    "retry_timeout": timedelta(seconds=15),
    "backoff": {"init_backoff": timedelta(milliseconds=100)},
}


def owner_folder(owner: str) -> str:
    """The folder of an owner's contents: a hash, so that no id appears in a path."""
    return hashlib.sha256(owner.encode()).hexdigest()[:32]


def content_key(owner: str, sha256: str, suffix: str = "") -> str:
    """The object name of an owner's content (`suffix` ".txt": a PDF's text)."""
    return f"{owner_folder(owner)}/{sha256}{suffix}"


class FileStorage:
    """Put, get and delete contents by key, in whichever store the URL names."""

    def __init__(self, store: ObjectStore, where: str) -> None:
        self._store = store
        self.where = where  # for messages: the folder or bucket, never credentials

    async def put(self, key: str, data: bytes) -> None:
        with self._reachable():
            await obstore.put_async(self._store, key, data)

    async def get(self, key: str) -> bytes | None:
        """The content, or None when there is none under `key`."""
        with self._reachable():
            try:
                result = await obstore.get_async(self._store, key)
                return bytes(await result.bytes_async())
            except (NotFoundError, FileNotFoundError):
                return None

    async def delete(self, keys: list[str]) -> None:
        """Delete these objects; a missing one is no error (deletes are retried)."""
        with self._reachable():
            for key in keys:
                with contextlib.suppress(NotFoundError, FileNotFoundError):
                    await obstore.delete_async(self._store, key)

    @contextlib.contextmanager
    def _reachable(self) -> Iterator[None]:
        """The store's failures as one sentence (503); the log says what failed."""
        try:
            yield
        except (BaseError, OSError) as exc:
            logger.warning("the file storage (%s) failed: %s", self.where, type(exc).__name__)
            raise ServiceUnavailable(
                f"The file storage ({self.where}) cannot be reached right now; "
                "please try again in a moment."
            ) from None


def open_storage(url: str) -> FileStorage:
    """The storage `HXCHAT_FILES_URL` names: `file:PATH` (relative to the working
    directory, made if missing) or `s3://bucket/prefix`."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        path = Path(url.removeprefix("file://") if url.startswith("file://") else parts.path)
        folder = path.expanduser().resolve()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(SETTING, f"cannot make the folder {folder}: {exc.strerror}") from None
        return FileStorage(LocalStore(folder), f"folder {folder}")
    if parts.scheme == "s3" and parts.hostname:
        endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
        client_options: ClientConfig = {
            "allow_http": endpoint.startswith("http://"),
            "connect_timeout": timedelta(seconds=5),
            "timeout": timedelta(seconds=60),
        }
        store = S3Store.from_url(url, client_options=client_options, retry_config=RETRIES)
        return FileStorage(store, f"bucket {parts.hostname}")
    raise ConfigError(SETTING, "use file:./hxchat-files or s3://bucket/prefix")
