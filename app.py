"""Gradio demo: upload or record a short video, see the emotion from the voice, the face and both.

Presentation only: every decision is made by emotion.EmotionPipeline.
    python app.py                      # http://127.0.0.1:7860
    EMOTION_EXAMPLES_DIR=clips/ python app.py
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import gradio as gr

from emotion.errors import EmotionError, as_emotion_error
from emotion.explain import face_figure, voice_figure
from emotion.labels import EMOTION_EMOJI
from emotion.plots import probability_figure, timeline_figure

VIDEO_EXT = {".mp4", ".webm", ".mov", ".avi", ".mkv", ".flv"}
MAX_UPLOAD = os.environ.get("EMOTION_MAX_UPLOAD", "200mb")
MAX_DURATION_S = float(os.environ.get("EMOTION_MAX_DURATION_S", "300"))
CONCURRENCY = int(os.environ.get("EMOTION_CONCURRENCY", "2"))
# Uploads and results are deleted an hour after they were made (checked every 10 minutes): a public
# demo must not fill its disk.
FILE_MAX_AGE_S = int(os.environ.get("EMOTION_FILE_MAX_AGE_S", "3600"))
RESULTS_DIR = Path(tempfile.gettempdir()) / "emotion-results"

INTRO = """# 🎭 What emotion does this clip show?
Upload a short video of someone speaking (or record one with your webcam), then press **Analyze**.
The voice and the face are judged separately, then together. Six emotions: happy, sad, angry, fearful,
disgust, surprised. Works best on a few seconds of one clearly visible face."""


def example_clips(folder: str | Path | None) -> list[str]:
    if not folder or not Path(folder).is_dir():
        return []
    return sorted(str(p) for p in Path(folder).iterdir() if p.suffix.lower() in VIDEO_EXT)[:12]


def details_markdown(pred) -> str:
    used = {"audio": "🎙️ voice", "face": "🙂 face"}
    lines = [f"**Used:** {' + '.join(used[m] for m in pred.modalities) or 'nothing'}  ·  "
             f"**Face visible in** {pred.face_coverage:.0%} of the frames  ·  **Length:** {pred.duration_s:.1f} s"]
    lines += [f"- ⚠️ {w}" for w in pred.warnings]
    return "\n".join(lines)


def verdict_markdown(pred) -> str:
    emoji = "🤔" if pred.not_sure or not pred.label else EMOTION_EMOJI.get(pred.label, "")
    return f"## {emoji} {pred.verdict}"


WEBCAM_NAMES = {"sample", "recording", "webcam", "video", "blob", ""}  # what browsers call a webcam recording


def download_stem(file_name: str) -> str:
    """Downloads are named after the upload; a webcam recording gets webcam-<time>."""
    stem = Path(file_name).stem
    return f"webcam-{time.strftime('%Y%m%d-%H%M%S')}" if stem.lower() in WEBCAM_NAMES else stem


def write_downloads(pred) -> list[str]:
    """The result as JSON, and as CSV in the one export format of the CLI and batch (emotion.result: a row for
    the file; the windows of a long clip in a second file); in a fresh folder, results past their age removed."""
    from emotion.result import FILE_FIELDS, TIMELINE_FIELDS, file_row, timeline_rows

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
    tables = [(folder / f"{stem}.emotion.csv", FILE_FIELDS, [file_row(pred.file, pred)])]
    if pred.timeline:
        tables.append((folder / f"{stem}.emotion.timeline.csv", TIMELINE_FIELDS, timeline_rows(pred.file, pred)))
    for path, fields, rows in tables:
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(fields))
            writer.writeheader()
            writer.writerows({k: r.get(k) for k in fields} for r in rows)
        paths.append(str(path))
    return paths


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


def build_app(pipe, examples_dir: str | Path | None = None) -> gr.Blocks:
    """The interface around a loaded EmotionPipeline."""

    def run(video: str | None, progress=gr.Progress()):
        if not video:
            return ("## Please upload or record a video first.", None, gr.update(visible=False), "", None,
                    None, None, None)
        try:
            pred = pipe.predict(video, explain=True, max_duration_s=MAX_DURATION_S,
                                progress=lambda fraction, words: progress(fraction, desc=words))
        except Exception as exc:  # a public demo answers every upload in words, never with a traceback
            return (f"## ⚠️ {as_user_error(exc)}", None, gr.update(visible=False), "", None, None, None, None)
        timeline = gr.update(value=timeline_figure(pred), visible=True) if pred.timeline else gr.update(visible=False)
        return (verdict_markdown(pred), probability_figure(pred), timeline, details_markdown(pred),
                write_downloads(pred), face_figure(pred.explanation), voice_figure(pred.explanation), pred.to_dict())

    def api_predict(video: str | None) -> dict:
        """The result as JSON (for gradio_client): same fields as Prediction.to_dict(), or {"error": ...}."""
        if not video:
            return {"error": "No video given."}
        try:
            return pipe.predict(video, max_duration_s=MAX_DURATION_S).to_dict()
        except Exception as exc:
            err = as_user_error(exc)
            return {"error": str(err), "code": err.code}

    with gr.Blocks(title="Emotion recognizer", delete_cache=(min(600, FILE_MAX_AGE_S), FILE_MAX_AGE_S)) as demo:
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=1):
                video = gr.Video(label="Your clip", sources=["upload", "webcam"], include_audio=True,
                                 webcam_options=gr.WebcamOptions(mirror=True), elem_id="clip")
                analyze = gr.Button("Analyze", variant="primary", elem_id="analyze")
                clips = example_clips(examples_dir)
                if clips:
                    gr.Examples(examples=[[c] for c in clips], inputs=[video], label="Try an example")
            with gr.Column(scale=2):
                verdict = gr.Markdown("## Upload or record a clip, then press Analyze.", elem_id="verdict")
                details = gr.Markdown(elem_id="details")
                probs = gr.Plot(label="Probabilities: voice, face, both", elem_id="prob-plot")
                timeline = gr.Plot(label="Emotion over time", visible=False, elem_id="timeline-plot")
                with gr.Accordion("Why? What the models looked at", open=True):
                    face_why = gr.Plot(label="Face: the most telling expressions over time", elem_id="face-why")
                    voice_why = gr.Plot(label="Voice: loudness and pitch over time", elem_id="voice-why")
                downloads = gr.File(label="Download the result (JSON, CSV)", file_count="multiple", elem_id="downloads")
                with gr.Accordion("All numbers (JSON)", open=False):
                    raw = gr.JSON(elem_id="raw")
        gr.Markdown("Confidence is calibrated on speakers the models never saw; when the top emotion is not "
                    "clearly ahead the app says *Not sure*. Trained on acted emotions: treat it as a demo, not a "
                    "diagnosis.")
        analyze.click(run, inputs=[video], outputs=[verdict, probs, timeline, details, downloads, face_why,
                                                    voice_why, raw], api_name="analyze")
        api_button = gr.Button(visible=False)
        api_out = gr.JSON(visible=False)
        api_button.click(api_predict, inputs=[video], outputs=[api_out], api_name="predict")
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=64)
    return demo


def main() -> None:
    from emotion import EmotionPipeline

    limit_malloc_arenas()  # before the models start their threads
    started = time.perf_counter()
    pipe = EmotionPipeline.from_pretrained(os.environ.get("EMOTION_WEIGHTS") or None)
    print(f"Models loaded in {time.perf_counter() - started:.1f} s")
    if pipe.face_model_problem:
        print(f"Face analysis is off: {pipe.face_model_problem}")
    demo = build_app(pipe, os.environ.get("EMOTION_EXAMPLES_DIR"))
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")), max_file_size=MAX_UPLOAD)


if __name__ == "__main__":
    main()
