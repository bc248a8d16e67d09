"""The processes that judge uploaded files end with their worker: a stopped worker
(uvicorn ends it by raising SIGTERM again, so nothing Python runs at exit runs) and a
worker killed outright left them waiting for work forever, 90 MB each per restart."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.e2e.cluster import session
from tests.helpers import eventually
from tests.servers import start_server

pytestmark = pytest.mark.e2e


def children(pid: int) -> set[int]:
    """The processes whose parent is `pid` now."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def running(pid: int) -> bool:
    """Whether the process exists and has not ended (a zombie has)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads processes from /proc (Linux)")
@pytest.mark.parametrize("end", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
async def test_the_file_processes_end_with_their_worker(
    tmp_path: Path, end: signal.Signals
) -> None:
    env = {
        "HXCHAT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'hxchat.db'}",
        "HXCHAT_FILES_URL": f"file:{tmp_path / 'files'}",
    }
    server = start_server(tmp_path, env)
    try:
        server.wait_ready()
        before = children(server.process.pid)
        async with session() as user:
            uploaded = await user.request(
                "POST", server, "/api/files", files={"file": ("note.txt", b"hello", "text/plain")}
            )
            assert uploaded.status_code == 201, uploaded.text
        pool = children(server.process.pid) - before
        assert pool, "the upload was judged in a process of its own"
        server.process.send_signal(end)
        server.process.wait(timeout=15)

        def ended() -> None:
            assert not [pid for pid in pool if running(pid)]

        await eventually(ended, within=10)
    finally:
        server.stop()
