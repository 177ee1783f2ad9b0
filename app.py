"""Gradio demo: upload or record a short video, see the emotion from the voice, the face and both.

Presentation only: every decision is made by emotion.EmotionPipeline.
    python app.py                      # http://127.0.0.1:7860, with the shipped examples (examples/)
    EMOTION_EXAMPLES_DIR=clips/ python app.py    # your own examples ("" for none)
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import gradio as gr

from emotion.errors import EmotionError, as_emotion_error
from emotion.explain import face_figure, face_words, voice_figure
from emotion.labels import EMOTION_EMOJI
from emotion.media import Limits
from emotion.names import display_name
from emotion.plots import probability_figure, result_image, timeline_figure

VIDEO_EXT = {".mp4", ".webm", ".mov", ".avi", ".mkv", ".flv"}
MAX_UPLOAD = os.environ.get("EMOTION_MAX_UPLOAD", "200mb")
MAX_DURATION_S = float(os.environ.get("EMOTION_MAX_DURATION_S", "300"))
# One cap on heavy work for the whole app: /analyze, /predict and the browser preview share it (a cap per
# endpoint let two visitors run four decodes at once).
CONCURRENCY = int(os.environ.get("EMOTION_CONCURRENCY", "2"))
HEAVY = {"concurrency_id": "analysis", "concurrency_limit": CONCURRENCY}
PUBLIC_ENDPOINTS = {"analyze", "predict"}  # the API names a client may call
# Uploads and results are deleted an hour after they were made (checked every 10 minutes): a public
# demo must not fill its disk.
FILE_MAX_AGE_S = int(os.environ.get("EMOTION_FILE_MAX_AGE_S", "3600"))
RESULTS_DIR = Path(tempfile.gettempdir()) / "emotion-results"
# Six CREMA-D clips whose licence lets them ship (ODbL / DbCL, with the attribution shown under them)
SHIPPED_EXAMPLES = Path(__file__).resolve().parent / "examples"

INTRO = """# 🎭 What emotion does this clip show?
Upload a short video of someone speaking, or record one with your webcam, and press **Analyze** — or open
**Live** to see the answer follow your face and voice. The voice and the face are judged separately, then
together: {answers}."""
HOW_IT_WORKS = """**How it works.** The sound is cut to speech (a voice-activity detector) and read by a
pretrained speech encoder (Whisper-base) and a small network on top of it; the face is followed frame by frame (MediaPipe's 52 face movements plus a pretrained
expression network) and read by a recurrent network; a third small network combines the two. Every confidence
shown is calibrated on corpora (languages, studios, people) the models never learnt from, so "Not sure" and
"Voice and face disagree" are said when the evidence is weak or conflicting.

**Limits.** Trained on actors posing emotions in studios (a few dozen people): real, subtle or mixed feelings,
children, strong accents, noisy rooms and faces in profile are read less well. It recognises expressions, not
what anybody feels inside: a demo, never a diagnosis, and not for decisions about people."""
# How people spell the emotions in file names and captions (besides the weights' own names).
EMOTION_WORDS = {"fear": "fearful", "afraid": "fearful", "disgusted": "disgust",
                 "surprise": "surprised", "anger": "angry", "happiness": "happy", "sadness": "sad"}
AUDIO_EXT = {".wav", ".mp3", ".m4a", ".flac", ".ogg", ".aac", ".opus"}
PREVIEW_EXT = {".flv", ".avi", ".mkv", ".wmv", ".mpg", ".mpeg", ".3gp", ".ts", ".mov", ".mts", ".m2ts"}


BROWSER_PLAYABLE = {"mp4": {"h264", "av1", "vp9"}, "mov": {"h264"}, "webm": {"vp8", "vp9", "av1"}}
# A preview is for recognising the clip, not for analysis: short and cheap (it shares the app's cap on heavy work).
PREVIEW_MAX_S = 30.0
PREVIEW_HEIGHT = 360


def browser_preview(path: str | Path, folder: str | Path, limits: Limits | None = None) -> str | None:
    """A small H.264 mp4 of the first 30 s, for a browser that cannot play the upload (flv, avi, mkv, some
    mov), or a browser recording remuxed to carry its length; None when the upload plays as it is or has no
    picture. Only the preview is converted: analysis
    always reads the original. Fenced like every other ffmpeg call."""
    from emotion.media import decode_budget_s, ffmpeg_input, probe, run_ffmpeg

    info = probe(path, limits=limits)
    if not info.has_video:
        return None
    container = next((c for c in BROWSER_PLAYABLE if c in info.format_name.split(",")), None)
    suffix_ok = Path(path).suffix.lower() in (".mp4", ".m4v", ".mov", ".webm")
    playable = container and suffix_ok and info.video_codec in BROWSER_PLAYABLE[container] and \
        (not info.has_audio or info.audio_codec in ("aac", "mp3", "opus", "vorbis"))
    if playable and info.header_duration_s is not None:
        return None
    if playable:  # a browser recording: playable, but without a length its player reads "Infinity:NaN:NaN"
        out = Path(folder) / f"{Path(path).stem[:80]}.preview.webm"
        seconds = limits.max_duration_s if limits else PREVIEW_MAX_S
        run_ffmpeg(["-v", "error", "-y", *ffmpeg_input(path, pictures=False), "-t", f"{seconds + 1:.3f}",
                    "-map", "0:V:0", "-map", "0:a:0?", "-c", "copy", str(out)],
                   decode_budget_s(seconds), f"Reading {display_name(path)}")
        return str(out) if out.is_file() and out.stat().st_size > 0 else None
    out = Path(folder) / f"{Path(path).stem[:80]}.preview.mp4"
    seconds = min(PREVIEW_MAX_S, info.duration_s or PREVIEW_MAX_S)
    run_ffmpeg(["-v", "error", "-y", *ffmpeg_input(path, info.decode_pixels), "-t", f"{seconds:.3f}", "-map", "0:V:0", "-map", "0:a:0?",
                "-vf", f"scale=-2:'min({PREVIEW_HEIGHT},ih)'", "-c:v", "libx264", "-preset", "ultrafast",
                "-crf", "28", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", "-movflags", "+faststart",
                str(out)], decode_budget_s(seconds), f"Making a preview of {display_name(path)}")
    return str(out) if out.is_file() and out.stat().st_size > 0 else None


def card_markdown(text: str) -> str:
    """The model card as a page shows it: without its YAML header (the Hub's metadata), which Markdown would
    render as a jumble of bullet points."""
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            return text[text.index("\n", end + 1) + 1:].lstrip("\n") if "\n" in text[end + 1:] else ""
    return text


def limits_text() -> str:
    return (f"Up to {MAX_DURATION_S / 60:g} min and {MAX_UPLOAD.upper()}: mp4, webm, mov, mkv, avi or flv video, or "
            "sound alone (wav, mp3, m4a, flac). Best with one clearly visible face and someone speaking.")


@dataclass
class Example:
    path: str
    emotion: str
    caption: str


def emotion_word(word: str, emotions: list[str]) -> str | None:
    """The weights' emotion a word names ("fear" → fearful), or None."""
    word = EMOTION_WORDS.get(word, word)
    return word if word in emotions else None


def emotion_in_name(name: str, emotions: list[str]) -> str | None:
    words = [w for w in re.split(r"[^a-z]+", name.lower()) if w]
    return next((e for e in (emotion_word(w, emotions) for w in words) if e), None)


def example_clips(folder: str | Path | None, emotions: list[str]) -> list[Example]:
    """One clip per emotion, in the order of the weights' `emotions`. From `examples.csv` in the folder (columns file, emotion,
    caption) if there is one, else from emotion words in the file names (clips with a sound track first)."""
    if not folder or not Path(folder).is_dir():
        return []
    folder = Path(folder)
    found: list[Example] = []
    listing = folder / "examples.csv"
    if listing.is_file():
        with listing.open(newline="") as f:
            for row in csv.DictReader(f):
                path = folder / row.get("file", "")
                emotion = emotion_word((row.get("emotion") or "").strip().lower(), emotions)
                if emotion and path.is_file():
                    found.append(Example(str(path), emotion, (row.get("caption") or path.stem).strip()))
    else:
        from emotion.media import probe

        clips = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXT)
        with_sound = {}
        for p in clips:
            with contextlib.suppress(Exception):
                with_sound[p] = probe(p).has_audio
        for p in sorted(clips, key=lambda p: (not with_sound.get(p, False), p.name)):
            emotion = emotion_in_name(p.stem, emotions)
            if emotion:
                found.append(Example(str(p), emotion, p.stem))
    first = {}
    for ex in found:
        first.setdefault(ex.emotion, ex)
    return [first[e] for e in emotions if e in first]


def playable_examples(examples: list[Example], limits: Limits) -> tuple[list[Example], dict[str, str]]:
    """The examples as a browser can show them: a clip it cannot play (the shipped CREMA-D FLVs) replaced by its
    small H.264 preview (browser_preview, made once at start-up), and {preview's file name: original} so that the
    analysis still reads the original, as for an upload."""
    folder = Path(tempfile.gettempdir()) / "emotion-examples"
    folder.mkdir(exist_ok=True)
    shown, original = [], {}
    for ex in examples:
        preview = None
        if Path(ex.path).suffix.lower() in PREVIEW_EXT:
            with contextlib.suppress(Exception):  # an unplayable example is still offered as it is
                preview = browser_preview(ex.path, folder, limits)
        if preview:
            original[Path(preview).name] = ex.path
        shown.append(Example(preview or ex.path, ex.emotion, ex.caption))
    return shown, original


def answers_in_words(emotions: list[str]) -> str:
    """"happy, sad or angry — or neutral when no emotion shows" (neutral is an answer, not an emotion)."""
    named = [e for e in emotions if e != "neutral"]
    text = ", ".join(named[:-1]) + (f" or {named[-1]}" if len(named) > 1 else "".join(named))
    return text + (" — or neutral, when no clear emotion shows" if "neutral" in emotions else "")


def details_markdown(pred) -> str:
    used = {"audio": "🎙️ voice", "face": "🙂 face"}
    lines = [f"**Used:** {' + '.join(used[m] for m in pred.modalities) or 'nothing'}  ·  "
             f"**Face visible in** {pred.face_coverage:.0%} of the frames  ·  **Length:** {pred.duration_s:.1f} s"]
    if pred.disagreement and pred.audio and pred.face:
        lines.append("- ⚖️ The two readings point to different emotions, both with real confidence, so no single "
                     "answer is given. Look at both below.")
    lines += [f"- ⚠️ {w}" for w in pred.warnings]
    return "\n".join(lines)


def verdict_markdown(pred) -> str:
    emoji = "⚖️" if pred.disagreement else "🤔" if pred.not_sure or not pred.label else EMOTION_EMOJI.get(pred.label, "")
    return f"## {emoji} {pred.verdict}"


