"""A real S3 API for the tests: moto's standalone server on loopback (#11).

The same obstore code a deployment uses talks to it over HTTP, with the standard
`AWS_*` variables; nothing in hxchat knows it is a test server.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx

from tests.servers import free_port

BUCKET = "hxchat-test"


@contextlib.contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server with an empty bucket `BUCKET`; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        httpx.put(f"{endpoint}/{BUCKET}").raise_for_status()  # make the bucket
        yield endpoint
    finally:
        server.stop()


def s3_environment(endpoint: str) -> dict[str, str]:
    """The variables a deployment sets for an S3-compatible store."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }
