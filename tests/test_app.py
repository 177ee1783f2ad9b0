"""The Gradio app, launched for real: the API through gradio_client, and a real Chromium via Playwright."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import numpy as np
import pytest

from conftest import MEAD, RAVDESS, ROOT, ffmpeg

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--use-fake-device-for-media-stream",
                 "--use-fake-ui-for-media-stream"]
VERDICT_DONE = ("() => { const h = document.querySelector('#verdict h2'); "
                "return h && /from |No answer|⚠|disagree/.test(h.innerText) }")
DOWNLOADS_READY = "() => { const d = document.querySelector('#downloads'); return d && d.innerText.includes('.csv') }"
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(pipe, tmp_path_factory):
    import app

    os.environ["GRADIO_EXAMPLES_CACHE"] = str(tmp_path_factory.mktemp("examples-cache"))  # not in the repo
    demo = app.build_app(pipe, examples_dir=app.SHIPPED_EXAMPLES)  # what a fresh Space shows
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **app.launch_options())
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


def open_page(browser, app_url, **context):
    ctx = browser.new_context(permissions=["camera", "microphone"], **context)
    pg = ctx.new_page()
    pg.goto(app_url, wait_until="load")
    pg.wait_for_selector("#analyze", timeout=60000)
    pg.wait_for_timeout(500)
    return ctx, pg


@pytest.fixture
def page(browser, app_url):
    ctx, pg = open_page(browser, app_url, viewport={"width": 1280, "height": 1000})
    yield pg
    ctx.close()


@pytest.fixture
def phone(browser, app_url):
    ctx, pg = open_page(browser, app_url, **PHONE)
    yield pg
    ctx.close()


@pytest.fixture(scope="module")
def conflicting_clip(tmp_path_factory) -> Path:
    """A real smiling face (MEAD) with a real angry voice (RAVDESS) for its sound: voice and face conflict."""
    out = tmp_path_factory.mktemp("conflict") / "happy_face_angry_voice.mp4"
    ffmpeg("-i", str(MEAD / "W009_front_happy_level3_001.mp4"), "-i", str(RAVDESS / "Actor_02" / "03-01-05-02-01-01-02.flac"),
           "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-shortest", str(out))
    return out


def visible(page, selector: str) -> bool:
    return page.locator(selector).count() > 0 and page.locator(selector).first.is_visible()


def analyze(page, clip: Path, timeout_ms: int = 120000) -> str:
    page.set_input_files("#clip input[type=file]", str(clip))
    page.wait_for_selector("#clip video", timeout=30000)
    page.click("#analyze")
    page.wait_for_function(VERDICT_DONE, timeout=timeout_ms)
    page.wait_for_timeout(300)  # the other outputs render with the verdict
    return page.inner_text("#verdict h2")


def test_api_with_gradio_client(app_url):
    from gradio_client import Client, handle_file

    client = Client(app_url, verbose=False)
    result = client.predict(video=handle_file(str(MEAD / "M030_sad_eamm1.mp4")), api_name="/predict")
    assert result["modalities"] == ["audio", "face"]
    assert result["label"] in result["fused"]
    assert sum(result["fused"].values()) == pytest.approx(1, abs=1e-3)
    bad = client.predict(video=handle_file(str(ROOT / "weights" / "config.json")), api_name="/predict")
    assert bad["code"] == "not_media" and "not a video or audio file" in bad["error"]
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    outputs = [r["label"] for r in api["/analyze"]["returns"]]
    assert not any(o.startswith("value_") for o in outputs) and "verdict" in outputs, outputs
    assert "disagreement" in api["/predict"]["description"]  # its JSON fields are documented where Gradio shows them


def call(url: str, api_name: str, data: list) -> tuple[str, object]:
    """A raw call through Gradio's REST route, as curl would make it: (event, parsed data of the last message)."""
    import json
    import urllib.request

    req = urllib.request.Request(url + f"gradio_api/call/{api_name}", data=json.dumps({"data": data}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        event_id = json.loads(r.read())["event_id"]
    with urllib.request.urlopen(url + f"gradio_api/call/{api_name}/{event_id}", timeout=120) as r:
        lines = r.read().decode().splitlines()
    event = [x[len("event: "):] for x in lines if x.startswith("event: ")][-1]
    return event, json.loads([x[len("data: "):] for x in lines if x.startswith("data: ")][-1])


def test_a_malformed_call_gets_a_coded_error_and_the_gradio_4_shape_is_read(app_url):
    clip = MEAD / "M030_sad_eamm1.mp4"
    not_a_file = "The video must be sent as a file"
    for data in ([12345], [str(clip)], [{"path": str(clip), "meta": {"_type": "gradio.FileData"}}], [None, 1, 2]):
        event, out = call(app_url, "predict", data)
        assert event == "complete" and out[0]["code"] in ("bad_request", "no_input"), (data, out)
        assert out[0]["error"], (data, out)  # a sentence, never null
    assert not_a_file in call(app_url, "predict", [str(clip)])[1][0]["error"]  # a server path is never read
    event, out = call(app_url, "analyze", ["https://example.com/clip.mp4"])
    assert event == "complete" and not_a_file in out[0]  # the verdict says it in words
    status, paths = upload(app_url, (clip.name, clip.read_bytes()))
    assert status == 200
    gradio_4 = {"video": {"path": paths[0], "orig_name": clip.name, "meta": {"_type": "gradio.FileData"}},
                "subtitles": None}
    event, out = call(app_url, "predict", [gradio_4])
    assert event == "complete" and out[0]["modalities"] == ["audio", "face"], out


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


def test_before_the_first_run_there_are_no_empty_plots_and_the_limits_are_stated(page):
    for sel in ("#prob-plot", "#face-why", "#voice-why", "#top3", "#downloads"):
        assert not visible(page, sel), sel
    limits = page.inner_text("#limits")
    assert "5 min" in limits and "flv" in limits and "200MB" in limits
    examples = page.inner_text("#examples")  # the six CREMA-D clips that ship (CREMA-D has no surprise)
    labels = page.locator("#examples button").all_inner_texts()
    assert len(labels) == 6 and not any(x.rstrip().endswith(("...", "…")) for x in labels), labels  # whole captions
    assert all(e in examples for e in ("happy", "sad", "angry", "fearful", "disgust", "neutral")), examples
    assert "Don't forget a jacket" in examples
    assert "CREMA-D" in page.inner_text("#examples-credit") and "Open Database License" in page.inner_text("#examples-credit")


# Records the progress text over the verdict (its clock removed) each time it changes: [ms, text].
PROGRESS_LOG = """() => { window.progressLog = []; const t0 = performance.now(); setInterval(() => {
  const s = document.querySelector('#verdict [data-testid=status-tracker]');
  const text = s ? s.innerText.replace(/[\\d.]+s(\\s*\\/\\s*[\\d.]+s)?/g, '').trim() : '';
  const last = window.progressLog[window.progressLog.length - 1];
  if (!last || last[1] !== text) window.progressLog.push([performance.now() - t0, text]); }, 100); }"""


def test_the_plot_library_is_loaded_while_the_visitor_picks_a_clip(page):
    # fetched after the answer, it held the plots back ~1.5 s (bench/long_why.py); Gradio's own import reuses it
    page.wait_for_function("() => performance.getEntriesByType('resource').some(e => /PlotlyPlot-/.test(e.name))",
                           timeout=20000)
    assert page.locator(".js-plotly-plot").count() == 0  # nothing drawn yet: only the library came ahead


def test_a_90_s_clips_progress_keeps_moving_to_its_why(page, tmp_path):
    clip = tmp_path / "ninety.mp4"
    ffmpeg("-stream_loop", "-1", "-i", str(MEAD / "M030_sad_eamm1.mp4"), "-t", "90", "-vf", "scale=-2:360",
           "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", str(clip))
    page.set_input_files("#clip input[type=file]", str(clip))
    page.wait_for_selector("#clip video", timeout=30000)
    page.evaluate(PROGRESS_LOG)
    page.click("#analyze")
    page.wait_for_function("() => /Listening|Following/.test(document.querySelector('#verdict').innerText)")
    assert "press Analyze" not in page.inner_text("#verdict")  # the progress is not drawn over the old hint
    page.wait_for_function(VERDICT_DONE, timeout=180000)
    page.wait_for_selector("#voice-why .js-plotly-plot", timeout=30000)  # the "why" is drawn
    log = page.evaluate("window.progressLog")
    moving = [t for t, text in log if text]  # from the first progress text to the last
    # at least 10 steps (19-30 on 2-core machines), never 2 s apart
    assert len(moving) >= 10 and np.diff(moving).max() <= 2000, [x for x in log if x[1]]
    assert any("Explaining" in text for _, text in log) and log[-1][1] == ""  # through the "why", then done
    # (what the "why" costs beside /predict is a figure: python bench/long_why.py)


def test_upload_and_analyze_in_chromium(page, artifacts):
    verdict = analyze(page, MEAD / "M030_sad_eamm1.mp4")
    assert "from voice and face" in verdict
    page.wait_for_selector("#top3", state="visible", timeout=10000)
    assert "%" in page.inner_text("#top3")
    page.wait_for_selector("#prob-plot .js-plotly-plot", timeout=30000)
    assert page.locator("#prob-plot .js-plotly-plot .bars path").count() >= 12  # voice, face and both bars
    assert page.locator("#face-why .js-plotly-plot").count() == 1
    assert page.locator("#voice-why .js-plotly-plot").count() == 1
    import re

    label = (re.search(r"maybe (\w+)", verdict) or re.search(r"^\S+ (\w+) \(", verdict)).group(1).lower()
    assert f"explains {label}" in page.inner_text("#face-words")  # the face plot explains the verdict
    assert "semitones" in page.inner_text("#voice-words")  # the voice, in words
    details = page.inner_text("#details")
    assert "voice + " in details and "face" in details.split("voice + ")[1] and "Face visible in 100%" in details
    page.wait_for_function(DOWNLOADS_READY, timeout=30000)
    downloads = page.inner_text("#downloads")
    assert "M030_sad_eamm1.emotion" in downloads and ".json" in downloads
    assert ".png" in downloads  # verdict and plots as one picture, to keep or share
    page.wait_for_timeout(1000)
    page.screenshot(path=str(artifacts / "app_upload.png"), full_page=True)


def test_conflicting_voice_and_face_give_a_disagreement_verdict(page, conflicting_clip, artifacts):
    verdict = analyze(page, conflicting_clip)
    assert verdict.startswith("⚖️ Voice and face disagree: the voice sounds angry"), verdict
    assert "the face looks happy" in verdict
    page.wait_for_function(DOWNLOADS_READY, timeout=30000)
    page.screenshot(path=str(artifacts / "app_disagreement.png"), full_page=True)


def test_an_example_click_shows_its_cached_answer_at_once(page):
    import time

    page.locator("#examples button", has_text="sad").first.click()
    started = time.monotonic()
    page.wait_for_function(VERDICT_DONE, timeout=10000)
    assert time.monotonic() - started < 5  # computed when the app started, not now
    assert "from voice and face" in page.inner_text("#verdict h2")
    page.wait_for_selector("#clip video", timeout=10000)  # the clip itself is shown too
    assert visible(page, "#prob-plot")


def test_a_new_clip_or_clear_removes_the_old_result(page):
    cleared = "() => /Upload or record/.test(document.querySelector('#verdict').innerText)"
    analyze(page, MEAD / "W009_front_happy_level3_001.mp4")
    assert visible(page, "#prob-plot")
    page.click("#clip button[aria-label='Upload file']")  # another clip, through the player's own upload button
    page.wait_for_selector("#clip input[type=file]", state="attached", timeout=10000)
    page.set_input_files("#clip input[type=file]", str(MEAD / "W011_front_sad_level3_001.mp4"))
    page.wait_for_selector("#clip video", timeout=30000)
    page.wait_for_function(cleared, timeout=10000)
    assert not visible(page, "#prob-plot") and not visible(page, "#top3") and not visible(page, "#downloads")
    page.click("#analyze")
    page.wait_for_function(VERDICT_DONE, timeout=120000)
    page.click("#clip button[aria-label='Clear']")  # the player's ×
    page.wait_for_function(cleared, timeout=10000)
    assert not visible(page, "#prob-plot")
    analyze(page, MEAD / "W011_front_sad_level3_001.mp4")
    page.click("#clear")  # the Clear button
    page.wait_for_function(cleared, timeout=10000)
    assert not visible(page, "#prob-plot") and page.locator("#clip video").count() == 0


def test_an_flv_upload_gets_a_playable_preview_and_the_original_is_analysed(page, tmp_path):
    flv = tmp_path / "interview.flv"
    ffmpeg("-i", str(MEAD / "M030_sad_eamm1.mp4"), "-c:v", "flv", "-c:a", "mp3", str(flv))
    page.set_input_files("#clip input[type=file]", str(flv))
    page.wait_for_function("() => { const v = document.querySelector('#clip video'); "
                           "return v && v.src.includes('.preview.mp4') && v.readyState >= 2 }", timeout=60000)
    page.wait_for_timeout(1000)
    assert page.locator(".toast-body").count() == 0, page.locator(".toast-body").all_inner_texts()
    page.click("#analyze")
    page.wait_for_timeout(200)
    assert page.is_disabled("#analyze")  # no second job queued by impatient clicks
    page.wait_for_function(VERDICT_DONE, timeout=120000)
    assert "from voice and face" in page.inner_text("#verdict h2")
    page.wait_for_function(DOWNLOADS_READY, timeout=30000)
    downloads = page.inner_text("#downloads")
    assert "interview.emotion" in downloads and "preview" not in downloads  # the upload was analysed, not the preview
    # the button comes back once the job's last event (the unlock) has run, a moment after the outputs
    page.wait_for_function("() => !document.querySelector('#analyze').disabled", timeout=15000)


def test_on_a_phone_the_verdict_is_in_view_after_analyze(phone, artifacts):
    verdict = analyze(phone, MEAD / "M030_sad_eamm1.mp4")
    assert "from voice and face" in verdict
    phone.wait_for_timeout(1500)
    box = phone.locator("#verdict").bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 844, box
    phone.screenshot(path=str(artifacts / "app_phone.png"))


def test_on_a_phone_a_second_example_click_brings_its_verdict_into_view(phone):
    """Last round the second example's verdict changed 1,375 px above the screen."""
    phone.locator("#examples button", has_text="sad").first.click()
    phone.wait_for_function(VERDICT_DONE, timeout=10000)
    first = phone.inner_text("#verdict h2")
    phone.locator("#examples button", has_text="happy").first.scroll_into_view_if_needed()  # a verdict unlike sad's
    phone.locator("#examples button", has_text="happy").first.click()
    phone.wait_for_function(f"() => document.querySelector('#verdict h2').innerText !== {first!r}", timeout=10000)
    phone.wait_for_timeout(1500)  # the smooth scroll
    box = phone.locator("#verdict").bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 844, box


def test_webcam_recording_gives_a_result_or_a_plain_warning(page, artifacts):
    page.click("#clip button[aria-label='Capture from camera']")
    page.click("#clip button:has-text('Click to Access Webcam')")
    page.click("#clip button[aria-label='start recording']")
    page.wait_for_timeout(2000)
    first = page.inner_text("#rec-timer")  # the visitor sees how long the recording runs, and the limit
    page.wait_for_timeout(1500)
    second = page.inner_text("#rec-timer")
    assert re.fullmatch(r"● 0:0\d of up to 5:00", first) and second > first, (first, second)
    page.click("#clip button:has-text('Stop')")
    page.wait_for_selector("#clip video[src]", timeout=30000)
    # the recording is remuxed so that the player knows its length (not "0:00 / Infinity:NaN:NaN")
    page.wait_for_function("() => { const v = document.querySelector('#clip video'); "
                           "return v && v.src.includes('.preview.webm') && isFinite(v.duration) }", timeout=30000)
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
    # The player's own "Video not playable" is dismissed (the verdict says it in words); no other error box.
    page.wait_for_timeout(500)
    assert page.locator(".toast-body").count() == 0, page.locator(".toast-body").all_inner_texts()


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
    first = app.write_downloads(pred, pipe.cfg.emotions)
    assert [Path(p).suffix for p in first] == [".json", ".csv", ".png"] and all(Path(p).is_file() for p in first)
    old = time.time() - app.FILE_MAX_AGE_S - 60
    os.utime(Path(first[0]).parent, (old, old))
    second = app.write_downloads(pred, pipe.cfg.emotions)
    assert not Path(first[0]).parent.exists()  # past its age: gone
    import csv

    row = next(csv.DictReader(open(second[1])))  # the one export format of the CLI and batch
    assert row["label"] == pred.label and float(row["fused_happy"]) == pytest.approx(pred.fused["happy"], abs=1e-6)
    assert row["not_sure"] == str(pred.not_sure) and row["modalities"] == "face"
    assert app.download_stem("sample.webm").startswith("webcam-") and app.download_stem("my clip.mp4") == "my clip"
    assert all(Path(p).is_file() for p in second)
    assert app.build_app(pipe).delete_cache == (600, app.FILE_MAX_AGE_S)  # Gradio's own upload cache too


# -- one cap on heavy work for the whole app; one limit on what an upload request holds ---------------------

class CountingPipe:
    """The real pipeline, counting how many analyses (and previews) run at once; each holds on a little so that
    overlapping requests really overlap."""

    def __init__(self, pipe) -> None:
        import threading

        self.pipe, self.now, self.most, self.lock = pipe, 0, 0, threading.Lock()

    def __getattr__(self, name):
        return getattr(self.pipe, name)

    def busy(self, work):
        import time

        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            time.sleep(1.5)
            return work()
        finally:
            with self.lock:
                self.now -= 1

    def predict(self, *args, **kwargs):
        return self.busy(lambda: self.pipe.predict(*args, **kwargs))


@pytest.fixture(scope="module")
def capped(pipe, tmp_path_factory):
    """An app with EMOTION_MAX_UPLOAD=1mb whose pipeline and preview count concurrent work."""
    import app

    counting = CountingPipe(pipe)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(app, "MAX_UPLOAD", "1mb")
        real_preview = app.browser_preview
        mp.setattr(app, "browser_preview", lambda *a, **k: counting.busy(lambda: real_preview(*a, **k)))
        demo = app.build_app(counting)
        port = free_port()
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                    **app.launch_options())
        flv = tmp_path_factory.mktemp("flv") / "clip.flv"
        ffmpeg("-i", str(MEAD / "W011_front_sad_level3_001.mp4"), "-t", "2", "-c:v", "flv1", "-an", str(flv))
        yield f"http://127.0.0.1:{port}/", counting, demo, flv
        demo.close()


def upload(url: str, *files: tuple[str, bytes]):
    """POST files to Gradio's upload route as a browser would (multipart); (status, parsed JSON body)."""
    import http.client
    import json
    import urllib.parse
    import uuid

    boundary = uuid.uuid4().hex
    body = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
                    f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n" for name, data in files)
    body += f"--{boundary}--\r\n".encode()
    where = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(where.hostname, where.port, timeout=60)
    conn.putrequest("POST", where.path + "gradio_api/upload")
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    try:
        conn.send(body)
    except (BrokenPipeError, ConnectionResetError):
        pass  # refused from its headers, before the body was read (as a browser does, read that answer)
    with conn.getresponse() as r:
        return r.status, json.loads(r.read() or b"null")


def test_several_files_in_one_upload_request_are_refused_as_a_whole(capped):
    url = capped[0]
    status, paths = upload(url, ("a.mp4", bytes(600_000)))
    assert status == 200 and len(paths) == 1
    status, body = upload(url, *[(f"{i}.mp4", bytes(600_000)) for i in range(4)])  # each under the 1 MB limit
    assert status == 413 and body["code"] == "too_large" and "1MB in all" in body["error"]


def test_four_requests_to_three_endpoints_never_run_more_analyses_than_the_cap(capped):
    """Two /predict, one /analyze and the hidden preview event (joined through the raw queue, as a hostile
    client can) at once: never more than EMOTION_CONCURRENCY (2) at work."""
    import json
    import threading
    import urllib.request

    import app
    from gradio_client import Client, handle_file

    url, counting, demo, flv = capped
    clip = str(MEAD / "W009_front_happy_level3_001.mp4")
    preview_fn = next(i for i, fn in demo.fns.items() if getattr(fn.fn, "__name__", "") == "make_preview")
    _, [uploaded] = upload(url, ("clip.flv", flv.read_bytes()))
    results: dict[str, object] = {}

    def predict(name):
        results[name] = Client(url, verbose=False).predict(video=handle_file(clip), api_name="/predict")

    def analyze():
        results["analyze"] = Client(url, verbose=False).predict(video=handle_file(clip),
                                                                api_name="/analyze")[0]

    def preview():
        payload = {"data": [{"path": uploaded, "meta": {"_type": "gradio.FileData"}}], "fn_index": preview_fn,
                   "session_hash": "hostile", "event_data": None, "trigger_id": None}
        req = urllib.request.Request(url + "gradio_api/queue/join", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=30).read()
        with urllib.request.urlopen(url + "gradio_api/queue/data?session_hash=hostile", timeout=120) as r:
            results["preview"] = r.read().decode()

    counting.most = 0
    threads = [threading.Thread(target=t, args=a) for t, a in
               ((predict, ("p1",)), (predict, ("p2",)), (analyze, ()), (preview, ()))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert app.CONCURRENCY == 2 and counting.most == 2, counting.most
    assert results["p1"]["label"] and results["p2"]["label"] and "from" in results["analyze"]
    assert "process_completed" in results["preview"]


def test_the_page_needs_only_the_config_and_a_failed_model_load_is_said_in_words(tmp_path):
    import shutil

    import app
    from emotion.errors import EmotionError

    weights = tmp_path / "weights"
    shutil.copytree(ROOT / "weights", weights)
    (weights / "voice_encoder_head.safetensors").write_bytes(b"not a model")
    pipe = app.LoadingPipeline(str(weights))  # as `python app.py` starts
    assert pipe.cfg.emotions and Path(pipe.weights_dir) == weights  # at once, from config.json
    app.build_app(pipe, "", cache_examples=False)  # the page is built without waiting for the models
    with pytest.raises(EmotionError) as err:
        pipe.predict(MEAD / "M030_sad_eamm1.mp4")  # waits for the load, then says why it failed
    assert pipe.ready and err.value.code == "bad_weights", err.value
    assert "Traceback" not in str(app.as_user_error(err.value))


def test_the_shipped_examples_are_one_clip_per_answer_with_their_licence():
    import app

    seven = ["happy", "sad", "angry", "fearful", "disgust", "surprised", "neutral"]
    found = app.example_clips(app.SHIPPED_EXAMPLES, seven)
    assert [e.emotion for e in found] == ["happy", "sad", "angry", "fearful", "disgust", "neutral"]
    assert all(Path(e.path).is_file() and "CREMA-D actor 1001" in e.caption for e in found)
    assert [e.emotion for e in app.example_clips(app.SHIPPED_EXAMPLES, seven[:6])] == seven[:5]  # six-class weights
    assert "Open Database License" in (app.SHIPPED_EXAMPLES / "LICENSE.txt").read_text()
