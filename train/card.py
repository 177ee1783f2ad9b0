"""The model card (weights/README.md), generated from metrics.json and the training configuration."""

from __future__ import annotations

from pathlib import Path

from emotion.config import PipelineConfig


def _pct(m: dict, key: str = "accuracy") -> str:
    return f"{m[key]:.1%}" if m and m.get(key) is not None else "n/a"


def card_text(metrics: dict, cfg: PipelineConfig) -> str:
    a, f, fu, cal = metrics["audio"], metrics["face"], metrics["fused"], metrics["calibration"]
    proto = metrics["protocol"]
    rows = [
        ("Voice CNN (ensemble)", "held-out RAVDESS actors", a["cnn"]),
        ("Voice baseline: MFCC stats + logistic regression", "same split", a["baseline_mfcc_stats_logreg"]),
        ("Face LSTM", "photo-built sequences, held-out subjects", f["lstm_photo_sequences"]),
        ("Face baseline: last frame + logistic regression", "same", f["baseline_last_frame_photo_sequences"]),
        ("Face LSTM", "real MEAD talking clips, held-out subject", f["lstm_real_clips"]),
        ("Face baseline: last frame + logistic regression", "same", f["baseline_last_frame_real_clips"]),
    ] + [(f"Fused ({k.replace('_', ' ')})", "emotion-paired held-out predictions", v) for k, v in fu.items()]
    table = "\n".join(f"| {name} | {data} | {m.get('n', 0)} | {_pct(m)} | {_pct(m, 'macro_f1')} |" for name, data, m in rows)
    model_index = "\n".join(
        f"      - type: accuracy\n        name: {name} ({data})\n        value: {m['accuracy']}"
        for name, data, m in rows if m and m.get("accuracy") is not None)
    per_class = "\n".join(f"| {e} | {_pct(a['cnn']['per_class'][e], 'f1')} | {_pct(f['lstm_photo_sequences']['per_class'][e], 'f1')} |"
                          for e in cfg.emotions) if a["cnn"].get("per_class") and f["lstm_photo_sequences"].get("per_class") else ""
    return f"""---
license: cc-by-nc-sa-4.0
library_name: pytorch
tags:
- emotion-recognition
- audio-classification
- video-classification
- multimodal
- mediapipe
- keras
datasets:
- RAVDESS
- MEAD
- JAFFE
- Taiwanese-Facial-Expression-Database
metrics:
- accuracy
- f1
model-index:
- name: multimodal-emotion
  results:
  - task:
      type: video-classification
      name: six-emotion recognition
    metrics:
{model_index}
---

# Multimodal emotion recognizer (voice CNN + face LSTM + MLP stacker)

Six emotions: {", ".join(cfg.emotions)}. Load with:

```python
from emotion import EmotionPipeline
pipe = EmotionPipeline.from_pretrained("USER/NAME")   # or a local folder
print(pipe.predict("clip.mp4").verdict)
```

## What the weights were trained on (stand-in data)
No paired audio-video emotion corpus was available where these weights were made, so each branch was
trained on a different real corpus:
- **Voice CNN** — RAVDESS speech, audio-only recordings, actors 01–20 (CC BY-NC-SA 4.0, Livingstone & Russo 2018).
- **Face LSTM** — 50-frame blendshape sequences *built* from still photos (Taiwanese Facial Expression
  Image Database; JAFFE — both research use only): from the same person's neutral photo to the expressive
  one, with random timing, noise, speech-like mouth movement and mirroring; plus real MEAD talking-face
  clips (research use only).
- **Stacker** — trained on the branches' predictions for held-out speakers, paired *by emotion* across
  the two corpora (not true pairs), with modality dropout. With one branch alone, the pipeline answers with that
  branch's calibrated probabilities.

Because of the datasets' licences these weights are for **non-commercial research** only.

## Evaluation protocol
Split: `{proto['split']}` (seed {proto['seed']}). {proto['note']}
Held-out speakers/subjects: {", ".join(proto['held_out_speakers'])}.

| model | test data | n | accuracy | macro-F1 |
|---|---|---|---|---|
{table}

Per-class F1 (held-out):

| emotion | voice CNN | face LSTM (photo sequences) |
|---|---|---|
{per_class}

Calibration (temperature scaling fitted on subtest speakers, measured on held-out ones):
voice ECE {cal['audio'].get('ece_before', 'n/a')} → {cal['audio'].get('ece_after', 'n/a')},
face ECE {cal['face'].get('ece_before', 'n/a')} → {cal['face'].get('ece_after', 'n/a')},
fused ECE {cal['fused'].get('ece_before', 'n/a')} → {cal['fused'].get('ece_after', 'n/a')}.
A fused top probability under {cal['not_sure_top_p']:.2f} is reported as "not sure"
({cal['answered_share']:.0%} of held-out fused examples were answered, with accuracy
{_pct({'accuracy': cal['accuracy_when_answered']})}).

## Preprocessing (stored in config.json)
Audio: {cfg.sample_rate} Hz mono, silence trimmed ({cfg.trim_top_db} dB), centred {cfg.audio_window_s} s window,
{cfg.n_mfcc} MFCCs (n_fft {cfg.n_fft}, hop {cfg.hop_length}, {cfg.n_mels} mels). Face: {cfg.frames_per_window}
frames sampled evenly per window, MediaPipe Face Landmarker (VIDEO mode, confidence {cfg.face_confidence}),
52 blendshapes. Clips longer than {cfg.single_window_max_s} s are cut into windows of about {cfg.window_s} s.

## Limitations
- Acted emotions (RAVDESS, posed photos, MEAD): real-life expressions are subtler and mixed.
- Six emotions only; neutral or calm speech is forced onto one of them (often shown as "not sure").
- Face training data is mostly East Asian posed photos (Taiwanese, Japanese) plus a few MEAD subjects:
  expect cultural and demographic bias. The voice data is North-American English.
- Face sequences are built from photos, not filmed; fused accuracy comes from emotion-paired, not truly
  paired, examples.

## Retrain on RAVDESS audio-video + RML
Put the datasets in sub-folders of one folder (`RAVDESS/Actor_01/01-01-03-01-01-01-01.mp4`, `RML/s1/an1.avi`, ...) and run
`python -m train.run --data /path/to/folder --out weights`: both branches then train on the same clips and
the stacker on true audio-video pairs, with the same speaker-independent protocol.
"""


def write_card(folder: str | Path, metrics: dict, cfg: PipelineConfig) -> Path:
    path = Path(folder) / "README.md"
    path.write_text(card_text(metrics, cfg))
    return path
