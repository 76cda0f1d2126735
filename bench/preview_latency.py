"""Keystroke-to-frame latency of the editor with the preview on a 2 MB document:
``python -m bench.preview_latency`` (needs a built client and Chromium; about two minutes).

For each setup it types ``--keys`` characters into the middle of the document, one every
``--gap-ms``, and times each from the key event (``event.timeStamp``) to the frame that shows
it (the task after the next ``requestAnimationFrame``, i.e. after the paint). Setups:

- ``edit``: Edit mode (the worker still counts words after each change);
- ``split``: Split mode as shipped (coalesced: after the frame, when idle, one render in flight);
- ``split-undebounced``: Split mode with every change sent to the worker at once
  (``window.tandem.preview.setDebounce(false)``), every answer put in as it comes.

It also reports how long the first render of the document takes (Split opened) and, for the
two split setups, how long the preview takes to show the last key once typing stops.
Results are printed as JSON and written to ``bench/results/preview-latency-<time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.async_api import Page, async_playwright

from testkit.serverproc import ServerProcess
from tests.browser import evaluate_within, launch, new_person, open_editor

RESULTS = Path(__file__).resolve().parent / "results"


def section(i: int) -> str:
    """About 2.6 kB of everyday Markdown: prose, a list, tasks, code, a table, a quote."""
    return f"""## Section {i}: notes on item {i}

Lorem ipsum dolor sit amet, **consectetur** adipiscing elit, sed do eiusmod tempor incididunt ut
labore et dolore magna aliqua, with `inline code` and a [link](https://example.com/{i}).
Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla
pariatur. Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt.

- first point about {i}, with *emphasis*
- second point, see www.example.org/{i}
- [ ] a task still open
- [x] a task done

```python
def item_{i}(values):
    total = 0
    for value in values:
        total += value * {i}
    return total
```

| name | count | share |
| :--- | ---: | :---: |
| alpha | {i} | 10% |
| beta | {i * 2} | 20% |
| gamma | {i * 3} | ~~30%~~ |

> A quoted remark about section {i}, which goes on for a while to look like prose.

"""


def big_document(size: int) -> str:
    parts = ["# A big document\n\n"]
    total = len(parts[0])
    i = 0
    while total < size:
        parts.append(section(i))
        total += len(parts[-1])
        i += 1
    return "".join(parts)


# Installed once per page: each keydown in the editor records event.timeStamp and, after the
# next frame's paint, now; window.__latencies collects the differences.
PROBE = """() => {
    window.__latencies = []
    window.tandem.view.contentDOM.addEventListener('keydown', (event) => {
        const pressed = event.timeStamp
        requestAnimationFrame(() => {
            const channel = new MessageChannel()
            channel.port1.onmessage = () => window.__latencies.push(performance.now() - pressed)
            channel.port2.postMessage(null)
        })
    }, { capture: true })
}"""

WAIT_CURRENT = """() => new Promise((resolve) => {
    const started = performance.now()
    const check = () => window.tandem.preview.current()
        ? resolve(performance.now() - started) : setTimeout(check, 5)
    check()
})"""


async def caret_to_middle(page: Page) -> None:
    await page.evaluate(
        """() => {
            const view = window.tandem.view
            const line = view.state.doc.line(Math.floor(view.state.doc.lines / 2))
            view.dispatch({ selection: { anchor: line.to }, scrollIntoView: true })
            view.focus()
        }"""
    )


async def type_measured(page: Page, keys: int, gap_ms: int) -> list[float]:
    await page.evaluate("() => { window.__latencies = [] }")
    for i in range(keys):
        await page.keyboard.press("abcdefghij"[i % 10])
        await asyncio.sleep(gap_ms / 1000)
    await page.wait_for_function("n => window.__latencies.length >= n", arg=keys)
    return list(await page.evaluate("() => window.__latencies"))


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median_ms": round(statistics.median(ordered), 1),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 1),
        "max_ms": round(ordered[-1], 1),
    }


async def measure(url: str, size: int, keys: int, gap_ms: int, settle_s: float) -> dict[str, Any]:
    text = big_document(size)
    results: dict[str, Any] = {"document_bytes": len(text.encode()), "keys": keys, "gap_ms": gap_ms}
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        try:
            for setup in ("edit", "split", "split-undebounced"):
                context = await new_person(browser, "Bench")
                page = await open_editor(context, url, f"bench-{setup}-{time.monotonic_ns()}")
                await page.evaluate("text => window.tandem.ytext.insert(0, text)", text)
                await page.evaluate("() => window.tandem.preview.setMode('edit')")
                await page.wait_for_function("() => window.tandem.preview.counted()")
                if setup != "edit":
                    started = time.perf_counter()
                    await page.evaluate("() => window.tandem.preview.setMode('split')")
                    await evaluate_within(page, WAIT_CURRENT, 300)
                    results.setdefault("first_render_s", round(time.perf_counter() - started, 2))
                    stats = await page.evaluate("() => window.tandem.preview.stats()")
                    results.setdefault("worker_render_ms", stats["lastRenderMs"])
                if setup == "split-undebounced":
                    await page.evaluate("() => window.tandem.preview.setDebounce(false)")
                await caret_to_middle(page)
                await page.evaluate(PROBE)
                await asyncio.sleep(settle_s)  # CodeMirror parses up to the caret in the background
                latencies = await type_measured(page, keys, gap_ms)
                entry: dict[str, Any] = summary(latencies)
                if setup != "edit":
                    entry["preview_caught_up_s"] = round(
                        await evaluate_within(page, WAIT_CURRENT, 600) / 1000, 2
                    )
                    entry["renders"] = (await page.evaluate("() => window.tandem.preview.stats()"))[
                        "renders"
                    ]
                results[setup] = entry
                print(setup, json.dumps(entry), flush=True)
                await context.close()
        finally:
            await browser.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=2 * 1024 * 1024, help="document bytes")
    parser.add_argument("--keys", type=int, default=30)
    parser.add_argument("--gap-ms", type=int, default=120, help="time between keys")
    parser.add_argument("--settle-s", type=float, default=10, help="wait before typing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp) / "bench.db").start()
        try:
            results = asyncio.run(
                measure(server.url, args.size, args.keys, args.gap_ms, args.settle_s)
            )
        finally:
            server.kill()
    print(json.dumps(results, indent=2))
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    (RESULTS / f"preview-latency-{stamp}.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
