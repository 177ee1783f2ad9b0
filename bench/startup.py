"""The app's start-up, as `python app.py` makes it: seconds from the process start until the imports are done,
the page is served (built, the examples' previews made, launched), and the models are loaded and warmed up
(in a thread, while the page is already served). Each run in a fresh process with an empty examples cache,
as a fresh Space starts.

    python bench/startup.py [--runs 3] [--weights weights]

Prints figures; not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("EMOTION_SHARED", ROOT.parent / "shared"))

CHILD = """
import json, socket, sys, time, urllib.request
t0 = time.perf_counter()
marks = {}
import app
marks["imports"] = time.perf_counter() - t0
pipe = app.LoadingPipeline(sys.argv[1])  # as `python app.py` starts: the models load in a thread
demo = app.build_app(pipe, app.SHIPPED_EXAMPLES)
with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **app.launch_options())
urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=60).read()
marks["page served"] = time.perf_counter() - t0
pipe.fusion  # any model attribute waits for the loading thread
marks["models ready"] = time.perf_counter() - t0
print(json.dumps(marks))
demo.close()
"""


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--weights", default=str(ROOT / "weights"))
    args = p.parse_args()
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "GRADIO_EXAMPLES_CACHE": cache,
                   "EMOTION_FACE_MODEL": os.environ.get("EMOTION_FACE_MODEL",
                                                        str(SHARED / "models" / "face_landmarker.task"))}
            out = subprocess.run([sys.executable, "-c", CHILD, args.weights], cwd=ROOT, capture_output=True,
                                 text=True, env=env)
        if out.returncode:
            print(out.stderr[-2000:])
            return
        runs.append(json.loads(next(x for x in out.stdout.splitlines() if x.startswith("{"))))
    print(f"App start-up, {args.runs} fresh processes, seconds since the process started (median, min-max):")
    for key in runs[0]:
        values = [r[key] for r in runs]
        print(f"  {key:13s} {statistics.median(values):5.1f}  ({min(values):.1f}-{max(values):.1f})")


if __name__ == "__main__":
    main()
