"""Fit the face LSTM (Keras) on blendshape sequences: one per fold (cross-fitting), best epoch on inner validation."""

from __future__ import annotations

from typing import Callable

import numpy as np

from emotion.config import PipelineConfig
from emotion.face import FaceModel, model_input

from .datasets import Item
from .face_model import build_face_lstm, ensemble
from .evaluate import face_baseline, last_frame_regression, regression_logits
from .face_sequences import build_photo_set, clip_sequence, motion_bank
from .fit_audio import History
from .folds import CrossFit, Examples

FaceData = dict[str, dict] | Callable[[int], dict[str, dict]]  # the features, or a function of the fold giving its own
NEUTRAL = -1  # a neutral face where neutral is not one of the config's emotions (training only): trained towards
# the uniform distribution, "no evidence"
CLIP_REPEATS = 3  # each real clip window is seen this many times per epoch (with noise and mirroring)


def face_examples(items: list[Item], face_data: dict[str, dict], cfg: PipelineConfig, rng: np.random.Generator,
                  fold_of: dict[str, int], train: bool, per_photo: int = 3, motion: np.ndarray | None = None
                  ) -> Examples:
    """Sequences from `items`: built from photos (neutral → expressive, `per_photo` each when training, one
    otherwise; neutral-to-neutral ones only when training; talking with `motion`, see build_photo_set) and real
    clip windows (plus augmented crops when training) with a face in enough frames."""
    index = {e: k for k, e in enumerate(cfg.emotions)}  # class k is the config's k-th emotion
    photos = [(face_data[i.path]["blendshapes"], i.emotion, i.speaker, i.path) for i in items
              if i.kind == "photo" and face_data.get(i.path, {}).get("blendshapes") is not None]
    # neutral-to-neutral sequences: in training always; in evaluation where neutral is one of the answers
    xp, yp, sp, pp = build_photo_set(photos, per_photo if train else 1, cfg.frames_per_window, rng,
                                     with_neutral=train or "neutral" in index, motion=motion)
    if not len(xp):
        xp = np.zeros((0, cfg.frames_per_window, len(cfg.face_feature_names)), np.float32)
    dataset_of = {i.path: i.dataset for i in items}
    xs, ys, ss, ps = [], [], [], []
    for i in items:
        if i.kind == "photo" or i.path not in face_data:
            continue
        d = face_data[i.path]
        for w in d["windows"] + (d["augmented"] if train else []):
            if w["detected"].mean() >= cfg.min_face_coverage:
                for _ in range(CLIP_REPEATS if train else 1):
                    xs.append(clip_sequence(w["sequence"], rng) if train else w["sequence"])
                    ys.append(index[i.emotion])
                    ss.append(i.speaker)
                    ps.append(i.path)
    x = np.concatenate([xp, np.stack(xs)]) if xs else xp
    paths = pp + ps
    return Examples(x.astype(np.float32), np.array([index.get(e, NEUTRAL) for e in yp] + ys, dtype=np.int64),
                    np.array([fold_of[p] for p in paths], dtype=np.int64), sp + ss, [dataset_of[p] for p in paths],
                    paths)


def talking_motion(items: list[Item], face_data: dict[str, dict], cfg: PipelineConfig) -> np.ndarray:
    """The movement of the real talking-face windows among `items` (see motion_bank)."""
    windows = [w["sequence"] for i in items if i.kind != "photo" and i.path in face_data
               for w in face_data[i.path]["windows"] if w["detected"].mean() >= cfg.min_face_coverage]
    return motion_bank(windows)


def fold_sequences(items: list[Item], face_data: dict[str, dict], fold_of: dict[str, int],
                   inner: dict[int, set[str]], cfg: PipelineConfig, k: int, seed: int = 0, per_photo: int = 3,
                   real_motion: bool = False) -> tuple[Examples, Examples, Examples]:
    """Fold `k`'s training, inner-validation and test sequences (seeded per fold: the same in every run and
    bench): training from the other folds' subjects less the inner-validation ones."""
    rng = np.random.default_rng(seed * 100 + k)
    train_items = [i for i in items if fold_of[i.path] != k and i.path not in inner[k]]
    val_items = [i for i in items if fold_of[i.path] != k and i.path in inner[k]]
    motion = talking_motion(train_items, face_data, cfg) if real_motion else None
    test = face_examples([i for i in items if fold_of[i.path] == k], face_data, cfg, rng, fold_of, False,
                         motion=motion)
    tr = face_examples(train_items, face_data, cfg, rng, fold_of, True, per_photo, motion)
    va = face_examples(val_items, face_data, cfg, rng, fold_of, False, motion=motion)
    return tr, va, test