WEBCAM_NAMES = {"sample", "recording", "webcam", "video", "blob", ""}  # what browsers call a webcam recording


def download_stem(file_name: str) -> str:
    """Downloads are named after the upload; a webcam recording gets webcam-<time>."""
    stem = Path(file_name).stem
    return f"webcam-{time.strftime('%Y%m%d-%H%M%S')}" if stem.lower() in WEBCAM_NAMES else stem


def write_downloads(pred, emotions: list[str]) -> list[str]:
    """The result as JSON, as CSV in the one export format of the CLI and batch (emotion.result: a row for the
    file; the windows of a long clip in a second file) and as a PNG (verdict and plots); in a fresh folder,
    results past their age removed."""
    from emotion.result import file_fields, file_row, timeline_fields, timeline_rows

    RESULTS_DIR.mkdir(exist_ok=True)
    for old in RESULTS_DIR.iterdir():
        with contextlib.suppress(OSError):
            if time.time() - old.stat().st_mtime > FILE_MAX_AGE_S:
                shutil.rmtree(old, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(dir=RESULTS_DIR))
    stem = download_stem(pred.file)
    json_path = folder / f"{stem}.emotion.json"
    json_path.write_text(json.dumps(pred.to_dict(), indent=1, ensure_ascii=False))
    paths = [str(json_path)]
    tables = [(folder / f"{stem}.emotion.csv", file_fields(emotions), [file_row(pred.file, pred)])]
    if pred.timeline:
        tables.append((folder / f"{stem}.emotion.timeline.csv", timeline_fields(emotions), timeline_rows(pred.file, pred)))
    for path, fields, rows in tables:
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(fields))
            writer.writeheader()
            writer.writerows({k: r.get(k) for k in fields} for r in rows)
        paths.append(str(path))
    if pred.label is not None or pred.disagreement:  # the answer as a picture, to keep or share
        paths.append(result_image(pred, str(folder / f"{stem}.emotion.png")))
    return paths


def every(seconds: float, progress) -> Callable[[float, str], None]:
    """The pipeline's progress for Gradio's bar, at most once per `seconds` unless the words change: each update
    is redrawn by the browser, which on a small machine takes CPU from the analysis."""
    last = {"at": 0.0, "words": None}

    def report(fraction: float, words: str) -> None:
        now, step = time.monotonic(), words.split(":")[0]
        if step != last["words"] or now - last["at"] >= seconds:
            last.update(at=now, words=step)
            progress(fraction, desc=words)

    return report


def as_user_error(exc: Exception) -> EmotionError:
    """The error as words for the visitor: an EmotionError as it is; anything else logged in full for the
    operator and shown as a plain sentence."""
    if not isinstance(exc, EmotionError):
        logging.getLogger("emotion.app").exception("unexpected error while analysing an upload")
    return as_emotion_error(exc)


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's malloc arenas. glibc gives each thread its own arena and keeps what it frees: across
    Gradio's worker threads the app's RSS crept up ~370 MB over 150 requests before levelling off
    (bench/app_memory.py); with two arenas it stays flat. A no-op where libc is not glibc."""
    m_arena_max = -8  # from glibc's malloc.h
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(m_arena_max, arenas)


CSS = """
#verdict { min-height: 4.5em; }
#clip { position: relative; }
#rec-timer { position: absolute; top: 44px; left: 8px; z-index: 20; padding: 2px 8px; border-radius: 4px;
             background: rgba(200, 0, 0, 0.85); color: white; font-weight: 600; font-size: 0.9em; }
