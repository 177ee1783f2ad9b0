"""Peak RSS of the running app, and whether it grows over many sequential requests (a leak check).

    python bench/app_memory.py [--requests 50]

Launches the app in this process on a free port, sends requests with gradio_client, prints RSS every 10.
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("EMOTION_SHARED", ROOT.parent / "shared"))


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--requests", type=int, default=50)
    p.add_argument("--every", type=int, default=10, help="print RSS every this many requests")
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import app
    from emotion import EmotionPipeline
    from gradio_client import Client, handle_file

    app.limit_malloc_arenas()  # as app.main() does, before the models start their threads
    pipe = EmotionPipeline.from_pretrained(ROOT / "weights", face_model=SHARED / "models" / "face_landmarker.task")
    demo = app.build_app(pipe)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    client = Client(f"http://127.0.0.1:{port}/", verbose=False)
    clips = sorted((SHARED / "data" / "mead-clips").glob("*.mp4"))
    print(f"after loading: RSS {rss_mb():.0f} MB")
    t = time.perf_counter()
    for i in range(1, args.requests + 1):
        client.predict(video=handle_file(str(clips[i % len(clips)])), api_name="/predict")
        if i % args.every == 0:
            print(f"after {i} requests: RSS {rss_mb():.0f} MB ({(time.perf_counter() - t) / i:.2f} s per request)")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    demo.close()


if __name__ == "__main__":
    main()
