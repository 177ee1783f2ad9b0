"""The face branch with its appearance CNN fine-tuned per fold (#28, point 2), measured as `bench/face_wild.py`
measures the shipped face: out of fold by subject per face set, and leave one face set out.

    python bench/face_cnn_per_fold.py [--epochs 3] [--no-loso] [--fer2013 150]

Fine-tuning the mini-Xception on the photo sets' own crops lifted its read of unseen people's crops a lot
(Taiwanese 62 → 71%, JAFFE 40 → 55%; bench/appearance_wild.py), but a CNN that saw a fold's faces would leak
into the face LSTM's figures on that fold. So here each fold has its own CNN, fine-tuned only on the crops of the
subjects its LSTM trains on (plus the FER2013 faces the LSTM never uses), and every face feature that fold's LSTM
trains on or is asked about is re-read with it. Left out by set: one CNN per set left out, never shown that set.

The crops are those the app cuts (each photo and each clip frame read once more with the crop recorded, in the
exact order the extraction reads them; cached). MEAD frames are never CNN training data. Prints figures; not a test.
"""

from __future__ import annotations

import argparse
import os
import pickle
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("EMOTION_SHARED", ROOT.parent / "shared"))
FACE_MODEL = str(SHARED / "models" / "face_landmarker.task")
PHOTO_SETS = ("fer2013", "taiwanese", "jaffe")


class Recorder:
    """Stands in for emotion.appearance.AppearanceModel while features are extracted: keeps each crop it is shown
    and answers a flat distribution, so the extraction runs as it always does."""
    made: list["Recorder"] = []

    def __init__(self, path) -> None:
        self.crops: list[np.ndarray] = []
        Recorder.made.append(self)

    def probabilities(self, crops: list[np.ndarray]) -> np.ndarray:
        self.crops.extend(np.round((c + 1) * 127.5).astype(np.uint8) for c in crops)
        return np.full((len(crops), 7), 1 / 7, np.float32)


def _record(args) -> tuple[str, dict]:
    item, cfg = args
    import emotion.face
    from train.features import face_features

    emotion.face.AppearanceModel = Recorder
    Recorder.made = []
    data = face_features(item, cfg, FACE_MODEL, appearance="recorder")
    crops = [np.stack(r.crops) if r.crops else np.zeros((0, 64, 64), np.uint8) for r in Recorder.made]
    if data["kind"] == "photo":
        data["crops"] = crops[0] if crops and data["blendshapes"] is not None else None
    else:
        data["crops"] = {"windows": crops[0], "augmented": crops[1]}
    return item.path, data


def recorded(items, cfg, cache: Path) -> dict[str, dict]:
    """{path: face features with a flat appearance, plus the crops in reading order}, cached in `cache`."""
    from concurrent.futures import ProcessPoolExecutor

    done = pickle.loads(cache.read_bytes()) if cache.exists() else {}
    todo = [(i, cfg) for i in items if i.path not in done]
    if todo:
        with ProcessPoolExecutor(2) as pool:
            for n, (path, data) in enumerate(pool.map(_record, todo, chunksize=8)):
                done[path] = data
                if n % 200 == 0:
                    print(f"  recorded {n}/{len(todo)}", flush=True)
        cache.write_bytes(pickle.dumps(done))
    return done


def reread(rec: dict[str, dict], read, cfg) -> dict[str, dict]:
    """The features of every item with appearance `read(crops uint8) → (n, 7) probabilities`: photos take their
    crop's reading; a clip window's detected frames take theirs in reading order, and the frames between are filled
    in as the extraction fills them."""
    from emotion.face import _grid_runs, fill_gaps

    n_shapes, n = len(cfg.blendshape_names), cfg.frames_per_window
    everything = [c for d in rec.values() for c in ([d["crops"]] if d["kind"] == "photo" else
                                                    [d["crops"]["windows"], d["crops"]["augmented"]]) if c is not None]
    sizes = [len(c) for c in everything]
    probs = np.split(read(np.concatenate(everything)), np.cumsum(sizes)[:-1])
    out, k = {}, 0
    for path, d in rec.items():
        if d["kind"] == "photo":
            if d["crops"] is None:
                out[path] = {"kind": "photo", "blendshapes": None}
                continue
            out[path] = {"kind": "photo", "blendshapes": np.concatenate([d["blendshapes"][:n_shapes], probs[k][0]])}
            k += 1
            continue
        new = {"kind": "clip"}
        for part in ("windows", "augmented"):
            p, windows = probs[k], d[part]
            k += 1
            spans = [(w["start_s"], w["end_s"]) for w in windows]
            order = [w for run in _grid_runs(spans) for w in run]  # the order the frames were read
            at = 0
            by_window = {}
            for w in order:
                det = windows[w]["detected"]
                seq = windows[w]["sequence"].copy()
                seq[det, n_shapes:] = p[at:at + det.sum()]
                at += int(det.sum())
                by_window[w] = {**windows[w], "sequence": fill_gaps(seq, det)}
            assert at == len(p), "crops and detected frames disagree"
            new[part] = [by_window[w] for w in range(len(windows))]
        out[path] = new
    return out


