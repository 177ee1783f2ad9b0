"""Live mode (issue #29): emotion.live on a real MEAD clip fed frame by frame, and the Live tab in a real Chromium
whose fake camera and microphone play that clip."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import MEAD, ffmpeg

SPEAKING = MEAD / "M030_sad_eamm1.mp4"  # a sad face and a sad voice, 3.7 s
SAD = re.compile(r"^\W*(Sad \(|Not sure — maybe sad)", re.M)  # the clip's emotion, as the answer or first guess


@pytest.fixture(scope="module")
def clip_frames():
    import cv2

    cap = cv2.VideoCapture(str(SPEAKING))
    fps, frames = cap.get(cv2.CAP_PROP_FPS), []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(np.ascontiguousarray(bgr[:, :, ::-1]))
    cap.release()
    return fps, frames


@pytest.fixture(scope="module")
def clip_sound():
    from emotion.media import load_audio

    return load_audio(SPEAKING, 48000)


def play(session, clock, fps, frames, sound=None, seconds=None, rate=5.0, every=1):
    """Feed the clip to `session` as a browser would: `rate` frames a second (looping), sound in 0.6 s chunks;
    an update after every `every` frames. Returns the updates."""
    seconds = seconds or len(frames) / fps
    updates, t, k, sent = [], 0.0, 0, 0.0
    while t < seconds:
        clock[0] = t
        session.add_frame(frames[int(t * fps) % len(frames)])
        if sound is not None and t - sent >= 0.6:
            a, b = int(sent * 48000) % sound.size, int(t * 48000) % sound.size
            session.add_audio(sound[a:b] if b > a else sound[a:], 48000)
            sent = t
        if k % every == 0:
            updates.append(session.update())
        t, k = t + 1 / rate, k + 1
    return updates


def test_a_live_session_reads_the_clip_as_an_upload_does(pipe, clip_frames, clip_sound):
    from emotion.live import LiveSession

    fps, frames = clip_frames
    clock = [0.0]
    session = LiveSession(pipe, clock=lambda: clock[0])
    try:
        updates = play(session, clock, fps, frames, clip_sound)
        first_second = [u for u in updates if u.t_s <= 1.0]
        assert first_second and all(u.prediction.face for u in first_second)
        assert first_second[-1].prediction.label == "sad", first_second[-1].prediction.verdict
        assert updates[-1].using == "voice and face" and updates[-1].prediction.label == "sad"
        summary = session.summary()
        upload = pipe.predict(SPEAKING)
        assert summary.label == upload.label == "sad"
        assert summary.modalities == upload.modalities == ["audio", "face"]
        assert summary.face == pytest.approx(upload.face, abs=0.15)  # 5 frames a second against the file's 25
    finally:
        session.close()


def test_live_without_a_microphone_says_face_only_and_without_a_camera_voice_only(pipe, clip_frames, clip_sound):
    from emotion.live import LiveSession

    fps, frames = clip_frames
    clock = [0.0]
    face_only = LiveSession(pipe, clock=lambda: clock[0])
    updates = play(face_only, clock, fps, frames, seconds=2.0)
    assert updates[-1].using == "face only — microphone off"
    assert updates[-1].prediction.modalities == ["face"] and "face only" in updates[-1].prediction.verdict
    face_only.close()

    clock = [0.0]
    voice_only = LiveSession(pipe, clock=lambda: clock[0])
    for t in np.arange(0.6, 3.7, 0.6):
        clock[0] = float(t)
        voice_only.add_audio(clip_sound[int((t - 0.6) * 48000):int(t * 48000)], 48000)
    now = voice_only.update()
    assert now.using == "voice only — camera off" and now.prediction.modalities == ["audio"], now.using
    summary = voice_only.summary()
    assert summary.modalities == ["audio"] and any("camera was off" in w for w in summary.warnings)
    voice_only.close()


def test_a_live_session_keeps_little_and_stops_at_its_time_limit(pipe, clip_frames):
    """Per frame only its face reading is kept (52 blendshapes + 7 appearance scores), never the picture; past
    `max_s` frames are ignored and the summary still answers."""
    from emotion.live import LiveSession

    fps, frames = clip_frames
    clock = [0.0]
    session = LiveSession(pipe, max_s=3.0, clock=lambda: clock[0])
    play(session, clock, fps, frames, seconds=5.0, rate=10.0, every=5)
    assert session.expired and session.frames_seen == 30  # 3 s at 10 frames a second, none after
    kept = [f for f in session._faces if f is not None]
    assert kept and all(f.nbytes <= 4 * len(pipe.cfg.face_feature_names) for f in kept)
    assert session.summary(explain=False).label == "sad"
    session.close()
    assert session._faces == [] and session._tracker is None


def test_live_sessions_are_capped_and_idle_ones_freed(pipe):
    from emotion.live import LiveSessions

    sessions = LiveSessions(pipe, cap=1, idle_s=0.2)
    first = sessions.get("a")
    assert first is not None and sessions.get("a") is first
    assert sessions.get("b") is None  # the cap: a second visitor is told to wait
    time.sleep(0.3)
    second = sessions.get("b")  # "a" went quiet (a closed tab): its place is given
    assert second is not None and first.closed and len(sessions) == 1
    assert sessions.end("b") is second and len(sessions) == 0


# -- the Live tab in Chromium --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fake_devices(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("fake-devices")
    video, sound = folder / "sad.y4m", folder / "sad.wav"
    ffmpeg("-i", str(SPEAKING), "-vf", "scale=480:-2,fps=15", "-pix_fmt", "yuv420p", str(video))
    ffmpeg("-i", str(SPEAKING), "-vn", "-ac", "1", "-ar", "48000", str(sound))
    return video, sound


@pytest.fixture(scope="module")
def live_url(pipe):
    import app
    from test_app import free_port

    demo = app.build_app(pipe, examples_dir="", cache_examples=False)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **app.launch_options())
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def live_browser(fake_devices):
    from playwright.sync_api import sync_playwright

    from test_app import CHROMIUM, CHROMIUM_ARGS

    video, sound = fake_devices
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + [
            f"--use-file-for-fake-video-capture={video}", f"--use-file-for-fake-audio-capture={sound}"])
        yield b
        b.close()


DENY_MICROPHONE = """(() => { const ask = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = c => (c && c.audio && !c.video)
    ? Promise.reject(new DOMException('Permission denied', 'NotAllowedError')) : ask(c); })()"""


def start_live(browser, url, permissions, microphone: bool):
    ctx = browser.new_context(permissions=permissions, viewport={"width": 1280, "height": 1000})
    if "microphone" not in permissions:  # Chromium's fake-device flags grant everything: refuse it as a user would
        ctx.add_init_script(DENY_MICROPHONE)
    page = ctx.new_page()
    page.goto(url, wait_until="load")
    page.wait_for_selector("#analyze", timeout=60000)
    page.click("button[role=tab]:has-text('Live')")
    page.click("#live-camera button:has-text('Click to Access Webcam')")
    page.wait_for_selector("#live-camera button[aria-label='capture photo']", timeout=20000)
    if microphone:
        page.click("#live-mic button:has-text('Record')")
    started = time.monotonic()
    page.click("#live-camera button[aria-label='capture photo']")
    return ctx, page, started


def watch(page, seconds: float) -> list[tuple[float, str]]:
    """(time, text) each time the live answer's text changed."""
    seen: list[tuple[float, str]] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        text = page.inner_text("#live-verdict") + " | " + page.inner_text("#live-using")
        if not seen or seen[-1][1] != text:
            seen.append((time.monotonic(), text))
        page.wait_for_timeout(50)
    return seen


