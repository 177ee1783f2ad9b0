"""Dataset adapters: one small function per dataset, each yielding Items (path, emotion, speaker, dataset).
Adding a dataset touches this file only: its label codes, its adapter, ADAPTERS and DATASET_INFO.

Every dataset yields its neutral items as "neutral" (RAVDESS calm too: see RAVDESS_CODES); contempt and
boredom are dropped. A training run keeps the emotions of its config (train.run drops the rest, except neutral
photos: they are also the starting frames of built sequences).
A file whose name does not follow the dataset's scheme is reported in `malformed`, never silently skipped.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from emotion.labels import EMOTIONS

# How each dataset spells the emotions (the adapters below map them onto the config's emotion list).
# RAVDESS 7-part code, third field. 02 "calm" is read as neutral: actors were asked for a relaxed, unemotional
# delivery, which is how people just talking sound; 01 neutral alone (4 clips per actor) is also too few.
RAVDESS_CODES = {"01": "neutral", "02": "neutral", "03": "happy", "04": "sad", "05": "angry", "06": "fearful",
                 "07": "disgust", "08": "surprised"}

# RML (Ryerson Multimedia Lab): the emotion letters in the file name.
RML_CODES = {"ha": "happy", "sa": "sad", "an": "angry", "fe": "fearful", "di": "disgust", "su": "surprised"}

# CREMA-D: third field of 1001_DFA_ANG_XX; CREMA-D has no surprise.
CREMAD_CODES = {"HAP": "happy", "SAD": "sad", "ANG": "angry", "FEA": "fearful", "DIS": "disgust", "NEU": "neutral"}

# MEAD manifest spellings (contempt is dropped).
MEAD_CODES = {e: e for e in EMOTIONS}
MEAD_DROPPED = {"contempt"}

# Taiwanese facial-expression database, 5th character (a is calm/neutral).
TAIWANESE_CODES = {"b": "happy", "c": "sad", "d": "angry", "e": "disgust", "f": "fearful", "g": "surprised"}
TAIWANESE_NEUTRAL = "a"

# JAFFE two-letter code.
JAFFE_CODES = {"HA": "happy", "SA": "sad", "AN": "angry", "FE": "fearful", "DI": "disgust", "SU": "surprised"}
JAFFE_NEUTRAL = "NE"

# EmoDB (Berlin), 6th character: Wut, Ekel, Angst, Freude, Trauer, Neutral; L boredom dropped; no surprise.
EMODB_CODES = {"W": "angry", "E": "disgust", "A": "fearful", "F": "happy", "T": "sad", "N": "neutral"}
EMODB_DROPPED = {"L"}

# EMOVO (Italian), first field: disgusto, gioia, paura, rabbia, sorpresa, tristezza, neutrale.
EMOVO_CODES = {"dis": "disgust", "gio": "happy", "pau": "fearful", "rab": "angry", "sor": "surprised", "tri": "sad",
               "neu": "neutral"}
EMOVO_DROPPED: set[str] = set()

# nEMO (Polish), second field; nEMO has no disgust.
NEMO_CODES = {"anger": "angry", "fear": "fearful", "happiness": "happy", "sadness": "sad", "surprised": "surprised",
              "neutral": "neutral"}
NEMO_DROPPED: set[str] = set()

# For the model card: each dataset's name, licence and what it holds.
DATASET_INFO = {
    "ravdess": ("RAVDESS", "CC BY-NC-SA 4.0 (Livingstone & Russo 2018)", "acted North-American English speech"),
    "rml": ("RML", "research use (Ryerson Multimedia Lab)", "acted audio-visual clips, six languages"),
    "cremad": ("CREMA-D", "ODbL (Cao et al. 2014)", "acted English sentences, audio-visual"),
    "mead": ("MEAD", "research use only", "talking-face clips"),
    "taiwanese": ("Taiwanese Facial Expression Image Database", "research use only", "posed still photos"),
    "jaffe": ("JAFFE", "research use only", "posed still photos of Japanese women"),
    "emodb": ("EmoDB", "research use (Burkhardt et al. 2005)", "acted German speech"),
    "emovo": ("EMOVO", "research use (Costantini et al. 2014)", "acted Italian speech"),
    "nemo": ("nEMO", "CC BY-NC-SA 4.0 (Christop 2024)", "acted Polish speech"),
    "fer2013": ("FER2013", "research use (Goodfellow et al. 2013)", "48×48 grey faces found on the web, in the wild"),
}

# FER2013 names no person: its faces go into this many groups by a fixed hash of the file name, the "subjects"
# that every split keeps apart.
FER2013_GROUPS = 30

VIDEO_EXT = {".mp4", ".avi", ".flv", ".mov", ".mkv", ".webm"}
AUDIO_EXT = {".wav", ".flac", ".mp3"}


@dataclass(frozen=True)
class Item:
    path: str
    emotion: str
    speaker: str  # dataset-prefixed, so speakers of two datasets never collide
    dataset: str
    kind: str  # "video" (audio + face), "video_only" (face), "audio" or "photo"


def _files(root: Path, exts: set[str]) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in exts and p.is_file())


RAVDESS_RE = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")


def ravdess(root: str | Path, malformed: list[str]) -> Iterator[Item]:
    """RAVDESS speech: audio-video (modality 01, .mp4) and audio-only (modality 03, .wav/.flac).

    Code MM-VC-EE-II-SS-RR-AA: modality, vocal channel (01 speech), emotion, intensity, statement,
    repetition, actor. Video-only files (modality 02) are used for the face alone.
    """
    for p in _files(Path(root), VIDEO_EXT | AUDIO_EXT):
        m = RAVDESS_RE.match(p.stem)
        if not m or m.group(3) not in RAVDESS_CODES:
            malformed.append(str(p))
            continue
        modality, channel, code, actor = m.group(1), m.group(2), m.group(3), m.group(7)
        if channel != "01":
            continue  # song
        kind = {"01": "video", "02": "video_only", "03": "audio"}.get(modality)
        if kind is None:
            malformed.append(str(p))
            continue
        yield Item(str(p), RAVDESS_CODES[code], f"ravdess-{actor}", "ravdess", kind)


RML_RE = re.compile(r"^(an|di|fe|ha|sa|su)\d", re.IGNORECASE)


def rml(root: str | Path, malformed: list[str]) -> Iterator[Item]:
    """RML (Ryerson Multimedia Lab): emotion letters at the start of the file name, speaker = folder."""
    for p in _files(Path(root), VIDEO_EXT):
        m = RML_RE.match(p.stem)
        if not m:
            malformed.append(str(p))
            continue
        yield Item(str(p), RML_CODES[m.group(1).lower()], f"rml-{p.parent.name}", "rml", "video")


CREMAD_RE = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


def cremad(root: str | Path, malformed: list[str]) -> Iterator[Item]:
    """CREMA-D: 1001_DFA_ANG_XX (actor, sentence, emotion, level); no surprise exists."""
    for p in _files(Path(root), VIDEO_EXT | AUDIO_EXT):
        m = CREMAD_RE.match(p.stem)
        if not m or m.group(3) not in CREMAD_CODES:
            malformed.append(str(p))
            continue
        kind = "video" if p.suffix.lower() in VIDEO_EXT else "audio"
        yield Item(str(p), CREMAD_CODES[m.group(3)], f"cremad-{m.group(1)}", "cremad", kind)


def mead(root: str | Path, malformed: list[str]) -> Iterator[Item]:
    """MEAD clips listed in manifest.csv (file, emotion, subject, has_audio, ...)."""
    root = Path(root)
    with open(root / "manifest.csv", newline="") as f:
        for row in csv.DictReader(f):
            emotion = row.get("emotion", "")
            path = root / row.get("file", "")
            if emotion in MEAD_DROPPED:
                continue
            if emotion not in MEAD_CODES or not path.is_file():
                malformed.append(str(path))
                continue
            kind = "video" if row.get("has_audio") == "1" else "video_only"
            yield Item(str(path), MEAD_CODES[emotion], f"mead-{row['subject']}", "mead", kind)


TAIWANESE_RE = re.compile(r"^(\d\d)(\d)(\d)([a-g])(\d\d)$")


def taiwanese(root: str | Path, malformed: list[str]) -> Iterator[Item]:
    """Taiwanese facial-expression photos PPTVLnn: performer, type, view (1 front), expression letter."""
    for p in _files(Path(root), {".jpg", ".jpeg", ".png"}):
        m = TAIWANESE_RE.match(p.stem)
        if not m:
            malformed.append(str(p))
            continue
        performer, view, letter = m.group(1), m.group(3), m.group(4)
        if view != "1":
            continue  # only front views are used
        emotion = "neutral" if letter == TAIWANESE_NEUTRAL else TAIWANESE_CODES[letter]
        yield Item(str(p), emotion, f"taiwanese-{performer}", "taiwanese", "photo")


JAFFE_RE = re.compile(r"^([A-Z]{2})\.([A-Z]{2})\d+\.\d+$")


def jaffe(root: str | Path, malformed: list[str]) -> Iterator[Item]:
    """JAFFE photos KA.AN1.39: subject, two-letter expression (NE neutral)."""
    for p in _files(Path(root), {".tiff", ".tif"}):
        m = JAFFE_RE.match(p.stem)
        if not m or m.group(2) not in JAFFE_CODES.keys() | {JAFFE_NEUTRAL}:
            malformed.append(str(p))
            continue
        emotion = "neutral" if m.group(2) == JAFFE_NEUTRAL else JAFFE_CODES[m.group(2)]
        yield Item(str(p), emotion, f"jaffe-{m.group(1)}", "jaffe", "photo")


def fer2013(root: str | Path, malformed: list[str]) -> Iterator[Item]:
    """FER2013 faces listed in manifest.csv (file, emotion with our names, source_label): still photos, each in one
    of FER2013_GROUPS hash groups (its "subject"); no neutral photo of the same person exists, so their training
    sequences hold the expression (train.face_sequences.held_sequence)."""
    root = Path(root)
    with open(root / "manifest.csv", newline="") as f:
        for row in csv.DictReader(f):
            path = root / row.get("file", "")
            if row.get("emotion") not in EMOTIONS or not path.is_file():
                malformed.append(str(path))
                continue
            group = int(hashlib.sha256(row["file"].encode()).hexdigest()[:8], 16) % FER2013_GROUPS
            yield Item(str(path), row["emotion"], f"fer2013-g{group:02d}", "fer2013", "photo")


def _speech(root: str | Path, malformed: list[str], pattern: re.Pattern, codes: dict[str, str], dropped: set[str],
            dataset: str) -> Iterator[Item]:
    """An audio-only corpus whose file names give the speaker (group 'speaker') and emotion (group 'emotion')."""
    for p in _files(Path(root), AUDIO_EXT):
        m = pattern.match(p.stem)
        if not m or m.group("emotion") not in codes.keys() | dropped:
            malformed.append(str(p))
        elif m.group("emotion") not in dropped:
            yield Item(str(p), codes[m.group("emotion")], f"{dataset}-{m.group('speaker')}", dataset, "audio")


EMODB_RE = re.compile(r"^(?P<speaker>\d\d)[ab]\d\d(?P<emotion>[A-Z])[a-z]$")
EMOVO_RE = re.compile(r"^(?P<emotion>[a-z]{3})-(?P<speaker>[fm]\d)-\w+$")
NEMO_RE = re.compile(r"^(?P<speaker>[A-Z]{2}\d)_(?P<emotion>[a-z]+)_\d+$")


def emodb(root: str | Path, malformed: list[str]) -> Iterator[Item]:
    """EmoDB 03a01Fa: speaker, text, emotion letter, version."""
    return _speech(root, malformed, EMODB_RE, EMODB_CODES, EMODB_DROPPED, "emodb")


def emovo(root: str | Path, malformed: list[str]) -> Iterator[Item]:
    """EMOVO dis-f1-b1: emotion, speaker, sentence."""
    return _speech(root, malformed, EMOVO_RE, EMOVO_CODES, EMOVO_DROPPED, "emovo")


def nemo(root: str | Path, malformed: list[str]) -> Iterator[Item]:
    """nEMO EB0_anger_13: speaker, emotion, take."""
    return _speech(root, malformed, NEMO_RE, NEMO_CODES, NEMO_DROPPED, "nemo")


def taiwanese_ratings(root: str | Path) -> dict[str, str]:
    """{photo stem: emotion most observers saw} from the database's Image_info.xls (maxIntCategory)."""
    import pandas as pd

    table = pd.read_excel(Path(root) / "Image_info.xls", engine="xlrd").iloc[1:]  # row 0 repeats the header
    names = {1: "happy", 2: "sad", 3: "angry", 4: "disgust", 5: "fearful", 6: "surprised"}
    out = {}
    for name, category in zip(table["file_name"], table["maxIntCategory"]):
        if isinstance(name, str) and category == category and int(category) in names:
            out[Path(name).stem] = names[int(category)]
    return out