#verdict h2 { margin: 0.2em 0; }
.js-plotly-plot .modebar-container { display: none !important; }  /* the toolbar covered titles on phones */
/* the live answer is redrawn several times a second: no "0.1s" timers flickering over it */
#live-verdict [data-testid=status-tracker], #live-using [data-testid=status-tracker],
#live-strip [data-testid=status-tracker] { display: none !important; }
#live-verdict { min-height: 4.5em; }
"""
# The browser's player says "Video not playable" for formats it cannot show (flv, avi, mkv) before the preview
# arrives, and for files that are not video at all, which the analysis then explains in words: that toast goes.
JS = r"""() => {
  const dismiss = () => document.querySelectorAll('.toast-body').forEach(t => {
    if (/Video not playable/.test(t.innerText)) { const c = t.querySelector('.toast-close'); c ? c.click() : t.remove(); }
  });
  new MutationObserver(dismiss).observe(document.body, {childList: true, subtree: true});
  // a click on an example changes the verdict: bring it into view (after a first result, the examples sit far below it),
  // and keep it there while the answer is drawn: the player and plots above it change height after the scroll
  // (for 3 s after each change of the verdict, at most 20 s after the click; the visitor scrolls freely after)
  document.addEventListener('click', e => {
    if (!e.target.closest || !e.target.closest('#examples')) return;
    const v = document.querySelector('#verdict');
    if (!v) return;
    const clicked = Date.now();
    let changed = clicked;
    const seen = new MutationObserver(() => { changed = Date.now(); });
    seen.observe(v, {childList: true, subtree: true, characterData: true});
    setTimeout(() => v.scrollIntoView({block: 'start', behavior: 'smooth'}), 300);
    const keep = setInterval(() => {
      const now = Date.now(), box = v.getBoundingClientRect();
      if (now - clicked > 20000) { clearInterval(keep); seen.disconnect(); return; }
      if (now - clicked > 1500 && now - changed < 3000 && (box.top < 0 || box.bottom > window.innerHeight))
        v.scrollIntoView({block: 'start'});
    }, 250);
  }, true);
  // a timer while the webcam records (the recorder itself shows none): "● 0:07 of up to 5:00"
  let started = null;
  setInterval(() => {
    const clip = document.querySelector('#clip');
    if (!clip) return;
    const recording = [...clip.querySelectorAll('button')].some(b => /^\s*Stop\s*$/.test(b.innerText));
    let badge = document.querySelector('#rec-timer');
    if (!recording) { started = null; if (badge) badge.remove(); return; }
    if (started === null) started = Date.now();
    if (!badge) { badge = document.createElement('div'); badge.id = 'rec-timer'; clip.appendChild(badge); }
    const s = Math.floor((Date.now() - started) / 1000), pad = n => String(n).padStart(2, '0');
    badge.textContent = `● ${Math.floor(s / 60)}:${pad(s % 60)} of up to __LIMIT__`;
  }, 250);
  // the plot library (1.3 MB, ~1.2 s to load and compile here) is fetched while the visitor picks a clip, not after
  // the answer arrives (it was most of the 1.5 s between the verdict and its plots); Gradio's own import reuses it
  const chunk = '__PLOTLY_CHUNK__';
  if (chunk) {
    const index = document.querySelector('script[type=module][src*="/assets/index-"]');
    const base = index ? index.src.replace(/[^/]*$/, '') : new URL('assets/', document.baseURI).href;
    const load = () => import(base + chunk).catch(() => {});
    window.requestIdleCallback ? requestIdleCallback(load, {timeout: 3000}) : setTimeout(load, 1000);
  }
}"""
class UploadLimit:
    """ASGI middleware: an upload request whose body is larger than one clip (MAX_UPLOAD, plus room for the form)
    is answered 413 before it is read. Gradio's own limit is per file: ten 190 MB files in one request passed.
    A body of unstated length (chunked) is refused with 411: its size could not be checked first."""

    def __init__(self, app) -> None:
        self.app = app
        self.limit = parse_size(MAX_UPLOAD) + 1024 ** 2

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].rstrip("/").endswith("/upload"):
            headers = dict(scope["headers"])
            length = headers.get(b"content-length", b"")
            status = 411 if not length.isdigit() else 413 if int(length) > self.limit else None
            if status:
                words = (f"The upload is larger than {MAX_UPLOAD.upper()} in all; send one clip at a time."
                         if status == 413 else "An upload must state its length (Content-Length).")
                body = json.dumps({"error": words, "code": "too_large" if status == 413 else "no_length"}).encode()
                await send({"type": "http.response.start", "status": status,
                            "headers": [(b"content-type", b"application/json"), (b"connection", b"close"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


class BadRequest(str):
    """What a malformed API call gets instead of its input (the sentence is the value): the handler answers it in
    words with code "bad_request", where Gradio itself would answer `{"error": null}`."""


class Demo(gr.Blocks):
    """gr.Blocks whose public endpoints answer a malformed call in words. Gradio checks an input (a file object
    from an upload) before the handler runs, and a string, a number or Gradio 4's `{"video": {...}}` failed there
    with no message at all. The 4.x shape is unwrapped and checked as any upload; anything else reaches the
    handler as a BadRequest. Files are still only taken from Gradio's upload folder."""

    async def preprocess_data(self, block_fn, inputs, state, explicit_call=False):
        if block_fn.api_name not in PUBLIC_ENDPOINTS:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        inputs = list(inputs or [])
        if inputs and isinstance(inputs[0], dict) and isinstance(inputs[0].get("video"), dict):
            inputs[0] = inputs[0]["video"]  # Gradio 4's VideoData
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except Exception as exc:
            logging.getLogger("emotion.app").info("malformed call to /%s: %s", block_fn.api_name, exc)
            sent = inputs[0] if inputs else None
            words = ("The video must be sent as a file (gradio_client: handle_file(path)); a path or URL as text "
                     "is not read." if isinstance(sent, str) else
                     "The request does not hold a video file (gradio_client: handle_file(path)).")
            return [BadRequest(words)] + [None] * (len(block_fn.inputs) - 1)


def parse_size(text: str) -> int:
    """'200mb' → bytes (kb, mb, gb; a bare number is bytes)."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?)b?\s*", text.lower())
    if not found:
        raise ValueError(f"EMOTION_MAX_UPLOAD must look like 200mb, not {text!r}")
    return int(float(found.group(1)) * 1024 ** " kmg".index(found.group(2) or " "))


def plotly_chunk() -> str:
    """The file name of Gradio's lazily loaded Plotly bundle (the page loads it ahead), or "" if this Gradio has none."""
    found = sorted((Path(gr.__file__).parent / "templates" / "frontend" / "assets").glob("PlotlyPlot-*.js"))
    return found[0].name if found else ""


def launch_options() -> dict:
    """What `demo.launch` needs beside the address: the page's style and script, and the upload limit."""
    from starlette.middleware import Middleware

    limit = f"{int(MAX_DURATION_S // 60)}:{int(MAX_DURATION_S % 60):02d}"
    js = JS.replace("__LIMIT__", limit).replace("__PLOTLY_CHUNK__", plotly_chunk())
    return {"css": CSS, "js": js, "max_file_size": MAX_UPLOAD, "app_kwargs": {"middleware": [Middleware(UploadLimit)]}}
