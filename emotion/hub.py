"""Where model files come from: the weights (a local folder, or a Hugging Face Hub model repo, downloaded and
cached) and MediaPipe's face model (a path, $EMOTION_FACE_MODEL, or Google's official file, downloaded once)."""

from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path

from .errors import EmotionError

DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
# What a weights folder holds: config.json names its branches (emotion.branches.weight_files), whose files are
# safetensors or Keras files; beside them the appearance CNN the config names, its licence, and metrics.json.
WEIGHT_PATTERNS = ("*.json", "*.safetensors", "*.keras", "*.tflite", "*LICENSE*")


def weights_fingerprint(folder: str | Path) -> str:
    """The sha256 of a weights folder's files (names and contents, in name order): the weights' identity, so
    that a batch worker elsewhere can prove it loaded exactly the driver's models."""
    import fnmatch
    import hashlib

    folder = Path(folder)
    names = sorted(f.name for f in folder.iterdir() if f.is_file() and any(fnmatch.fnmatch(f.name, p)
                                                                           for p in WEIGHT_PATTERNS))
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode() + b"\0")
        with open(folder / name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def resolve_weights(name_or_path: str | Path | None = None, revision: str | None = None,
                    cache_dir: str | Path | None = None) -> Path:
    """A local folder holding the weight files: the path itself, or a snapshot of a Hub repo.

    Hub downloads use the local cache, so a cached repo also works offline (HF_HUB_OFFLINE=1).
    """
    if name_or_path is None:
        name_or_path = DEFAULT_WEIGHTS
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():  # the rest it names is checked when the branches load
            raise EmotionError(f"The weights folder {path} lacks config.json.", code="bad_weights")
        return path
    name = str(name_or_path)
    if name.count("/") != 1 or name.startswith((".", "/")):
        raise EmotionError(f"No weights folder at {name}, and it is not a Hub id like 'user/model'.",
                           code="bad_weights")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        local = snapshot_download(repo_id=name, revision=revision, repo_type="model", cache_dir=cache_dir,
                                  allow_patterns=[*WEIGHT_PATTERNS, "README.md"])
    except RepositoryNotFoundError:
        raise EmotionError(f"No model repo named {name} on the Hugging Face Hub (or it is private: "
                           "log in or set HF_TOKEN).", code="hub") from None
    except LocalEntryNotFoundError:
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false")
        why = "offline mode is on" if offline else "the Hub could not be reached"
        raise EmotionError(f"Weights {name} are not in the local cache and {why}. Connect once to download "
                           "them, or pass a local folder.", code="hub") from None
    except (HfHubHTTPError, OSError) as exc:
        raise EmotionError(f"Downloading {name} from the Hub failed: {exc}", code="hub") from None
    return resolve_weights(local)


FACE_MODEL_URL = ("https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/"
                  "float16/1/face_landmarker.task")
FACE_MODEL_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
FACE_MODEL_ENV = "EMOTION_FACE_MODEL"


def cache_dir() -> Path:
    """Where downloaded files live: $EMOTION_CACHE, else $XDG_CACHE_HOME/emotion, else ~/.cache/emotion."""
    if os.environ.get("EMOTION_CACHE"):
        return Path(os.environ["EMOTION_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "emotion"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resolve_face_model(explicit: str | Path | None = None, download: bool = True) -> Path:
    """Find face_landmarker.task: the argument, then $EMOTION_FACE_MODEL, then the cache (downloading it).

    Raises EmotionError(code="no_face_model") with the reason when none can be had (e.g. offline).
    """
    for candidate, origin in ((explicit, "the face_model argument"), (os.environ.get(FACE_MODEL_ENV), FACE_MODEL_ENV)):
        if candidate:
            if Path(candidate).is_file():
                return Path(candidate)
            raise EmotionError(f"The face model given by {origin} does not exist: {candidate}", code="no_face_model")
    cached = cache_dir() / "face_landmarker.task"
    if cached.is_file() and _sha256(cached) == FACE_MODEL_SHA256:
        return cached
    if not download:
        raise EmotionError("The face model (face_landmarker.task) is not in the cache.", code="no_face_model")
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".part")
    try:
        with urllib.request.urlopen(FACE_MODEL_URL, timeout=30) as response, open(partial, "wb") as out:
            out.write(response.read())
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise EmotionError(
            f"The face model could not be downloaded ({exc.__class__.__name__}: {exc}). Without internet, set "
            f"{FACE_MODEL_ENV} to a local face_landmarker.task.", code="no_face_model") from None
    if _sha256(partial) != FACE_MODEL_SHA256:
        partial.unlink(missing_ok=True)
        raise EmotionError("The downloaded face model has the wrong checksum; try again later.", code="no_face_model")
    partial.replace(cached)
    return cached
