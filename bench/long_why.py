"""What the "why" costs on a long clip: /analyze (verdict, plots, explanations, downloads) through gradio_client
and clicked in Chromium until drawn (the browser shares this machine's 2 cores), beside /predict (the answer
alone) on the same 90 s 360p clip, and the longest the progress text stands still. A real app, a real browser (Debian's chromium), the shipped weights.

    python bench/long_why.py [--seconds 90] [--runs 2]

Prints figures; not a test.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("EMOTION_SHARED", ROOT.parent / "shared"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def browser_cpu_s() -> float:
    """CPU seconds used so far by every Chromium process on this machine (from /proc)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        if "chrom" in name:
            total += (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    return total


def own_cpu_s() -> float:
    """CPU seconds used so far by this process (the app) and the ffmpeg processes it has waited for."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def renderer_metrics(cdp) -> dict[str, float]:
    """The page's own counters (Chrome DevTools Protocol): main-thread task seconds, layouts."""
    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=90)
    p.add_argument("--runs", type=int, default=2)
    args = p.parse_args()
    os.environ.setdefault("EMOTION_FACE_MODEL", str(SHARED / "models" / "face_landmarker.task"))
    import numpy as np
    from gradio_client import Client, handle_file
    from playwright.sync_api import sync_playwright

    import app
    from emotion import EmotionPipeline
    from emotion.media import ffmpeg_exe
    from test_app import PROGRESS_LOG, VERDICT_DONE

    clip = Path(tempfile.mkdtemp()) / "long.mp4"
    os.system(f"{ffmpeg_exe()} -v error -y -stream_loop -1 -i {SHARED}/data/mead-clips/M030_sad_eamm1.mp4 -t "
              f"{args.seconds} -vf scale=-2:360 -c:v libx264 -preset veryfast -c:a aac {clip}")
    demo = app.build_app(EmotionPipeline.from_pretrained(None), "")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **app.launch_options())
    client = Client(url, verbose=False)
    client.predict(video=handle_file(str(clip)), api_name="/predict")  # warm: caches, first-call costs
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        for _ in range(args.runs):
            t = time.perf_counter()
            client.predict(video=handle_file(str(clip)), api_name="/predict")
            plain = time.perf_counter() - t
            t = time.perf_counter()
            client.predict(video=handle_file(str(clip)), api_name="/analyze")  # the same outputs, no browser drawing
            served = time.perf_counter() - t
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")
            page.goto(url)
            page.set_input_files("#clip input[type=file]", str(clip))
            page.wait_for_selector("#clip video", timeout=30000)
            page.evaluate(PROGRESS_LOG)
            t, cpu, mine, before = time.perf_counter(), browser_cpu_s(), own_cpu_s(), renderer_metrics(cdp)
            page.click("#analyze")
            # polled every 100 ms, not every frame (Playwright's default): a visitor's page does not poll
            page.wait_for_function(VERDICT_DONE, timeout=300000, polling=100)
            verdict, verdict_cpu = time.perf_counter() - t, browser_cpu_s() - cpu
            waiting = {k: v - before[k] for k, v in renderer_metrics(cdp).items() if k in before}
            page.wait_for_selector("#voice-why .js-plotly-plot", timeout=30000)
            shown = time.perf_counter() - t
            drawn_cpu, server_cpu = browser_cpu_s() - cpu, own_cpu_s() - mine
            moving = [m[0] for m in page.evaluate("window.progressLog") if m[1]]
            print(f"{args.seconds:g} s 360p clip: /predict {plain:.1f} s; /analyze through gradio_client {served:.1f} s "
                  f"({served / plain:.2f}x), clicked in Chromium until drawn {shown:.1f} s ({shown / plain:.2f}x); "
                  f"progress text still at most {np.diff(moving).max() / 1000:.1f} s; CPU meanwhile: the app {server_cpu:.1f} s, "
                  f"Chromium {drawn_cpu:.1f} s ({verdict_cpu:.1f} s of it until the verdict, shown at {verdict:.1f} s: "
                  f"the page's main thread {waiting['TaskDuration']:.1f} s, {waiting['LayoutCount']:.0f} layouts)")
            page.close()
        browser.close()
    demo.close()


if __name__ == "__main__":
    main()