LIVE_SESSIONS = int(os.environ.get("EMOTION_LIVE_SESSIONS", "2"))  # each costs about one core
LIVE_FPS = float(os.environ.get("EMOTION_LIVE_FPS", "5"))  # camera frames read per second
LIVE_REFRESH_S = 0.25  # the live answer is redrawn at most this often
LIVE_INTRO = """**Live:** turn on the camera (and the microphone, if you like), and the answer follows your face and
voice every fraction of a second. A session lasts up to {minutes:g} minutes; **Stop** gives its summary, as for a
clip. Nothing is recorded or kept after Stop. {cap} people can use live mode at once."""
LIVE_START = "## Turn on the camera or the microphone to start."
# Stop also stops the camera's and the microphone's own streams in the browser (else they start a new session)
STOP_DEVICES = """() => { document.querySelectorAll('#live-camera button, #live-mic button').forEach(b => {
  if (/^\\s*Stop\\s*$/.test(b.innerText)) b.click(); }); }"""
LIVE_COLORS = {"happy": "#f2c14e", "sad": "#4a90d9", "angry": "#d0021b", "fearful": "#8e44ad", "disgust": "#6b8e23",
               "surprised": "#ff7f0e", "neutral": "#9e9e9e"}


def live_strip(history: list, span_s: float) -> str:
    """The last `span_s` seconds of live answers as a coloured strip (grey hatching: not sure)."""
    if not history:
        return ""
    end = history[-1][0]
    cells = []
    for (t, label, p, not_sure), nxt in zip(history, history[1:] + [(end + 0.25, None, 0, True)]):
        width = max(0.0, min(nxt[0], end + 0.25) - max(t, end - span_s)) / span_s * 100
        if width <= 0:
            continue
        colour = "repeating-linear-gradient(45deg,#bbb,#bbb 3px,#ddd 3px,#ddd 6px)" if not_sure or not label \
            else LIVE_COLORS.get(label, "#777")
        title = f"{'not sure' if not_sure or not label else label} {p:.0%} at {t:.1f} s"
        cells.append(f'<span title="{title}" style="display:inline-block;height:18px;width:{width:.2f}%;'
                     f'background:{colour}"></span>')
    legend = " ".join(f'<span style="color:{c}">■</span> {e}' for e, c in LIVE_COLORS.items())
    return (f'<div id="live-strip-bar" style="width:100%;white-space:nowrap;overflow:hidden;border-radius:4px">'
            f'{"".join(cells)}</div><div style="font-size:0.8em">last {span_s:g} s (newest right) · {legend} · '
            f'hatched: not sure</div>')


def live_tab(pipe, rendered):
    """The Live tab: camera and microphone streamed into emotion.live sessions (at most LIVE_SESSIONS at once),
    the answer redrawn as it changes, Stop → the session's summary with the same plots and downloads as a clip."""
    import numpy as np

    from emotion.live import HISTORY_S, MAX_SESSION_S, LiveSessions

    sessions = LiveSessions(pipe, cap=LIVE_SESSIONS)
    last_drawn: dict[str, float] = {}
    gr.Markdown(LIVE_INTRO.format(minutes=MAX_SESSION_S / 60, cap=LIVE_SESSIONS), elem_id="live-intro")
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=300):
            camera = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Camera", elem_id="live-camera",
                              webcam_options=gr.WebcamOptions(mirror=True), height=300)
            mic = gr.Audio(sources=["microphone"], streaming=True, type="numpy", label="Microphone (optional)",
                           elem_id="live-mic")
            stop = gr.Button("Stop and summarise", variant="primary", elem_id="live-stop")
        with gr.Column(scale=1, min_width=300):
            now = gr.Markdown(LIVE_START, elem_id="live-verdict")
            using = gr.Markdown("", elem_id="live-using")
            strip = gr.HTML("", elem_id="live-strip")
    with gr.Column(visible=False) as summary:
        gr.Markdown("### Summary of the live session")
        s_verdict = gr.Markdown(elem_id="live-summary-verdict")
        s_top3 = gr.Label(num_top_classes=3, label="Top 3, from voice and face together", visible=False)
        s_details = gr.Markdown()
        s_probs = gr.Plot(show_label=False, elem_id="live-prob-plot")
        s_timeline = gr.Plot(show_label=False, visible=False, elem_id="live-timeline-plot")
        s_face_text = gr.Markdown()
        s_face_why = gr.Plot(show_label=False)
        s_voice_text = gr.Markdown()
        s_voice_why = gr.Plot(show_label=False)
        s_downloads = gr.File(label="Download the summary (JSON, CSV, PNG)", file_count="multiple", visible=False,
                              elem_id="live-downloads")
        s_raw = gr.JSON(visible=False)
    summary_outputs = [s_verdict, s_top3, s_details, summary, s_probs, s_timeline, s_face_why, s_face_text,
                       s_voice_why, s_voice_text, s_downloads, s_raw]
    live_outputs = [now, using, strip]

    def shown(key: str, session, force: bool = False):
        t = time.monotonic()
        if not force and t - last_drawn.get(key, 0.0) < LIVE_REFRESH_S:
            return gr.skip(), gr.skip(), gr.skip()
        last_drawn[key] = t
        if session.expired:
            return (f"## ⏱️ {MAX_SESSION_S / 60:g} minutes are up — press **Stop** for the summary.", gr.skip(),
                    gr.skip())
        update = session.update()
        return (f"{verdict_markdown(update.prediction)}\n\n<small>at {update.t_s:.1f} s</small>",
                f"**Using:** {update.using}", live_strip(update.history, HISTORY_S))

    def busy():
        return (f"## ⏳ Live mode is busy ({LIVE_SESSIONS} people are using it). Try again in a minute, or record a "
                "clip in the first tab.", "", "")

    stopped: dict[str, float] = {}  # a frame already on its way when Stop was pressed starts no new session

    def session_of(request: gr.Request):
        """(key, the visitor's live session) — or, instead of the session, what to show: nothing (Stop was just
        pressed and this is a frame already on its way) or "busy"."""
        key = request.session_hash or "local"
        if time.monotonic() - stopped.get(key, -10.0) < 2.0:
            return key, (gr.skip(), gr.skip(), gr.skip())
        session = sessions.get(key)
        return key, busy() if session is None else session

    def on_frame(frame, request: gr.Request):
        key, session = session_of(request)
        if isinstance(session, tuple):
            return session
        if frame is not None:
            try:
                session.add_frame(np.ascontiguousarray(np.asarray(frame, np.uint8)[:, ::-1]))  # the preview is mirrored
            except EmotionError as exc:
                return f"## ⚠️ {exc}", "", ""
        return shown(key, session)

    def on_sound(chunk, request: gr.Request):
        key, session = session_of(request)
        if isinstance(session, tuple):
            return session
        if chunk is not None:
            rate, wave = chunk
            session.add_audio(np.asarray(wave), int(rate))
        # with the camera on, its frames redraw the answer; without it, the sound does
        return shown(key, session) if session.frames_seen == 0 else (gr.skip(), gr.skip(), gr.skip())

    def on_stop(request: gr.Request):
        key = request.session_hash or "local"
        stopped[key] = time.monotonic()
        session = sessions.end(key)
        last_drawn.pop(key, None)
        if session is None:
            return (LIVE_START, "", "", *[gr.skip()] * len(summary_outputs))
        try:
            pred = session.summary()
            out = rendered(pred)
        except Exception as exc:  # a short or empty session is said in words
            words = as_user_error(exc)
            out = (f"## ⚠️ {words}", gr.skip(), "", gr.update(visible=True), *[gr.skip()] * (len(summary_outputs) - 4))
        finally:
            session.close()
        return (LIVE_START, "", "", *out)

    streams = [
        camera.stream(on_frame, inputs=[camera], outputs=live_outputs, stream_every=1 / LIVE_FPS,
                      time_limit=int(MAX_SESSION_S) + 10, concurrency_limit=LIVE_SESSIONS, concurrency_id="live-camera",
                      show_progress="hidden", api_visibility="private"),
        mic.stream(on_sound, inputs=[mic], outputs=live_outputs, stream_every=0.5, time_limit=int(MAX_SESSION_S) + 10,
                   concurrency_limit=LIVE_SESSIONS, concurrency_id="live-mic", show_progress="hidden",
                   api_visibility="private")]
    # Stop ends the streams too (the camera must be started again for a new session)
    stop.click(on_stop, None, [*live_outputs, *summary_outputs], api_visibility="private", scroll_to_output=True,
               cancels=streams, js=STOP_DEVICES, **HEAVY)
    return sessions