def data_of_fold(face_data: FaceData, k: int) -> dict[str, dict]:
    """Fold `k`'s features: the same for every fold, or those a function of the fold gives."""
    return face_data(k) if callable(face_data) else face_data


def cross_fit_face(items: list[Item], face_data: FaceData, fold_of: dict[str, int],
                   inner: dict[int, set[str]], cfg: PipelineConfig, epochs: int = 15, per_photo: int = 3,
                   seed: int = 0, batch_size: int = 64, progress=None, standardise: bool = False,
                   weight_decay: float = 0.0, prior: str = "", real_motion: bool = False, members: int = 1,
                   lr: float = 2e-3, prior_read: str = "last") -> CrossFit:
    """One LSTM per fold, trained on sequences of the other folds' subjects less the inner-validation ones
    (which pick the best epoch), then asked about its own fold's photo sequences and clip windows.
    The last-frame logistic regression is trained on the same sequences, beside it. The photo sequences talk
    with the movement of the training subjects' real clips (`real_motion`; else hand-set movement). `members` > 1:
    each fold's model is that many LSTMs (other seeds, same data) averaged — less variance from one small net's
    luck; its History is the first member's. `face_data` may differ per fold (a function of the fold): features read
    by an appearance CNN of that fold's own (bench/face_cnn_per_fold.py)."""
    n_shapes = len(cfg.face_feature_names)
    parts, logits, baseline_lp, models, hists, trained = [], [], [], [], [], []
    for k in sorted(set(fold_of[i.path] for i in items)):
        tr, va, test = fold_sequences(items, data_of_fold(face_data, k), fold_of, inner, cfg, k, seed, per_photo, real_motion)
        fitted = [fit_one(tr.x, tr.y, va.x, va.y, cfg, epochs, seed + k + 1000 * m, batch_size, standardise,
                          weight_decay, prior, groups=tr.speaker, lr=lr, prior_read=prior_read) for m in range(members)]
        model, hist = ensemble([f[0] for f in fitted]), fitted[0][1]
        expressive = tr.y != NEUTRAL
        parts.append(test)
        logits.append(FaceModel(model, cfg).logits(test.x) if len(test) else np.zeros((0, len(cfg.emotions))))
        # the baseline reads what the LSTM reads (model_input: gaze zeroed), so only the model differs
        baseline_lp.append(face_baseline(model_input(tr.x[expressive], cfg), tr.y[expressive],
                                         model_input(test.x, cfg), len(cfg.emotions)))
        models.append(model)
        hists.append(hist)
        trained.append({i.speaker for i in items if fold_of[i.path] != k})  # trained on, or chose its epoch on
        if progress:
            progress(k)
    examples = Examples.concat(parts, (cfg.frames_per_window, n_shapes))
    baseline_log_probs = np.concatenate(baseline_lp)
    return CrossFit(examples, np.concatenate(logits).astype(np.float32), baseline_log_probs.argmax(1),
                    models, hists, trained, baseline_log_probs=baseline_log_probs)


def targets(y: np.ndarray, n_classes: int) -> np.ndarray:
    """One-hot rows; a label of -1 (a neutral face) becomes the uniform distribution: "no evidence"."""
    out = np.zeros((len(y), n_classes), np.float32)
    known = y >= 0
    out[np.flatnonzero(known), y[known]] = 1.0
    out[~known] = 1.0 / n_classes
    return out


