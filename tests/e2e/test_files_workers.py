"""Attachments across workers (#11): two real `hxchat serve` processes on one
PostgreSQL database and one Redis, sharing one S3 store (moto's server, through the
same obstore code a deployment uses). One receives the upload; the other stores the
message with it, answers it (reading the file back from S3 for the model) and serves it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import hostile_files as hostile
from tests.e2e.cluster import session, shared_environment, workers
from tests.s3_server import BUCKET, s3_environment, s3_server
from tests.servers import Server

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

REDIS_DB = 15


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    workdir = tmp_path_factory.mktemp("files-workers")
    with (
        s3_server() as endpoint,
        shared_environment(workdir, REDIS_DB, echo_delay_ms=5) as env,
    ):
        env = {**env, **s3_environment(endpoint), "HXCHAT_FILES_URL": f"s3://{BUCKET}/e2e"}
        with workers(workdir, [env, env]) as servers:
            yield servers


async def test_a_file_uploaded_on_one_worker_is_answered_and_served_by_the_other(
    two_workers: list[Server],
) -> None:
    a, b = two_workers
    photo = hostile.jpeg_with_gps(1200, 900)
    async with session() as user:
        uploaded = await user.request(
            "POST", a, "/api/files", files={"file": ("photo.jpg", photo, "image/jpeg")}
        )
        assert uploaded.status_code == 201, uploaded.text
        file = uploaded.json()
        cid = await user.new_conversation(b)
        sent = await user.request(
            "POST",
            b,
            f"/api/conversations/{cid}/messages",
            json={"content": "what is this?", "files": [file["id"]]},
        )
        assert sent.status_code == 202, sent.text
        answer, _ = await user.settled_answer(b, cid, within=30)
        assert answer["status"] == "complete"  # the model's history was read from S3
        shown = (await user.conversation(a, cid))["messages"][0]
        assert shown["files"] == [file]

        served_b = await user.request("GET", b, f"/api/files/{file['id']}")
        served_a = await user.request("GET", a, f"/api/files/{file['id']}")
        assert served_b.status_code == served_a.status_code == 200
        assert served_a.content == served_b.content and len(served_b.content) == file["size"]
        assert served_b.headers["etag"] == served_a.headers["etag"]

        deleted = await user.request("DELETE", a, f"/api/conversations/{cid}")
        assert deleted.status_code == 204
        assert (await user.request("GET", b, f"/api/files/{file['id']}")).status_code == 404
