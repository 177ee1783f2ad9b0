"""Hub round trip: dry-run staging, upload against a stand-in HfApi, loading by id from a cache offline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FACE_MODEL, MEAD, ROOT
from emotion.errors import EmotionError
from train import push

WEIGHTS = ROOT / "weights"
# the appearance CNN named in config.json and its licence travel with the weights
EXTRAS = tuple(sorted(f.name for f in WEIGHTS.iterdir() if f.suffix == ".tflite" or "LICENSE" in f.name))
# what config.json's branches and the stacker need, the figures and the card: what goes to the Hub
UPLOAD_FILES = ("config.json", "voice_encoder_head.safetensors", "face_lstm.keras", "fusion_mlp.safetensors", "metrics.json",
                "README.md")


def test_dry_run_writes_exactly_the_upload(tmp_path):
    out = tmp_path / "preview"
    code = push.main(["--repo-id", "someone/emotion", "--weights", str(WEIGHTS), "--dry-run", str(out)])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(UPLOAD_FILES + EXTRAS + (push.STAGING_MARK,))
    card = (out / "README.md").read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == json.loads((WEIGHTS / "metrics.json").read_text())
    # the card parses, and every headline figure of metrics.json is in it: in the YAML and in the table
    from huggingface_hub import ModelCard

    parsed = ModelCard.load(out / "README.md")
    assert parsed.data.license == "cc-by-nc-sa-4.0"
    values = {(r.task_type, r.dataset_type): r.metric_value for r in parsed.data.eval_results}
    for key, m in ((("audio-classification", "ravdess"), metrics["audio"]["by_dataset"]["ravdess"]["cnn"]),
                   (("video-classification", "taiwanese"), metrics["face"]["by_dataset"]["taiwanese"]["lstm"]),
                   (("video-classification", "all"), metrics["fused"]["both"])):
        assert values[key] == m["accuracy_mean"]
        assert f"{m['accuracy_mean']:.1%} ± {m['accuracy_sd']:.1%}" in card
    assert "Limitations" in card and "out-of-fold" in card


class StandInApi:
    """Records what would be sent to the Hub (its servers cannot be reached from here)."""

    def __init__(self, existing: dict[str, str] | None = None):
        self.calls = []
        self.existing = existing or {}

    def repo_exists(self, repo_id, repo_type="model"):
        return self.existing.get(repo_id) == repo_type

    def create_repo(self, repo_id, **kw):
        self.calls.append(("create_repo", repo_id, kw))

    def create_branch(self, repo_id, **kw):
        self.calls.append(("create_branch", repo_id, kw))

    def upload_folder(self, **kw):
        from huggingface_hub.utils import filter_repo_objects  # what the real upload_folder applies

        kw["files"] = sorted(filter_repo_objects([p.name for p in Path(kw["folder_path"]).iterdir()],
                                                 allow_patterns=kw.get("allow_patterns")))
        self.calls.append(("upload_folder", kw["repo_id"], kw))
        return type("Info", (), {"commit_url": f"https://huggingface.co/{kw['repo_id']}/commit/abc"})()


def test_push_sends_the_right_repo_files_and_message(tmp_path):
    api = StandInApi()
    url = push.push(WEIGHTS, "someone/emotion", private=True, revision="v1", message="first weights", api=api)
    assert url.endswith("/commit/abc")
    names = [c[0] for c in api.calls]
    assert names == ["create_repo", "create_branch", "upload_folder"]
    assert api.calls[0][2] == {"repo_type": "model", "private": True, "exist_ok": True}
    upload = api.calls[2][2]
    assert upload["repo_id"] == "someone/emotion" and upload["repo_type"] == "model"
    assert upload["revision"] == "v1" and upload["commit_message"] == "first weights"
    assert upload["files"] == sorted(UPLOAD_FILES + EXTRAS)
    assert not Path(upload["folder_path"]).exists()  # staging folder cleaned up


def test_push_refuses_a_space(tmp_path):
    with pytest.raises(EmotionError) as err:
        push.push(WEIGHTS, "someone/demo", api=StandInApi({"someone/demo": "space"}))
    assert err.value.code == "wrong_repo_type" and "space" in str(err.value)


def test_push_without_token_says_so(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_TOKEN_PATH", str(tmp_path / "token"))
    monkeypatch.setattr(c, "HF_STORED_TOKENS_PATH", str(tmp_path / "stored_tokens"))
    code = push.main(["--repo-id", "someone/emotion", "--weights", str(WEIGHTS)])
    assert code == 1
    assert "No Hugging Face token" in capsys.readouterr().err


def test_push_without_network_says_so(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: like being offline
    code = subprocess.run([sys.executable, "-m", "train.push", "--repo-id", "someone/emotion"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env={**os.environ})
    assert code.returncode == 1
    assert "could not be reached" in code.stderr and "Traceback" not in code.stderr


def fill_cache(cache: Path, repo_id: str, commit: str = "0" * 40) -> None:
    """Lay the weights out the way huggingface_hub caches a downloaded snapshot."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    for f in UPLOAD_FILES + EXTRAS:
        shutil.copy2(WEIGHTS / f, snap / f)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)


def test_from_pretrained_by_id_offline_from_cache(tmp_path):
    fill_cache(tmp_path, "someone/emotion")
    script = ("from emotion import EmotionPipeline\n"
              f"p = EmotionPipeline.from_pretrained('someone/emotion', cache_dir=r'{tmp_path}', face_model=r'{FACE_MODEL}')\n"
              f"print(p.weights_dir)\nprint(p.predict(r'{MEAD / 'W009_front_sad_level3_001.mp4'}').label)\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.strip().splitlines()
    assert "snapshots" in lines[-2] and lines[-1] in {"happy", "sad", "angry", "fearful", "disgust", "surprised"}
    # an id that is not cached gives a clear message offline
    script = "from emotion import EmotionPipeline\nEmotionPipeline.from_pretrained('someone/missing')\n"
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode != 0 and "not in the local cache and offline mode is on" in run.stderr


def test_unknown_config_version_is_refused(tmp_path):
    from emotion.config import PipelineConfig

    data = json.loads((WEIGHTS / "config.json").read_text())
    data["format_version"] = 99
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(EmotionError) as err:
        PipelineConfig.from_json(tmp_path / "config.json")
    assert err.value.code == "config_version" and "99" in str(err.value)


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_dry_run_folder_is_refused_and_nothing_is_uploaded(value, monkeypatch, capsys):
    """`--dry-run "$UNSET"` passes an empty string: it must stop with a message, never take the upload path."""
    import huggingface_hub

    reached = []
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda *a, **k: reached.append("HfApi") or StandInApi())
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: reached.append("token") or "hf_secret")
    with pytest.raises(SystemExit) as stop:
        push.main(["--repo-id", "someone/emotion", "--weights", str(WEIGHTS), "--dry-run", value])
    assert stop.value.code == 2
    assert "--dry-run needs a folder name" in capsys.readouterr().err
    assert reached == []
