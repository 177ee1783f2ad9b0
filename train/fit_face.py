"""Fit the face LSTM (Keras) on blendshape sequences, keeping the best epoch on validation."""

from __future__ import annotations

import numpy as np

from emotion.face import FaceModel, build_face_lstm, ensemble, model_input
from emotion.config import PipelineConfig

from .fit_audio import History


def fit_face(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, cfg: PipelineConfig,
             epochs: int = 15, seeds: tuple[int, ...] = (0, 1, 2), batch_size: int = 64) -> tuple[FaceModel, list[History]]:
    """Train one LSTM per seed (best epoch on validation each) and average them in one model.

    Single LSTMs vary a lot from seed to seed on this little data; their average is steadier.
    """
    members, hists = [], []
    for seed in seeds:
        model, hist = fit_one(x_train, y_train, x_val, y_val, cfg, epochs, seed, batch_size)
        members.append(model)
        hists.append(hist)
    return FaceModel(ensemble(members), cfg), hists


def targets(y: np.ndarray, n_classes: int) -> np.ndarray:
    """One-hot rows; a label of -1 (a neutral face) becomes the uniform distribution: "no evidence"."""
    out = np.zeros((len(y), n_classes), np.float32)
    known = y >= 0
    out[np.flatnonzero(known), y[known]] = 1.0
    out[~known] = 1.0 / n_classes
    return out


def fit_one(x_train, y_train, x_val, y_val, cfg: PipelineConfig, epochs: int, seed: int, batch_size: int):
    import keras

    keras.utils.set_random_seed(seed)
    n = len(cfg.emotions)
    model = build_face_lstm(cfg.frames_per_window, len(cfg.blendshape_names), n)
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="categorical_crossentropy",
                  metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
    best = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=epochs, restore_best_weights=True,
                                         mode="max")
    fit = model.fit(model_input(x_train, cfg), targets(y_train, n), validation_data=(model_input(x_val, cfg), targets(y_val, n)), epochs=epochs, batch_size=batch_size,
                    callbacks=[best], verbose=0, shuffle=True)
    h = fit.history
    hist = History(train_loss=[float(v) for v in h["loss"]], train_acc=[float(v) for v in h["accuracy"]],
                   val_loss=[float(v) for v in h["val_loss"]], val_acc=[float(v) for v in h["val_accuracy"]],
                   best_epoch=int(np.argmax(h["val_accuracy"])))
    return model, hist