def test_the_live_tab_follows_the_face_and_voice_and_stop_gives_a_summary(live_browser, live_url):
    ctx, page, started = start_live(live_browser, live_url, ["camera", "microphone"], microphone=True)
    try:
        seen = watch(page, 9.0)
        first_sad = next(t for t, text in seen if SAD.search(text)) - started
        assert first_sad <= 2.0, seen[:5]
        steady = [t for t, text in seen if t - started >= 3.0 and re.search(r"at \d+\.\d s", text)]
        per_second = (len(steady) - 1) / (steady[-1] - steady[0])
        assert per_second >= 2.0, per_second
        assert any("voice and face" in text for _, text in seen), seen[-3:]  # the fake microphone's speech
        page.click("#live-stop")
        page.wait_for_function("() => { const h = document.querySelector('#live-summary-verdict h2'); "
                               "return h && /from |disagree|⚠/.test(h.innerText) }", timeout=60000)
        page.wait_for_selector("#live-timeline-plot .js-plotly-plot", timeout=20000)  # ~9 s: windows on a timeline
        assert ".csv" in page.inner_text("#live-downloads")
        assert "Turn on the camera" in page.inner_text("#live-verdict")  # the session is over
        shots = os.environ.get("EMOTION_TEST_ARTIFACTS")
        if shots:
            page.screenshot(path=str(Path(shots) / "app_live.png"), full_page=True)
    finally:
        ctx.close()


def test_with_the_microphone_denied_live_mode_says_face_only(live_browser, live_url):
    ctx, page, _ = start_live(live_browser, live_url, ["camera"], microphone=True)  # the browser refuses it
    try:
        seen = watch(page, 3.0)
        assert any("face only — microphone off" in text and SAD.search(text) for _, text in seen), seen[-3:]
        page.click("#live-stop")
    finally:
        ctx.close()