START_VERDICT = "## Upload or record a clip, then press Analyze."
# the answer in view when it arrives (on a phone the plots, not the verdict, were scrolled to)
SCROLL_TO_VERDICT = "() => { const v = document.querySelector('#verdict'); if (v) v.scrollIntoView({block: 'start'}); }"
class LoadingPipeline:
    """An EmotionPipeline that loads in a thread, so the page is served at once (its words need only the
    config): loading and warming the models takes ~13 s on 2 cores (bench/startup.py), and an analysis asked for
    meanwhile waits for them. Any attribute other than `cfg` and `weights_dir` waits; a failed load is raised
    there, and printed."""

    def __init__(self, name_or_path: str | None = None) -> None:
        from emotion import EmotionPipeline
        from emotion.config import PipelineConfig
        from emotion.hub import resolve_weights

        self.weights_dir = resolve_weights(name_or_path)
        self.cfg = PipelineConfig.from_json(self.weights_dir / "config.json")
        self._pipe, self._error, self._done = None, None, threading.Event()
        self.started = time.perf_counter()

        def load() -> None:
            try:
                self._pipe = EmotionPipeline.from_pretrained(self.weights_dir)
                print(f"Models loaded in {time.perf_counter() - self.started:.1f} s")
                if "face" in self._pipe.problems:
                    print(f"Face analysis is off: {self._pipe.problems['face']}")
            except Exception as exc:  # said by every analysis (as_user_error), and here for the operator
                logging.getLogger("emotion.app").exception("the models could not be loaded")
                self._error = exc
            finally:
                self._done.set()

        threading.Thread(target=load, name="load-models", daemon=True).start()

    @property
    def ready(self) -> bool:
        return self._done.is_set()

    def __getattr__(self, name: str):
        self._done.wait()
        if self._error is not None:
            raise self._error
        return getattr(self._pipe, name)


PREDICT_DOC = """Analyse one clip; returns the result as JSON.

Input: `video`, a video or sound file (gradio_client: `handle_file(path)`), at most {limit:g} s long.
Output: on success the fields of `emotion.Prediction`: `file`, `label` (the most likely emotion, or null),
`confidence` (its calibrated probability), `verdict` (the answer in words), `not_sure` (true when the answer is a
guess), `disagreement` (true when voice and face read different emotions, both with real confidence),
`fused`, `audio`, `face` (a probability per answer of the weights — "neutral" means no clear emotion — from
both, the voice and the face; null for a branch not used),
`modalities` (["audio", "face"] as used), `face_coverage` (share of frames with a face), `speech_present`,
`duration_s`, `warnings` (plain sentences), `timings_s` and `timeline` (one entry per window of a long clip).
On failure: {{"error": "a plain sentence", "code": "not_media" | "too_long" | "corrupt" | "no_input" | "bad_request" | ...}}."""


