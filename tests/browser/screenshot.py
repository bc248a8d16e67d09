"""The README's screenshots, made by the real app in the real browser.

    .venv/bin/python -m tests.browser.screenshot [OUT_DIR]

starts `hxchat serve` on a temporary database, has a short conversation with the echo
model (which says the message back, so the answer is the Markdown below, rendered), and
writes `screenshot.png` (light) and `screenshot-dark.png` (dark), 1280x800, into OUT_DIR
(default `docs/`). The browser tests call `capture` too, so the script keeps working.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Literal

from playwright.sync_api import Page, expect, sync_playwright

from tests.browser.helpers import VIEWPORT, Chat
from tests.helpers import CHROMIUM, CHROMIUM_ARGS
from tests.servers import serving

SHOWCASE = """## Merging two sorted lists

Walk both lists **once**, always taking the smaller head; the result is sorted in
`O(n + m)` time.

- no sorting afterwards
- stable: equal items keep their order
- works on any comparable items

| approach | time | extra memory |
| --- | --- | --- |
| two pointers | O(n + m) | O(n + m) |
| `sorted(a + b)` | O((n + m) log(n + m)) | O(n + m) |

```python
def merge(a: list[int], b: list[int]) -> list[int]:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        if a[i] <= b[j]:
            out.append(a[i]); i += 1
        else:
            out.append(b[j]); j += 1
    return out + a[i:] + b[j:]
```

The standard library has it too: `heapq.merge(a, b)` gives a lazy iterator over both.
"""
EARLIER = "Compare SQLite and PostgreSQL in a table."
NAMES: dict[Literal["light", "dark"], str] = {
    "light": "screenshot.png",
    "dark": "screenshot-dark.png",
}


def capture(page: Page, out_dir: Path) -> list[Path]:
    """Screenshot a finished conversation in light and dark; return the files written.

    `page` belongs to a fresh browser context whose base URL is the server."""
    page.set_viewport_size(VIEWPORT)
    page.emulate_media(color_scheme="light", reduced_motion="reduce")
    chat = Chat(page)
    chat.open()
    chat.ask(EARLIER)
    page.get_by_role("link", name="New chat").click()
    chat.ask(SHOWCASE, timeout=30_000)
    page.reload()  # the page as it comes back: focus and scroll as a visitor sees them
    answer = chat.answers.first
    expect(answer).to_have_attribute("data-status", "complete")
    # The echo model's question is the answer's Markdown source: show the answer.
    answer.evaluate(
        "a => { const t = a.closest('[role=log]'); t.scrollTop = a.offsetTop - t.offsetTop - 24; }"
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for scheme, name in NAMES.items():
        page.emulate_media(color_scheme=scheme)
        path = out_dir / name
        page.screenshot(path=path, animations="disabled", caret="hide")
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    out_dir = Path(argv[1]) if len(argv) > 1 else Path("docs")
    with tempfile.TemporaryDirectory() as workdir:
        env = {
            "HXCHAT_DATABASE_URL": f"sqlite+aiosqlite:///{Path(workdir) / 'hxchat.db'}",
            "HXCHAT_ECHO_DELAY_MS": "5",
        }
        with serving(Path(workdir), env) as server, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(base_url=server.url)
                for path in capture(context.new_page(), out_dir):
                    sys.stdout.write(f"wrote {path}\n")
            finally:
                browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
