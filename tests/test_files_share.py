"""Files of a shared conversation (#11 with #12): served to whoever may open the share
link, under the link's own address, and to no one else."""

from __future__ import annotations

import httpx

from tests import hostile_files as hostile
from tests.html_tree import parse

FILE_POLICY = "sandbox; default-src 'none'"


async def test_a_shares_files_are_shown_and_served_to_its_readers_only(
    client: httpx.AsyncClient, other_client: httpx.AsyncClient
) -> None:
    image = (await client.post("/api/files", files={"file": ("c.png", hostile.png())})).json()
    notes = (await client.post("/api/files", files={"file": ("n.txt", b"notes")})).json()
    private = (await client.post("/api/files", files={"file": ("p.txt", b"mine")})).json()
    cid = (await client.post("/api/conversations")).json()["id"]
    sent = await client.post(
        f"/api/conversations/{cid}/messages",
        json={"content": "look", "files": [image["id"], notes["id"]]},
    )
    await client.get(sent.json()["events_url"])
    link = (await client.post(f"/api/conversations/{cid}/share")).json()["url"]

    page = parse((await other_client.get(link)).text)
    question = page.find("article", data_role="user")
    img = question.find("img")
    assert img.attrs["alt"] == "c.png" and img.attrs["src"] == f"{link}/files/{image['id']}"
    assert question.find("a", download=None).text == "n.txt"

    served = await other_client.get(f"{link}/files/{image['id']}")
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert served.headers["content-security-policy"] == FILE_POLICY
    assert served.headers["cache-control"] == "no-store"
    text = await other_client.get(f"{link}/files/{notes['id']}")
    assert text.text == "notes" and text.headers["content-disposition"].startswith("attachment;")

    # Only the share's files, only through the share, only while it lasts.
    assert (await other_client.get(f"{link}/files/{private['id']}")).status_code == 404
    assert (await other_client.get(f"/api/files/{image['id']}")).status_code == 404
    assert (await other_client.get(f"/s/nosuchtoken/files/{image['id']}")).status_code == 404
    assert (await client.delete(f"/api/conversations/{cid}/share")).status_code == 204
    assert (await other_client.get(f"{link}/files/{image['id']}")).status_code == 404
