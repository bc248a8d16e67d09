"""How much streaming an answer costs: bytes sent and CPU, for growing answers.

Feeds mixed Markdown (500, 2,000 and 8,000 words) and one 2,000-line code block word by
word into `IncrementalRenderer`, taking an update every ~20 words (as a stream coalesces
frames), and prints the bytes sent over the final HTML's size and the CPU seconds per
1,000 words. For contrast, "naive" is what re-sending the whole rendered message at every
update would send (the tutorial's way; quadratic). Run: `python bench/bench_render.py`.
"""

from __future__ import annotations

import os
import platform
import re
import time
from pathlib import Path

from hxchat.render import IncrementalRenderer, RenderUpdate, render_markdown

TAKE_EVERY = 20  # words between two updates
NAIVE_MAX_WORDS = 2_500  # the naive figure costs a full render per update

SECTION = """## Section {n}

Some *emphasis*, some **strong** words, `inline code`, a [link](https://example.com/{n})
and a sentence that goes on for a while to look like a model's answer & its prose.

- first point about {n}
- second point, with ~~a mistake~~ a fix
  - a nested detail

1. step one
2. step two

> A quoted remark,
> on two lines.

| name | value |
|:-----|------:|
| a{n} | {n} |

```python
def handler_{n}(request):
    return {{"status": "ok", "n": {n}}}
```

"""


def mixed(words: int) -> str:
    """Mixed Markdown of about `words` words (whole sections, then cut at a word)."""
    parts: list[str] = []
    n = 0
    while sum(len(p.split()) for p in parts) < words:
        parts.append(SECTION.format(n=n))
        n += 1
    tokens = re.findall(r"\S+\s*", "".join(parts))
    return "".join(tokens[:words])


def code_block(lines: int) -> str:
    body = "".join(
        f"    total += compute(item_{i}, factor={i % 7})  # step {i}\n" for i in range(lines)
    )
    return f"The code:\n\n```python\ndef run():\n{body}```\n\nDone.\n"


def size(update: RenderUpdate) -> int:
    parts = (update.blocks_html, update.tail_html or "", update.tail_append)
    return sum(len(p.encode()) for p in parts)


def run(text: str) -> dict[str, float]:
    words = re.findall(r"\S+\s*|\s+", text)
    renderer = IncrementalRenderer()
    sent = 0
    start = time.process_time()
    for i, word in enumerate(words, 1):
        renderer.feed(word)
        if i % TAKE_EVERY == 0:
            sent += size(renderer.take())
    sent += size(renderer.take())
    final = renderer.finish()
    cpu = time.process_time() - start
    naive = 0.0
    if len(words) <= NAIVE_MAX_WORDS:
        for i in range(TAKE_EVERY, len(words) + TAKE_EVERY, TAKE_EVERY):
            shown = "".join(words[:i])
            naive += len(render_markdown(shown).encode())
    final_bytes = len(final.encode())
    return {
        "words": len(text.split()),
        "final_kb": final_bytes / 1024,
        "ratio": sent / final_bytes,
        "naive": naive / final_bytes,
        "cpu_per_kword": cpu / (len(text.split()) / 1000),
        "parses": renderer.parse_calls,
        "parsed_x": renderer.parsed_chars / len(text),
    }


def machine() -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.M)
        model = found.group(1) if found else model
    python = f"Python {platform.python_version()}"
    return f"{platform.platform()}, {python}, {model}, {os.cpu_count()} cores"


def main() -> None:
    print(f"machine: {machine()}")
    print(f"update every {TAKE_EVERY} words; bytes ratio = bytes sent / final HTML bytes")
    header = f"{'answer':<26}{'words':>7}{'final KB':>10}{'bytes x':>9}{'naive x':>9}"
    print(header + f"{'CPU s/1k words':>16}{'parses':>8}{'parsed x':>10}")
    run(mixed(300))  # warm up: imports of Pygments lexers, regex compilation
    cases = [(f"mixed Markdown {n:,} words", mixed(n)) for n in (500, 2_000, 8_000)]
    cases.append(("one 2,000-line code block", code_block(2_000)))
    for name, text in cases:
        r = run(text)
        naive = f"{r['naive']:>9.1f}" if r["naive"] else f"{'-':>9}"
        print(
            f"{name:<26}{r['words']:>7.0f}{r['final_kb']:>10.1f}{r['ratio']:>9.2f}{naive}"
            f"{r['cpu_per_kword']:>16.4f}{r['parses']:>8.0f}{r['parsed_x']:>10.2f}"
        )


if __name__ == "__main__":
    main()
