"""Labelling: saves that race through real servers, notebook rendering, screenshots.

Run: ``python bench/labelling.py`` -> prints the figures, writes
``bench/results/labelling.json`` and (with Chromium) ``bench/results/labelling-*.png``.

1. **Concurrent saves**: ``--processes`` ``judgealign label`` servers (default 4) on one
   labels file, each sent ``--saves`` saves (default 200) over HTTP by its own thread, all at
   once. Reports rows lost (the target is 0; the earlier read-modify-write of the labels file
   lost 12-15% of saves with two processes, issue 18), saves per second and save latency.
   Each save is one SQLite transaction with two fsyncs (the export and the commit): the disk
   sets the pace.
2. **Rendering**: every notebook in ../shared/data/notebooks through
   ``render.notebook_html.notebook_to_html`` (time per notebook, HTML size, failures).
3. **Screenshots** of the page at 1024 and 1440 px on a real notebook, for the record.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, SHARED, write_result

NOTEBOOKS = SHARED / "data" / "notebooks"
REAL = (
    NOTEBOOKS
    / "PacktPublishing+Python-Feature-Engineering-Cookbook/Chapter01"
    / "Recipe-2-Quantifying-missing-data.ipynb"
)


def start_server(items: Path, labels: Path, rater: str) -> tuple[subprocess.Popen[str], str]:
    cmd = [
        str(Path(sys.executable).parent / "judgealign"), "label", str(items), "--rubric",
        "ml-notebook", "--labels", str(labels), "--rater", rater, "--no-open",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    url = line.split(" at ", 1)[1].split(" ", 1)[0]
    return proc, url


def concurrent_saves(processes: int, saves: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="ja-bench-label-"))
    items = folder / "items.jsonl"
    items.write_text(
        "".join(json.dumps({"id": f"t{i}", "output": f"text {i}"}) + "\n" for i in range(saves))
    )
    labels = folder / "labels.jsonl"
    servers = [start_server(items, labels, f"r{k}") for k in range(processes)]
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def run(url: str) -> None:
        with httpx.Client(timeout=120) as client:
            for i in range(saves):
                body = {"item": f"t{i}", "dimension": "model_use", "score": 1 + i % 3,
                        "rationale": "why " * 30}  # fmt: skip
                started = time.perf_counter()
                resp = client.post(url + "api/labels", json=body)
                took = time.perf_counter() - started
                with lock:
                    latencies.append(took)
                    if resp.status_code != 200:
                        failures.append(resp.text[:200])

    threads = [threading.Thread(target=run, args=(url,)) for _, url in servers]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    for proc, _ in servers:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    rows = [json.loads(x) for x in labels.read_text().splitlines() if x.strip()]
    expected = processes * saves
    latencies.sort()
    return {
        "processes": processes,
        "saves_per_process": saves,
        "answered_200": expected - len(failures),
        "rows_in_labels_file": len(rows),
        "rows_lost": expected - len({(r["rater"], r["item"]) for r in rows}),
        "wall_s": round(wall, 2),
        "saves_per_s": round(expected / wall, 1),
        "latency_ms_p50": round(1000 * statistics.median(latencies), 1),
        "latency_ms_p95": round(1000 * latencies[int(0.95 * (len(latencies) - 1))], 1),
        "failures": failures[:3],
    }


def rendering() -> dict[str, Any]:
    from judgealign.render.notebook_html import notebook_to_html

    if not NOTEBOOKS.is_dir():
        return {"skipped": f"{NOTEBOOKS} is absent"}
    times, sizes, failed = [], [], []
    for path in sorted(NOTEBOOKS.rglob("*.ipynb")):
        text = path.read_text(encoding="utf-8")
        started = time.perf_counter()
        try:
            html = notebook_to_html(text, source=str(path))
        except Exception as err:  # a failure is a figure here, not a crash
            failed.append(f"{path.name}: {err}")
            continue
        times.append(time.perf_counter() - started)
        sizes.append((len(text), len(html)))
    return {
        "notebooks": len(times) + len(failed),
        "failed": failed,
        "seconds_total": round(sum(times), 2),
        "seconds_median": round(statistics.median(times), 4),
        "seconds_max": round(max(times), 3),
        "ipynb_mb_total": round(sum(s for s, _ in sizes) / 1e6, 1),
        "html_mb_total": round(sum(h for _, h in sizes) / 1e6, 1),
    }


def screenshots() -> dict[str, Any]:
    import shutil

    chromium = shutil.which("chromium")
    if chromium is None or not REAL.is_file():
        return {"skipped": "no chromium or no shared notebooks"}
    from playwright.sync_api import sync_playwright

    from judgealign.data.items_io import load_items
    from judgealign.labelling import LabellingServer, LabellingSession
    from judgealign.rubric import load_rubric

    folder = Path(tempfile.mkdtemp(prefix="ja-bench-shot-"))
    rubric = load_rubric("ml-notebook")
    session = LabellingSession(
        load_items([REAL]), rubric.subset(["data_imputation", "model_use"]),
        folder / "labels.jsonl", file_rubric=rubric, rater="ann",
    ).load()  # fmt: skip
    written = []
    with LabellingServer(session) as server, sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            args=["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"],
        )  # fmt: skip
        for width, height in ((1024, 768), (1440, 900)):
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(server.url)
            plot = page.locator('.ja-nb img[src^="data:image/png"]').first
            plot.wait_for()
            plot.scroll_into_view_if_needed()
            out = RESULTS / f"labelling-{width}.png"
            page.screenshot(path=str(out))
            written.append(out.name)
            page.close()
        browser.close()
    session.close()
    return {"files": written}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--saves", type=int, default=200)
    args = parser.parse_args()
    saves = concurrent_saves(args.processes, args.saves)
    print(
        f"concurrent saves: {saves['processes']} label servers x {saves['saves_per_process']}: "
        f"{saves['answered_200']} answered 200, {saves['rows_in_labels_file']} rows, "
        f"{saves['rows_lost']} lost; {saves['saves_per_s']} saves/s, latency p50 "
        f"{saves['latency_ms_p50']} ms, p95 {saves['latency_ms_p95']} ms"
    )
    render = rendering()
    print(f"rendering: {render}")
    shots = screenshots()
    print(f"screenshots: {shots}")
    path = write_result(
        "labelling", {"concurrent_saves": saves, "rendering": render, "screenshots": shots}
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