def build_app(pipe, examples_dir: str | Path | None = None, cache_examples: bool | None = None) -> gr.Blocks:
    """The interface around an EmotionPipeline (or a LoadingPipeline). The examples' answers are worked out in
    a thread once the models are loaded (`cache_examples`, default on; EMOTION_CACHE_EXAMPLES=0 turns it off), so
    a click shows an answer at once and the page never waits for them; a click before then analyses the clip."""
    if cache_examples is None:
        cache_examples = os.environ.get("EMOTION_CACHE_EXAMPLES", "1") != "0"

    def cleared():
        """Every output as before the first run: nothing stale next to a new clip, no empty plot frames."""
        return (START_VERDICT, gr.update(value=None, visible=False), "", gr.update(visible=False), None,
                gr.update(value=None, visible=False), gr.update(value=None, visible=False), "",
                gr.update(value=None, visible=False), "", gr.update(value=None, visible=False), None)

    def failed(words: str):
        out = list(cleared())
        out[0] = words
        return tuple(out)

    def run(video: str | None, source: dict | None = None, progress=gr.Progress()):
        """Analyse the clip shown (the original upload when the player shows a preview of it)."""
        if isinstance(video, BadRequest):
            return failed(f"## ⚠️ {video}")
        if not video:
            return failed("## Please upload or record a video first.")
        path = video
        if source and source.get("preview") and Path(video).name == Path(source["preview"]).name:
            path = source["original"]
        if not getattr(pipe, "ready", True):
            progress(0.0, desc="Loading the models (the app has just started; about 15 s)")
        try:
            pred = pipe.predict(path, explain=True, max_duration_s=MAX_DURATION_S, progress=every(0.5, progress))
        except Exception as exc:  # a public demo answers every upload in words, never with a traceback
            return failed(f"## ⚠️ {as_user_error(exc)}")
        return rendered(pred)

    def rendered(pred):
        """Every output for a result: verdict, top 3, notes, plots, "why", downloads, JSON."""
        expl = pred.explanation
        face_fig, voice_fig = face_figure(expl), voice_figure(expl)
        top3 = gr.update(value=pred.fused, visible=pred.fused is not None,
                         show_heading=not pred.not_sure and pred.fused is not None)
        timeline = gr.update(value=timeline_figure(pred), visible=True) if pred.timeline else gr.update(value=None, visible=False)
        voice_text = expl.voice_words if voice_fig is not None else \
            "The voice was not used for this clip (no speech found), so there is no voice plot."
        return (verdict_markdown(pred), top3, details_markdown(pred), gr.update(visible=True),
                probability_figure(pred), timeline, gr.update(value=face_fig, visible=face_fig is not None),
                face_words(expl), gr.update(value=voice_fig, visible=voice_fig is not None), voice_text,
                gr.update(value=write_downloads(pred, pipe.cfg.emotions), visible=True), pred.to_dict())

    def api_predict(video: str | None) -> dict:
        if isinstance(video, BadRequest):
            return {"error": str(video), "code": "bad_request"}
        if not video or not isinstance(video, str):
            return {"error": "No video given: send a file (gradio_client: handle_file(path)).", "code": "no_input"}
        try:
            return pipe.predict(video, max_duration_s=MAX_DURATION_S).to_dict()
        except Exception as exc:
            err = as_user_error(exc)
            return {"error": str(err), "code": err.code}

    def make_preview(video: str | None):
        """What the browser cannot play (flv, avi, mkv, some mov) is shown as a small mp4, a webcam recording
        remuxed so the player knows its length; analysis keeps the original."""
        if not video or Path(video).suffix.lower() not in PREVIEW_EXT | {".webm"}:
            return gr.skip(), None
        try:
            preview = browser_preview(video, Path(video).parent, pipe.cfg.limits(MAX_DURATION_S))
        except Exception:  # the analysis will say what is wrong with the file, in words
            return gr.skip(), None
        if preview is None:
            return gr.skip(), None
        return preview, {"original": video, "preview": preview}

    examples, example_originals = playable_examples(example_clips(examples_dir, pipe.cfg.emotions),
                                                    pipe.cfg.limits(MAX_DURATION_S))

    answered: dict[str, object] = {}  # example file name → its Prediction, worked out in the background
    worked_out = {Path(ex.path).name: threading.Event() for ex in examples}

    def answer_examples() -> None:
        for ex in examples:
            name = Path(ex.path).name
            with contextlib.suppress(Exception):  # a click on it will say what is wrong
                answered[name] = pipe.predict(example_originals.get(name, ex.path), explain=True,
                                              max_duration_s=MAX_DURATION_S)
            worked_out[name].set()

    def run_example(video: str, progress=gr.Progress()):
        """The example's answer, worked out at start-up (waited for when clicked before then: clicks on examples
        never add analyses beyond the app's cap)."""
        name = Path(video).name
        if cache_examples and name in worked_out and not worked_out[name].is_set():
            progress(0.0, desc="Working out the examples' answers (the app has just started)")
            worked_out[name].wait(timeout=300)
        if name in answered:
            return rendered(answered[name])
        original = example_originals.get(name)
        return run(video, {"original": original, "preview": video} if original else None)

    if examples and cache_examples:
        threading.Thread(target=answer_examples, name="answer-examples", daemon=True).start()

    with Demo(title="Emotion recognizer", delete_cache=(min(600, FILE_MAX_AGE_S), FILE_MAX_AGE_S)) as demo:
        gr.Markdown(INTRO.format(answers=answers_in_words(pipe.cfg.emotions)))
        source = gr.State(None)
        with gr.Tabs(elem_id="modes"):
            with gr.Tab("Upload or record", elem_id="tab-upload"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=1, min_width=300):
                        video = gr.Video(label="Your clip", sources=["upload", "webcam"], include_audio=True,
                                         webcam_options=gr.WebcamOptions(mirror=True), elem_id="clip", height=320)
                        gr.Markdown(limits_text(), elem_id="limits")
                        with gr.Row():
                            analyze = gr.Button("Analyze", variant="primary", elem_id="analyze", scale=2)
                            clear = gr.Button("Clear", variant="secondary", elem_id="clear", scale=1)
                        verdict = gr.Markdown(START_VERDICT, elem_id="verdict", label="verdict")
                        top3 = gr.Label(num_top_classes=3, label="Top 3, from voice and face together", elem_id="top3",
                                        visible=False)
                        details = gr.Markdown(elem_id="details", label="details")
                    with gr.Column(scale=2, min_width=300, visible=False) as results:
                        with gr.Accordion("Voice, face and both", open=True):
                            probs = gr.Plot(label="probabilities", show_label=False, elem_id="prob-plot")
                            timeline = gr.Plot(label="timeline", show_label=False, visible=False, elem_id="timeline-plot")
                        with gr.Accordion("Why? What the models looked at", open=True):
                            face_text = gr.Markdown(elem_id="face-words", label="face_words")
                            face_why = gr.Plot(label="face_why", show_label=False, elem_id="face-why")
                            voice_text = gr.Markdown(elem_id="voice-words", label="voice_words")
                            voice_why = gr.Plot(label="voice_why", show_label=False, elem_id="voice-why")
                        downloads = gr.File(label="Download the result (JSON, CSV, PNG)", file_count="multiple",
                                            elem_id="downloads", visible=False)
                        with gr.Accordion("All numbers (JSON)", open=False):
                            raw = gr.JSON(label="result", elem_id="raw")
                outputs = [verdict, top3, details, results, probs, timeline, face_why, face_text, voice_why, voice_text,
                           downloads, raw]
                if examples:
                    gr.Examples(examples=[[ex.path] for ex in examples], inputs=[video], outputs=outputs,
                                fn=run_example, cache_examples=False, run_on_click=True,
                                example_labels=[f"{EMOTION_EMOJI.get(ex.emotion, '')} {ex.emotion}: {ex.caption}" for ex in examples],
                                label="Examples, one per emotion (the expected emotion first): click one to see its result",
                                elem_id="examples", preload=False)
                    credit = Path(examples_dir) / "ATTRIBUTION.md"
                    if credit.is_file():
                        gr.Markdown(credit.read_text(encoding="utf-8", errors="replace")[:2000], elem_id="examples-credit")
            with gr.Tab("Live", elem_id="tab-live"):
                live_sessions = live_tab(pipe, rendered)

        def leave(request: gr.Request):  # a closed tab frees its live session at once
            gone = live_sessions.end(request.session_hash or "local")
            if gone is not None:
                gone.close()

        demo.unload(leave)
        with gr.Accordion("How it works, and its limits", open=False):
            gr.Markdown(HOW_IT_WORKS)
            card = Path(pipe.weights_dir or "") / "README.md"
            if pipe.weights_dir and card.is_file():
                with gr.Accordion("Model card", open=False):
                    gr.Markdown(card_markdown(card.read_text(encoding="utf-8", errors="replace")))

        # the progress is drawn over the verdict: over an empty one, not over the greyed-out hint or an old answer
        lock = lambda: (gr.update(interactive=False, value="Analysing…"), gr.update(interactive=False), "")
        unlock = lambda: (gr.update(interactive=True, value="Analyze"), gr.update(interactive=True))
        analyze.click(lock, None, [analyze, clear, verdict], queue=False, api_visibility="private").then(
            run, inputs=[video, source], outputs=outputs, api_name="analyze", scroll_to_output=True,
            show_progress_on=[verdict], trigger_mode="once", **HEAVY).then(
            unlock, None, [analyze, clear], queue=False, api_visibility="private").then(
            None, js=SCROLL_TO_VERDICT, api_visibility="private")
        for event in (video.upload, video.start_recording):
            event(cleared, None, outputs, queue=False, api_visibility="private")
        for event in (video.upload, video.stop_recording):
            event(make_preview, inputs=[video], outputs=[video, source], api_visibility="private", **HEAVY)
        video.clear(lambda: (*cleared(), None), None, [*outputs, source], queue=False, api_visibility="private")
        clear.click(lambda: (None, None, *cleared()), None, [video, source, *outputs], queue=False,
                    api_visibility="private")
        api_button = gr.Button(visible=False)
        api_out = gr.JSON(visible=False, label="result")
        api_button.click(api_predict, inputs=[video], outputs=[api_out], api_name="predict",
                         api_description=PREDICT_DOC.format(limit=MAX_DURATION_S), **HEAVY)
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=64)
    return demo


def main() -> None:
    limit_malloc_arenas()  # before the models start their threads
    pipe = LoadingPipeline(os.environ.get("EMOTION_WEIGHTS") or None)  # the page is served while they load
    demo = build_app(pipe, os.environ.get("EMOTION_EXAMPLES_DIR", str(SHIPPED_EXAMPLES)))
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")), **launch_options())


if __name__ == "__main__":
    main()
