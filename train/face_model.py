"""The face model's architecture (Keras), for training: built and fitted in train/, loaded by emotion.face.FaceModel.

Also the linear reads of a sequence that the frozen regression inside it (and the baselines) use.
"""

from __future__ import annotations

import numpy as np

from emotion.face import READ_FRAMES

CHANGE_READS = {"change": READ_FRAMES, "change1": 1}  # "change1": single frames (measured, not robust; README)


def build_face_lstm(n_frames: int, n_features: int, n_classes: int, units: int = 16,
                    dropout: float = 0.3, noise: float = 0.03, frame_head: bool = True,
                    scale: tuple[np.ndarray, np.ndarray] | None = None, tail: int = 0, wide: int = 0,
                    prior: tuple[np.ndarray, np.ndarray] | None = None, prior_trainable: bool = False,
                    prior_read: str = "last"):
    """(training-only Gaussian noise) → 2 LSTM layers with dropout → temporal max-pool, beside a per-frame
    dense layer max- and mean-pooled over time → dense ReLU → softmax.

    The max-pools let the peak frames drive the decision (the expression's apex), wherever it falls in the
    window; the per-frame path (`frame_head`) reads each frame on its own, as the last-frame baseline does,
    so the model has at least what the baseline has. Small and heavily regularised: few training faces.
    `scale` (mean, variance per feature, from the training sequences) standardises the input inside the model:
    most blendshapes move by a few hundredths, a few by half their range. `tail` > 0: the mean of the last
    `tail` frames' features goes straight to the head too (what the last-frame baseline reads). `wide` > 0: the
    mean of the last `wide` frames' features is read by a linear layer whose logits are added to the deep
    part's (wide & deep: the last-frame regression inside the model, trained with it). `prior` (coef (classes,
    features), intercept), a logistic regression fitted beforehand on the last frame: its logits are the model's
    starting point and the deep part, whose last layer starts at zero, learns what to add to them (frozen unless
    `prior_trainable`); `prior_read` is what that regression reads (see sequence_read).
    """
    import keras
    from keras import layers

    inputs = keras.Input((n_frames, n_features), name="blendshapes")
    x = layers.GaussianNoise(noise)(inputs)
    if scale is not None:
        x = layers.Normalization(mean=scale[0], variance=scale[1], name="standardise")(x)
    h = layers.LSTM(units, return_sequences=True)(x)
    h = layers.Dropout(dropout)(h)
    h = layers.LSTM(units, return_sequences=True)(h)
    h = layers.Dropout(dropout)(h)
    pooled = [layers.GlobalMaxPooling1D()(h)]
    if frame_head:
        f = layers.Dense(32, activation="relu")(x)
        f = layers.Dropout(dropout)(f)
        pooled += [layers.GlobalMaxPooling1D()(f), layers.GlobalAveragePooling1D()(f)]
    if tail:
        pooled.append(layers.GlobalAveragePooling1D()(layers.Cropping1D((n_frames - tail, 0))(x)))
    x = layers.Concatenate()(pooled) if len(pooled) > 1 else pooled[0]
    x = layers.Dense(32, activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    if prior is not None:
        k = CHANGE_READS.get(prior_read, 1)  # the same read as sequence_read, in layers
        last = layers.GlobalAveragePooling1D()(layers.Cropping1D((n_frames - k, 0))(inputs))
        if prior_read in CHANGE_READS:
            first = layers.GlobalAveragePooling1D()(layers.Cropping1D((0, n_frames - k))(inputs))
            last = layers.Concatenate()([last, layers.Subtract()([last, first])])
        read = layers.Dense(n_classes, name="last_frame_regression", trainable=prior_trainable)
        deep = layers.Dense(n_classes, kernel_initializer="zeros", name="correction")(x)
        logits = layers.Add()([read(last), deep])
        model = keras.Model(inputs, layers.Activation("softmax", name="emotion")(logits), name="face_lstm")
        read.set_weights([np.asarray(prior[0], np.float32).T, np.asarray(prior[1], np.float32)])
        return model
    if not wide:
        outputs = layers.Dense(n_classes, activation="softmax", name="emotion")(x)
        return keras.Model(inputs, outputs, name="face_lstm")
    last = layers.GlobalAveragePooling1D()(layers.Cropping1D((n_frames - wide, 0))(inputs))
    logits = layers.Add()([layers.Dense(n_classes)(x), layers.Dense(n_classes)(last)])
    return keras.Model(inputs, layers.Activation("softmax", name="emotion")(logits), name="face_lstm")


def sequence_read(sequences: np.ndarray, kind: str = "last") -> np.ndarray:
    """(batch, features) what a linear read of (batch, frames, features) sequences sees: the last frame ("last"),
    or the mean of the last READ_FRAMES frames and its change since the mean of the first ones ("change": in a
    sequence that starts on a resting face, the expression with the person's own face taken out; averaged so that
    a blink, the tracker's jitter or which frames were read does not move it; "change1": the same of single frames)."""
    if kind in CHANGE_READS:
        k = CHANGE_READS[kind]
        last = sequences[:, -k:, :].mean(axis=1)
        return np.concatenate([last, last - sequences[:, :k, :].mean(axis=1)], axis=1)
    return sequences[:, -1, :]


def ensemble(members: list):
    """One Keras model that averages the members' probabilities (saved and loaded as a single .keras file)."""
    import keras
    from keras import layers

    if len(members) == 1:
        return members[0]
    inputs = keras.Input(members[0].inputs[0].shape[1:], name="blendshapes")
    for i, m in enumerate(members):
        m.name = f"face_lstm_{i}"
    return keras.Model(inputs, layers.Average()([m(inputs) for m in members]), name="face_lstm_ensemble")
