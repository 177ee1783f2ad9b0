"""The shipped voice (log-mel CNN + prosody, trained on RAVDESS only) on nEMO, EMOVO and EmoDB, which it never
heard: the "before" of the speech-encoder voice (bench/voice_corpora.py).

    python bench/voice_before.py [--shared ../shared] [--weights weights]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from emotion import EmotionPipeline
from emotion.calibration import calibrate
from train import datasets


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--weights", default=None)
    o = ap.parse_args()
    import librosa

    from emotion.audio import VoiceBranch
    from emotion.branches import Media

    pipe = EmotionPipeline.from_pretrained(o.weights, warmup=False)
    voice = pipe.branches["audio"]
    assert isinstance(voice, VoiceBranch), "this bench measures the log-mel CNN voice"
    cfg = pipe.cfg
    root = Path(o.shared) / "data" / "speech-corpora"
    for corpus in ("nemo", "emovo", "emodb"):
        items, _ = datasets.index({corpus: root / corpus})
        y, pred = [], []
        for item in items:
            wave, _ = librosa.load(item.path, sr=cfg.sample_rate)
            reading = voice.read(Media(item.path, wave.size / cfg.sample_rate, wave, False, item.path),
                                 [(0.0, wave.size / cfg.sample_rate)], cfg)
            if reading.usable:
                y.append(cfg.emotions.index(item.emotion))
                pred.append(int(calibrate(voice.logits([reading.windows[0]]), cfg.temperature_audio)[0].argmax()))
        y, pred = np.array(y), np.array(pred)
        top = np.bincount(pred, minlength=len(cfg.emotions))
        print(f"{corpus}: {np.mean(y == pred):.1%} of {len(y)} clips with speech; most frequent answer "
              f"{cfg.emotions[int(top.argmax())]} ({top.max() / len(y):.0%}); recall " +
              ", ".join(f"{e} {np.mean(pred[y == k] == k):.0%}" for k, e in enumerate(cfg.emotions) if (y == k).any()))


if __name__ == "__main__":
    main()
