"""Live mode: a webcam (and microphone) stream judged while it runs, by the same models and rules as an upload.

    session = LiveSession(pipe)
    session.add_frame(rgb)               # each camera frame (H×W×3 uint8 RGB), as it arrives
    session.add_audio(chunk, 48000)      # each microphone chunk (any rate, mono or channels, int or float)
    now = session.update()               # the answer for the last few seconds, and what it rests on
    pred = session.summary()             # at Stop: the whole session as an upload's Prediction (timeline, "why")
    session.close()

Each frame goes through the Face Landmarker once (VIDEO mode, one per session, times from the session's clock)
and is kept as its face reading (52 blendshapes + appearance: ~240 bytes), so a refresh costs one face-model
call, not a re-read of seconds of frames, and a 2-minute session holds a few hundred kilobytes of face data. The
voice is re-read every `voice_every_s` when new sound came in. The answer itself comes from
`EmotionPipeline.answer`: the stacker, the evidence bounds, "not sure", disagreement and neutral as for uploads.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from .branches import BranchInput, Media
from .decoded import DecodedMedia
from .errors import EmotionError
from .face import FaceTracker, FaceWindow, fill_gaps, fit_photo, frame_features, window_frame_times
from .pipeline import Features, split_windows
from .result import Prediction

FACE_WINDOW_S = 4.0  # the face answer reads the last 4 s (a window of an upload is ~4 s too)
VOICE_WINDOW_S = 3.0
VOICE_EVERY_S = 2.0
HISTORY_S = 30.0
MAX_SESSION_S = 120.0
MIN_WINDOW_S = 0.5


@dataclass
class LiveUpdate:
    """The answer for the last few seconds, what it rests on, and the recent answers for a strip."""

    prediction: Prediction
    using: str  # "voice and face", "face only — microphone off", ...
    t_s: float  # the session's clock
    history: list[tuple[float, str | None, float, bool]] = field(default_factory=list)  # (t, label, p, not sure)


class LiveSession:
    """One person's live stream. Thread-safe: a browser sends frames and sound on separate requests."""

    def __init__(self, pipe, face_window_s: float = FACE_WINDOW_S, voice_window_s: float = VOICE_WINDOW_S,
                 voice_every_s: float = VOICE_EVERY_S, history_s: float = HISTORY_S,
                 max_s: float = MAX_SESSION_S, clock=time.monotonic) -> None:
        self.pipe, self.cfg = pipe, pipe.cfg
        self.face_window_s, self.voice_window_s, self.voice_every_s = face_window_s, voice_window_s, voice_every_s
        self.history_s, self.max_s = history_s, max_s
        self._clock, self._start = clock, clock()
        self._lock = threading.Lock()
        self._tracker: FaceTracker | None = None
        self._appearance = None
        self._times: list[float] = []
        self._faces: list[np.ndarray | None] = []
        self._max_faces = 0
        self._sound: list[np.ndarray] = []
        self._sound_samples = 0
        self._sound_seen_at: float | None = None
        self._voice: tuple[float, BranchInput] | None = None  # (when read, what the voice branch read)
        self._voice_read_samples = 0
        self.history: list[tuple[float, str | None, float, bool]] = []
        self.frames_seen = 0
        self.closed = False

    # -- input --------------------------------------------------------------------------------------
    def now(self) -> float:
        return self._clock() - self._start

    @property
    def expired(self) -> bool:
        return self.now() >= self.max_s

    def add_frame(self, rgb: np.ndarray, t_s: float | None = None) -> None:
        """Read one camera frame's face (`t_s`: its time on the session's clock; default now)."""
        face = self.pipe.branches.get("face")
        if self.closed or self.expired or face is None or face.landmarker is None:
            return
        if not (isinstance(rgb, np.ndarray) and rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8):
            raise EmotionError("A camera frame must be an H×W×3 uint8 RGB image.", code="bad_input")
        with self._lock:
            t = self.now() if t_s is None else float(t_s)
            if self._times and t <= self._times[-1]:
                return  # frames come in order; a late duplicate is dropped
            if self._tracker is None:
                self._tracker = FaceTracker(face.landmarker, self.cfg)
                if self.cfg.appearance_model and face.appearance_path is not None:
                    from .appearance import AppearanceModel

                    self._appearance = AppearanceModel(face.appearance_path)
            frame = fit_photo(rgb[:, :, ::-1], self.cfg.face_max_side_px)  # fit_photo takes BGR, gives RGB
            features, faces = frame_features(self._tracker, self._appearance, frame, t, self.cfg)
            self._times.append(t)
            self._faces.append(features)
            self._max_faces = max(self._max_faces, faces)
            self.frames_seen += 1

    def add_audio(self, wave: np.ndarray, sample_rate: int) -> None:
        """Append a microphone chunk (resampled to the config's rate; aligned to the session's clock)."""
        if self.closed or self.expired:
            return
        chunk = DecodedMedia(wave=np.asarray(wave), sample_rate=int(sample_rate)).wave_at(self.cfg.sample_rate)
        if chunk is None or not chunk.size:
            return
        with self._lock:
            rate = self.cfg.sample_rate
            if not self._sound:  # the first chunk ends now: silence before it keeps sound and frames aligned
                lead = max(0, int((self.now() - chunk.size / rate) * rate))
                self._sound.append(np.zeros(lead, np.float32))
                self._sound_samples = lead
            room = int(self.max_s * rate) - self._sound_samples
            if room > 0:
                self._sound.append(chunk[:room].astype(np.float32))
                self._sound_samples += min(room, chunk.size)
            self._sound_seen_at = self.now()
        self._read_voice()

    # -- reading --------------------------------------------------------------------------------------
    def _face_window(self, start: float, end: float) -> FaceWindow | None:
        """The frames between `start` and `end` on the window's grid (frames_per_window slots): each frame in the
        slot nearest its time, the slots between frames interpolated (fill_gaps), as an upload's window."""
        n = self.cfg.frames_per_window
        times = np.asarray(self._times)
        inside = np.flatnonzero((times >= start) & (times <= end))
        if not inside.size:
            return None
        grid = window_frame_times(start, end, n)
        step = (end - start) / n
        width = len(self.cfg.face_feature_names)
        sequence = np.zeros((n, width), np.float32)
        detected = np.zeros(n, bool)
        sampled = np.zeros(n, bool)
        for k in inside:
            slot = int(np.clip(np.floor((times[k] - start) / step), 0, n - 1))
            sampled[slot] = True
            if self._faces[k] is not None:
                sequence[slot, :self._faces[k].size], detected[slot] = self._faces[k], True
            else:
                detected[slot] = False
        return FaceWindow(start, end, fill_gaps(sequence, detected), detected, grid, self._max_faces, sampled)

    def _face_input(self, windows: list[tuple[float, float]]) -> BranchInput:
        faces = [self._face_window(a, b) for a, b in windows]
        usable = [i for i, f in enumerate(faces) if f is not None and f.coverage >= self.cfg.min_face_coverage]
        return BranchInput(faces, usable, [0.0 if f is None else f.coverage for f in faces], [])

    def _wave(self) -> np.ndarray | None:
        if not self._sound:
            return None
        if len(self._sound) > 1:
            self._sound = [np.concatenate(self._sound)]
        return self._sound[0]

    def _voice_input(self, wave: np.ndarray, windows: list[tuple[float, float]], name: str) -> BranchInput:
        voice = self.pipe.branches.get("audio")
        if voice is None:
            return BranchInput.empty(len(windows))
        media = Media(name, wave.size / self.cfg.sample_rate, wave, False, "")
        return voice.read(media, windows, self.cfg)

    def _read_voice(self) -> None:
        """Re-read the last `voice_window_s` of sound when `voice_every_s` has passed and new sound came in. The
        speech encoder runs outside the lock (on the microphone's request), so camera frames never wait for it."""
        with self._lock:
            now, wave = self.now(), self._wave()
            due = self._voice is None or now - self._voice[0] >= self.voice_every_s
            if wave is None or not due or self._sound_samples <= self._voice_read_samples:
                return
            piece = wave[max(0, wave.size - int(self.voice_window_s * self.cfg.sample_rate)):].copy()
            self._voice_read_samples = self._sound_samples
        reading = self._voice_input(piece, [(0.0, piece.size / self.cfg.sample_rate)], "live")
        with self._lock:
            self._voice = (now, reading)

    def _recent_voice(self, now: float) -> BranchInput | None:
        """The voice's latest reading; None once nothing new was heard for a whole window (microphone stopped)."""
        if self._voice is None or now - self._voice[0] > self.voice_window_s + self.voice_every_s:
            return None
        return self._voice[1]

    def update(self) -> LiveUpdate:
        """The answer for the last `face_window_s` of frames and the voice's latest reading."""
        with self._lock:
            now = self.now()
            end = max(now, MIN_WINDOW_S)  # the first frames make a short window, never an empty one
            start = max(0.0, end - self.face_window_s)
            face = self._face_input([(start, end)]) if self._times else BranchInput.empty(1)
            voice = self._recent_voice(now) or BranchInput.empty(1)
            feats = Features(end - start, [(start, end)], {"face": face, "audio": voice})
            pred = self.pipe.answer("live", feats)
            self.history.append((round(now, 2), pred.label, pred.confidence, pred.not_sure))
            self.history = [h for h in self.history if h[0] >= now - self.history_s]
            return LiveUpdate(pred, self._using(face, voice, now), round(now, 2), list(self.history))

    def _using(self, face: BranchInput, voice: BranchInput, now: float) -> str:
        camera = bool(self._times) and now - self._times[-1] < 2.0
        microphone = self._sound_seen_at is not None and now - self._sound_seen_at < 2.0 + self.voice_every_s
        has_face, has_voice = bool(face.usable), bool(voice.usable)
        if has_face and has_voice:
            return "voice and face"
        if has_face:
            return "face only — " + ("no speech heard just now" if microphone else "microphone off")
        if has_voice:
            return "voice only — " + ("no face in view" if camera else "camera off")
        if not camera and not microphone:
            return "waiting for the camera or the microphone"
        return "nothing to read yet — " + ("no face in view" if camera else "camera off") + ", " + \
            ("no speech heard" if microphone else "microphone off")

    def summary(self, name: str = "live session", explain: bool = True) -> Prediction:
        """The whole session as an upload's result: windows of ~4 s, each read from the kept face readings and
        the session's sound, with the timeline and (with `explain`) the "why"."""
        with self._lock:
            wave = self._wave()
            end = max(self._times[-1] if self._times else 0.0, 0.0 if wave is None else wave.size / self.cfg.sample_rate)
            if end < 1.0:
                raise EmotionError("The live session was too short to judge (under a second of camera or sound).",
                                   code="too_short")
            windows = split_windows(end, self.cfg)
            face = self._face_input(windows) if self._times else BranchInput.empty(len(windows))
            voice = self._voice_input(wave, windows, name) if wave is not None else BranchInput.empty(len(windows))
            notes = voice.notes if wave is not None else []
            if not self._times:
                notes = notes + ["The camera was off — the result comes from the voice only."]
            elif not face.usable:
                notes = notes + ["No face found — the result comes from the voice only."]
            if self._max_faces > 1:
                notes = notes + ["Several faces were visible — the largest one was followed."]
            feats = Features(end, windows, {"face": face, "audio": voice}, wave, notes)
            return self.pipe.answer(name, feats, explain=explain)

    def close(self) -> None:
        """Free the landmarker and what the session kept."""
        with self._lock:
            self.closed = True
            if self._tracker is not None:
                self._tracker.close()
                self._tracker = None
            self._appearance = None
            self._times, self._faces, self._sound = [], [], []


