"""Where weights come from: a local folder, or a Hugging Face Hub model repo (downloaded and cached)."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import EmotionError

DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
WEIGHT_FILES = ("config.json", "audio_cnn.safetensors", "face_lstm.keras", "fusion_mlp.safetensors")
EXTRA_PATTERNS = ("*.tflite", "*LICENSE*")  # the appearance CNN named in config.json, and its licence


def weights_fingerprint(folder: str | Path) -> str:
    """The sha256 of a weights folder's files (names and contents, in name order): the weights' identity, so
    that a batch worker elsewhere can prove it loaded exactly the driver's models."""
    import fnmatch
    import hashlib

    folder = Path(folder)
    names = sorted(f.name for f in folder.iterdir() if f.is_file() and (
        f.name in WEIGHT_FILES or any(fnmatch.fnmatch(f.name, p) for p in EXTRA_PATTERNS)))
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
        missing = [f for f in WEIGHT_FILES if not (path / f).is_file()]
        if missing:
            raise EmotionError(f"The weights folder {path} lacks {', '.join(missing)}.", code="bad_weights")
        return path
    name = str(name_or_path)
    if name.count("/") != 1 or name.startswith((".", "/")):
        raise EmotionError(f"No weights folder at {name}, and it is not a Hub id like 'user/model'.",
                           code="bad_weights")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        local = snapshot_download(repo_id=name, revision=revision, repo_type="model", cache_dir=cache_dir,
                                  allow_patterns=list(WEIGHT_FILES) + ["metrics.json", "README.md", *EXTRA_PATTERNS])
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