def training_crops(rec, items, fer_extra) -> tuple[np.ndarray, np.ndarray]:
    """(crops, labels in the CNN's order) of every photo item with a crop, and of `fer_extra`."""
    from emotion.appearance import FER_ORDER

    xs, ys = [], []
    for i in items:
        c = rec[i.path]["crops"] if i.path in rec and rec[i.path]["kind"] == "photo" else None
        if c is not None and i.dataset in PHOTO_SETS:
            xs.append(c[0])
            ys.append(FER_ORDER.index(i.emotion))
    x, y = fer_extra
    return np.concatenate([np.stack(xs), x]), np.concatenate([np.array(ys), y])


def reader(model):
    """crops (uint8, already lifted) → (n, 7) probabilities in APPEARANCE_NAMES order, crop and mirror averaged,
    as emotion.appearance.AppearanceModel reads."""
    from emotion.appearance import _TO_OURS

    def read(crops: np.ndarray) -> np.ndarray:
        a = crops.astype(np.float32)[..., None] / 127.5 - 1
        p = (model.predict(a, batch_size=256, verbose=0) + model.predict(a[:, :, ::-1], batch_size=256, verbose=0)) / 2
        return p[:, _TO_OURS]
    return read


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--fer2013", type=int, default=150)
    p.add_argument("--epochs", type=int, default=3, help="CNN fine-tuning epochs")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--lstm-epochs", type=int, default=40)
    p.add_argument("--prior-read", default="change", choices=["last", "change"])
    p.add_argument("--no-loso", action="store_true")
    p.add_argument("--cache", default=str(ROOT / "cache"))
    o = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # oneDNN's kernels crashed training the CNN on an AMD EPYC
    import sys

    sys.path.insert(0, str(ROOT / "bench"))
    from appearance_wild import crops as fer_crops
    from appearance_wild import fine_tune
    from emotion.appearance import FER_ORDER
    from emotion.config import PipelineConfig
    from face_wild import report_left_out, report_out_of_fold
    from train import datasets, folds, run
    from train.fit_face import cross_fit_face, leave_one_set_out

    t0 = time.time()
    cfg = PipelineConfig(appearance_model=run.APPEARANCE_FILE, appearance_origin=run.APPEARANCE_ORIGIN)
    recipe = {"epochs": o.lstm_epochs, "per_photo": 3, "members": 1, "prior": "frozen", "prior_read": o.prior_read}
    args = run.TrainConfig(shared=str(SHARED), cache=o.cache, fer2013=o.fer2013, speech_corpora=False)
    items, _, _ = run.load_datasets(args)
    items = [i for i in items if i.kind in ("photo", "video", "video_only")]
    rec = recorded(items, cfg, Path(o.cache) / f"face_crops_fer{o.fer2013}.pkl")
    items = [i for i in items if i.path in rec]  # as bench/face_wild.py keeps them: the same folds
    used = {i.path for i in items}
    # the FER2013 faces the face LSTM never uses: CNN training data in every fold
    sources = {"fer2013": SHARED / "data" / "faces-fer2013"}
    fer_all, _ = datasets.index(sources)
    fer_all = datasets.observers_agree(fer_all, sources)
    fx, found = fer_crops(fer_all, Path(o.cache) / "appearance_crops_fer2013.npz")
    extra = [k for k, i in enumerate(fer_all) if found[k] and i.path not in used]
    fer_extra = (fx[extra], np.array([FER_ORDER.index(fer_all[k].emotion) for k in extra]))
    print(f"{len(items)} face items, {len(extra)} more FER2013 faces for the CNNs only ({time.time() - t0:.0f} s)",
          flush=True)

    fold_of = folds.assign(items, 5, "speaker", 0)
    inner = {k: folds.inner_validation(items, fold_of, k, "speaker", 0) for k in range(5)}

    memo: dict[str, dict] = {}  # one CNN per fold, fine-tuned once

    def per_fold(train_items, tag: str, with_extra: bool = True):
        if tag not in memo:
            t = time.time()
            x, y = training_crops(rec, train_items, fer_extra if with_extra else (fer_extra[0][:0], fer_extra[1][:0]))
            memo[tag] = reread(rec, reader(fine_tune(x, y, o.epochs, o.lr, np.random.default_rng(0))), cfg)
            print(f"  CNN {tag}: fine-tuned on {len(y)} crops and every face re-read ({time.time() - t:.0f} s)", flush=True)
        return memo[tag]

    oof = lambda k: per_fold([i for i in items if fold_of[i.path] != k], f"fold {k}")  # noqa: E731
    report_out_of_fold(cross_fit_face(items, oof, fold_of, inner, cfg, **recipe), items, oof, fold_of, cfg)
    if not o.no_loso:
        sets = sorted({i.dataset for i in items})
        left_out = lambda k: per_fold([i for i in items if i.dataset != sets[k]], f"without {sets[k]}",  # noqa: E731
                                      sets[k] != "fer2013")
        report_left_out(leave_one_set_out(items, left_out, cfg, **recipe), items, cfg)
    print(f"({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