class LiveSessions:
    """The live sessions of a server, at most `cap` at once (each costs about a core): a visitor beyond it is
    told to wait or to record instead. A session with no input for `idle_s` (a closed tab) is ended when the
    next visitor starts one."""

    def __init__(self, pipe, cap: int = 2, idle_s: float = 20.0, **options) -> None:
        self.pipe, self.cap, self.idle_s, self.options = pipe, cap, idle_s, options
        self._sessions: dict[str, tuple[LiveSession, list[float]]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, key: str, start: bool = True) -> LiveSession | None:
        """`key`'s session (started if `start` and there is room), or None when there is none or no room."""
        with self._lock:
            now = time.monotonic()
            if key in self._sessions:
                session, seen = self._sessions[key]
                seen[0] = now
                return session
            for other, (session, seen) in list(self._sessions.items()):
                if now - seen[0] > self.idle_s:
                    del self._sessions[other]
                    session.close()
            if not start or len(self._sessions) >= self.cap:
                return None
            session = LiveSession(self.pipe, **self.options)
            self._sessions[key] = (session, [now])
            return session

    def end(self, key: str) -> LiveSession | None:
        """Remove `key`'s session and return it (the caller summarises, then closes it)."""
        with self._lock:
            found = self._sessions.pop(key, None)
        return found[0] if found else None
