"""Refresh the README's screenshots: the app, on the shipped weights, after analysing a shared clip, on a desktop
(1280×900) and on a phone (390×844). The face in the player is blurred: the clips are research-only.

    python docs/screenshots.py            # writes docs/screenshot.png and docs/screenshot-phone.png
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("EMOTION_SHARED", ROOT.parent / "shared"))
CLIP = SHARED / "data" / "mead-clips" / "M030_sad_eamm1.mp4"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
BLUR = "#clip video { filter: blur(14px); }"
DONE = "() => { const h = document.querySelector('#verdict h2'); return h && /from |disagree/.test(h.innerText) }"


def main() -> None:
    os.environ.setdefault("EMOTION_FACE_MODEL", str(SHARED / "models" / "face_landmarker.task"))
    os.environ["GRADIO_EXAMPLES_CACHE"] = tempfile.mkdtemp(prefix="emotion-examples-")
    import app
    from emotion import EmotionPipeline
    from playwright.sync_api import sync_playwright

    demo = app.build_app(EmotionPipeline.from_pretrained(ROOT / "weights"), SHARED / "data" / "mead-clips")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **app.launch_options())
    shots = {"screenshot.png": dict(viewport={"width": 1280, "height": 900}),
             "screenshot-phone.png": dict(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                          is_mobile=True, has_touch=True)}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        for name, context in shots.items():
            page = browser.new_context(**context).new_page()
            page.goto(f"http://127.0.0.1:{port}/", wait_until="load")
            page.wait_for_selector("#analyze", timeout=60000)
            page.add_style_tag(content=BLUR)
            page.set_input_files("#clip input[type=file]", str(CLIP))
            page.wait_for_selector("#clip video", timeout=30000)
            page.click("#analyze")
            page.wait_for_function(DONE, timeout=120000)
            page.wait_for_timeout(2500)
            page.screenshot(path=str(ROOT / "docs" / name), full_page=name == "screenshot.png")
            print(f"docs/{name}: {page.inner_text('#verdict h2')}")
        browser.close()
    demo.close()


if __name__ == "__main__":
    main()