def input_scale(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and variance over every frame of the training sequences; the variance floored (0.03²) so
    a feature that never moves (or is ignored) is not blown up with the training noise."""
    flat = x.reshape(-1, x.shape[-1])
    return flat.mean(axis=0), np.maximum(flat.var(axis=0), 0.03 ** 2)


def out_of_fold_prior(x: np.ndarray, y: np.ndarray, groups: list[str], n_classes: int, k: int = 5,
                      read: str = "last") -> np.ndarray:
    """(n, n_classes) the last-frame regression's logits for each training sequence from a regression that did not
    see its subject (k groups of subjects): what that regression will say of a new face, not of one it has learned."""
    from sklearn.model_selection import GroupKFold

    out = np.zeros((len(y), n_classes), np.float32)
    groups = np.asarray(groups)
    for fit_idx, held in GroupKFold(min(k, len(set(groups)))).split(x, y, groups):
        keep = fit_idx[y[fit_idx] != NEUTRAL]
        out[held] = regression_logits(x[held], last_frame_regression(x[keep], y[keep], n_classes, read), read)
    return out


def fit_one(x_train, y_train, x_val, y_val, cfg: PipelineConfig, epochs: int, seed: int, batch_size: int,
            standardise: bool = False, weight_decay: float = 0.0, prior: str = "", groups: list[str] | None = None,
            lr: float = 2e-3, prior_read: str = "last"):
    """`prior` "frozen" or "trainable": the LSTM starts from the last-frame logistic regression fitted on the same
    training sequences (see build_face_lstm) and learns what to add to it. "stacked": the same model, but the part
    that learns what to add is trained against the regression's out-of-fold logits (`groups`: the subjects), as it
    will meet new faces — in-sample, the regression already fits the training faces and leaves nothing to learn."""
    import keras

    keras.utils.set_random_seed(seed)
    n = len(cfg.emotions)
    x_fit, x_check = model_input(x_train, cfg), model_input(x_val, cfg)
    scale = input_scale(x_fit) if standardise else None
    start = None
    if prior:
        expressive = y_train != NEUTRAL
        start = last_frame_regression(x_fit[expressive], y_train[expressive], n, prior_read)
    model = build_face_lstm(cfg.frames_per_window, len(cfg.face_feature_names), n, scale=scale, prior=start,
                            prior_trainable=prior == "trainable", prior_read=prior_read)
    exported = model
    if prior == "stacked":
        from keras import layers

        given = keras.Input((n,), name="prior_logits")
        logits = layers.Add()([given, model.get_layer("correction").output])
        model = keras.Model([model.inputs[0], given], layers.Activation("softmax")(logits))
        x_fit = [x_fit, out_of_fold_prior(x_fit, y_train, groups, n, read=prior_read)]
        x_check = [x_check, regression_logits(x_check, start, prior_read)]
    model.compile(optimizer=keras.optimizers.Adam(lr, weight_decay=weight_decay or None), loss="categorical_crossentropy",
                  metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
    has_val = len(y_val) > 0  # tiny runs may have no inner-validation subjects: the last epoch is kept
    callbacks = [keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=epochs, restore_best_weights=True,
                                               mode="max")] if has_val else []
    fit = model.fit(x_fit, targets(y_train, n), epochs=epochs, batch_size=batch_size,
                    validation_data=(x_check, targets(y_val, n)) if has_val else None,
                    callbacks=callbacks, verbose=0, shuffle=True)
    h = fit.history
    hist = History(train_loss=[float(v) for v in h["loss"]], train_acc=[float(v) for v in h["accuracy"]],
                   val_loss=[float(v) for v in h.get("val_loss", [])], val_acc=[float(v) for v in h.get("val_accuracy", [])],
                   best_epoch=int(np.argmax(h["val_accuracy"])) if has_val else epochs - 1)
    return exported, hist


def leave_one_set_out(items: list[Item], face_data: FaceData, cfg: PipelineConfig, seed: int = 0,
                      **recipe) -> CrossFit | None:
    """Per face set (Taiwanese, JAFFE, MEAD ...): the face model trained on all the other sets, asked about this
    one — faces, cameras and posing it never saw; each example's `fold` is its set's index in sorted order. The
    same recipe (`recipe`: cross_fit_face's options) as the shipped model; None with fewer than two sets."""
    from .folds import inner_validation

    sets = sorted({i.dataset for i in items})
    if len(sets) < 2:
        return None
    fold_of = {i.path: sets.index(i.dataset) for i in items}
    inner = {k: inner_validation(items, fold_of, k, "speaker", seed) for k in range(len(sets))}
    return cross_fit_face(items, face_data, fold_of, inner, cfg, seed=seed, **recipe)
