"""The Gradio app, launched for real: the API through gradio_client, and a real Chromium via Playwright."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from conftest import MEAD, ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--use-fake-device-for-media-stream",
                 "--use-fake-ui-for-media-stream"]
VERDICT_DONE = "() => { const h = document.querySelector('#verdict h2'); return h && /from |No answer|⚠/.test(h.innerText) }"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(pipe):
    import app

    demo = app.build_app(pipe, examples_dir=MEAD)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    """Screenshots for a person to look at: in $EMOTION_TEST_ARTIFACTS if set, else in pytest's temporary folder."""
    folder = Path(os.environ.get("EMOTION_TEST_ARTIFACTS") or tmp_path_factory.mktemp("artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, app_url):
    ctx = browser.new_context(permissions=["camera", "microphone"], viewport={"width": 1280, "height": 1000})
    pg = ctx.new_page()
    pg.goto(app_url, wait_until="networkidle")
    yield pg
    ctx.close()


def test_api_with_gradio_client(app_url):
    from gradio_client import Client, handle_file

    client = Client(app_url, verbose=False)
    result = client.predict(video=handle_file(str(MEAD / "M030_sad_eamm1.mp4")), api_name="/predict")
    assert result["modalities"] == ["audio", "face"]
    assert result["label"] in result["fused"]
    assert sum(result["fused"].values()) == pytest.approx(1, abs=1e-3)
    bad = client.predict(video=handle_file(str(ROOT / "weights" / "config.json")), api_name="/predict")
    assert "error" in bad


@pytest.mark.parametrize("route", ["gradio_api/file=/etc/passwd", "gradio_api/file=../../../../etc/passwd",
                                   "gradio_api/file=%2Fetc%2Fpasswd", "file=/etc/passwd",
                                   "gradio_api/file=weights/config.json", "gradio_api/file=../shared/README.md"])
def test_file_routes_do_not_serve_the_servers_files(app_url, route):
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(app_url + route, timeout=30) as r:
            body = r.read()
    except urllib.error.HTTPError as exc:
        assert exc.code in (400, 403, 404), exc.code
        return
    assert b"root:" not in body and b"mfcc_mean" not in body and b"shared/" not in body


def test_both_endpoints_keep_the_apps_length_limit(app_url, monkeypatch):
    import app
    from gradio_client import Client, handle_file

    monkeypatch.setattr(app, "MAX_DURATION_S", 2.0)  # as EMOTION_MAX_DURATION_S=2 would set it
    client = Client(app_url, verbose=False)
    clip = handle_file(str(MEAD / "W009_front_happy_level3_001.mp4"))  # 4 s
    result = client.predict(video=clip, api_name="/predict")
    assert result.get("code") == "too_long", result
    verdict = client.predict(video=clip, api_name="/analyze")[0]
    assert "limit is 2 s" in verdict


def test_upload_and_analyze_in_chromium(page, artifacts):
    page.set_input_files("#clip input[type=file]", str(MEAD / "M030_sad_eamm1.mp4"))
    page.wait_for_selector("#clip video", timeout=30000)
    page.click("#analyze")
    page.wait_for_function(VERDICT_DONE, timeout=120000)
    verdict = page.inner_text("#verdict h2")
    assert "from voice and face" in verdict
    page.wait_for_selector("#prob-plot .js-plotly-plot", timeout=30000)
    assert page.locator("#prob-plot .js-plotly-plot .bars path").count() >= 12  # voice, face and both bars
    assert page.locator("#face-why .js-plotly-plot").count() == 1
    assert page.locator("#voice-why .js-plotly-plot").count() == 1
    details = page.inner_text("#details")
    assert "voice + " in details and "face" in details.split("voice + ")[1] and "Face visible in 100%" in details
    page.wait_for_function("() => document.querySelector('#downloads').innerText.includes('.csv')", timeout=30000)
    downloads = page.inner_text("#downloads")
    assert "M030_sad_eamm1.emotion" in downloads and ".json" in downloads
    page.wait_for_timeout(1000)
    page.screenshot(path=str(artifacts / "app_upload.png"), full_page=True)


def test_webcam_recording_gives_a_result_or_a_plain_warning(page, artifacts):
    page.click("#clip button[aria-label='Capture from camera']")
    page.click("#clip button:has-text('Click to Access Webcam')")
    page.click("#clip button[aria-label='start recording']")
    page.wait_for_timeout(3000)
    page.click("#clip button:has-text('Stop')")
    page.wait_for_selector("#clip video[src]", timeout=30000)
    page.click("#analyze")
    page.wait_for_function(VERDICT_DONE, timeout=120000)
    text = page.inner_text("#verdict h2") + page.inner_text("#details")
    # Chromium's fake camera shows a test pattern, never a face: said plainly, whatever the fake microphone gives
    assert "No face found" in text or "neither a voice nor a face" in text, text
    assert page.locator(".toast-body").count() == 0, page.locator(".toast-body").all_inner_texts()  # never an error box
    page.screenshot(path=str(artifacts / "app_webcam.png"), full_page=True)


def test_bad_upload_shows_a_plain_message(page, tmp_path):
    fake = tmp_path / "holiday.mp4"
    fake.write_bytes(b"this is not a video at all" * 100)
    page.set_input_files("#clip input[type=file]", str(fake))
    page.wait_for_selector("#clip video", state="attached", timeout=30000)  # the upload has arrived
    page.click("#analyze")
    page.wait_for_function(VERDICT_DONE, timeout=60000)
    assert "not a video or audio file" in page.inner_text("#verdict h2")
    # The browser's own player may say "Video not playable"; the server side never shows an error box.
    toasts = page.locator(".toast-body").all_inner_texts()
    assert all("Video not playable" in t for t in toasts), toasts


def test_eight_simultaneous_requests_all_succeed(app_url):
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client, handle_file

    clips = [MEAD / n for n in ("W009_front_happy_level3_001.mp4", "W011_front_sad_level3_001.mp4",
                                "M030_front_angry_level3_001.mp4", "W009_front_surprised_level3_001.mp4")] * 2

    def call(clip):
        return Client(app_url, verbose=False).predict(video=handle_file(str(clip)), api_name="/predict")

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, clips))
    assert all("error" not in r and r["modalities"] == ["face"] for r in results)
    assert [r["file"] for r in results] == [c.name for c in clips]


def test_result_files_are_removed_when_old(pipe, monkeypatch, tmp_path):
    import os
    import time

    import app

    monkeypatch.setattr(app, "RESULTS_DIR", tmp_path / "results")
    pred = pipe.predict(MEAD / "W009_front_happy_level3_001.mp4")
    first = app.write_downloads(pred)
    assert [Path(p).suffix for p in first] == [".json", ".csv"] and all(Path(p).is_file() for p in first)
    old = time.time() - app.FILE_MAX_AGE_S - 60
    os.utime(Path(first[0]).parent, (old, old))
    second = app.write_downloads(pred)
    assert not Path(first[0]).parent.exists()  # past its age: gone
    import csv

    row = next(csv.DictReader(open(second[1])))  # the one export format of the CLI and batch
    assert row["label"] == pred.label and float(row["fused_happy"]) == pytest.approx(pred.fused["happy"], abs=1e-6)
    assert row["not_sure"] == str(pred.not_sure) and row["modalities"] == "face"
    assert app.download_stem("sample.webm").startswith("webcam-") and app.download_stem("my clip.mp4") == "my clip"
    assert all(Path(p).is_file() for p in second)
    assert app.build_app(pipe).delete_cache == (600, app.FILE_MAX_AGE_S)  # Gradio's own upload cache too
