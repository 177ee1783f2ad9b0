"""The README's screenshots: the app on the shipped weights after a click on a shipped example (CREMA-D, whose
licence allows showing it, credited on the page), on a desktop and a phone viewport.

    python bench/screenshots.py            # writes docs/screenshot.png and docs/screenshot-phone.png
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
DONE = "() => { const h = document.querySelector('#verdict h2'); return h && /from |No answer|disagree/.test(h.innerText) }"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--example", default="happy", help="which shipped example to click")
    p.add_argument("--out", default=str(ROOT / "docs"))
    args = p.parse_args()

    sys.path.insert(0, str(ROOT))  # app.py sits at the root, not in the installed package
    import app
    from emotion import EmotionPipeline
    from playwright.sync_api import sync_playwright

    os.environ.setdefault("GRADIO_EXAMPLES_CACHE", tempfile.mkdtemp(prefix="examples-cache-"))
    demo = app.build_app(EmotionPipeline.from_pretrained(), examples_dir=app.SHIPPED_EXAMPLES)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **app.launch_options())
    shots = {"screenshot.png": {"viewport": {"width": 1280, "height": 1000}},
             "screenshot-phone.png": {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
                                      "is_mobile": True, "has_touch": True}}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for name, context in shots.items():
                page = browser.new_context(**context).new_page()
                page.goto(f"http://127.0.0.1:{port}/", wait_until="load")
                page.wait_for_selector("#examples button", timeout=60000)
                page.locator("#examples button", has_text=args.example).first.click()
                page.wait_for_function(DONE, timeout=60000)
                page.wait_for_timeout(2500)  # the plots draw
                page.screenshot(path=str(Path(args.out) / name), full_page=name == "screenshot.png")
                print(f"{name}: {page.inner_text('#verdict h2')}")
            browser.close()
    finally:
        demo.close()


if __name__ == "__main__":
    main()