def observers_agree(items: list[Item], sources: dict[str, Path]) -> list[Item]:
    """Drop Taiwanese expressive photos whose observer-rated emotion differs from the posed one.

    Posed and perceived labels disagree often in that database (most for fear); training and testing
    on photos people actually read as the posed emotion removes that label noise.
    """
    if "taiwanese" not in sources or not (Path(sources["taiwanese"]) / "Image_info.xls").is_file():
        return items
    rated = taiwanese_ratings(sources["taiwanese"])
    return [i for i in items if i.dataset != "taiwanese" or i.emotion == "neutral"
            or rated.get(Path(i.path).stem) == i.emotion]


ADAPTERS = {"ravdess": ravdess, "rml": rml, "cremad": cremad, "mead": mead, "taiwanese": taiwanese, "jaffe": jaffe,
            "emodb": emodb, "emovo": emovo, "nemo": nemo, "fer2013": fer2013}


def shared_sources(shared: str | Path, speech_corpora: bool = True, fer2013: bool = False) -> dict[str, Path]:
    """The stand-in datasets in ../shared, by adapter name; `speech_corpora`: with nEMO, EMOVO and EmoDB (voice);
    `fer2013`: with FER2013's faces in the wild (face)."""
    d = Path(shared) / "data"
    sources = {"ravdess": d / "ravdess-speech-16k", "mead": d / "mead-clips", "taiwanese": d / "faces-taiwanese",
               "jaffe": d / "faces-jaffe"}
    if speech_corpora:
        sources.update({c: d / "speech-corpora" / c for c in ("nemo", "emovo", "emodb")})
    if fer2013:
        sources["fer2013"] = d / "faces-fer2013"
    return sources


def detect_sources(data_dir: str | Path) -> dict[str, Path]:
    """Sub-folders of a user's --data folder, matched to adapters by name (e.g. RAVDESS/, RML/, CREMA-D/)."""
    found = {}
    for sub in sorted(Path(data_dir).iterdir()):
        key = re.sub(r"[^a-z0-9]", "", sub.name.lower())
        for name in ADAPTERS:
            if sub.is_dir() and key.startswith(name):
                found[name] = sub
    return found


def index(sources: dict[str, Path]) -> tuple[list[Item], list[str]]:
    """All items of the given datasets, and the names that did not parse."""
    items: list[Item] = []
    malformed: list[str] = []
    for name, root in sources.items():
        items.extend(ADAPTERS[name](root, malformed))
    return items, malformed
