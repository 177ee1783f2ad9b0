"""Push trained weights to the Hugging Face Hub, with a model card generated from metrics.json.

    python -m train.push --repo-id USER/NAME [--private] [--revision BRANCH] [--dry-run [DIR]]

The token comes from HF_TOKEN or the login cache (`hf auth login`). --dry-run writes the exact folder
that would be uploaded and lists it, without any network access.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from emotion.config import PipelineConfig
from emotion.errors import EmotionError
from emotion.branches import weight_files
from emotion.hub import WEIGHT_PATTERNS

from .card import write_card

STAGING_MARK = ".emotion-staging"


def prepare_staging(weights: Path, out: Path) -> None:
    """Make `out` an empty folder of ours. Nothing of the user's is ever deleted: a folder is replaced only
    when it is empty or was made by an earlier staging (it holds STAGING_MARK), and never when it is, holds
    or lies inside the weights folder."""
    src, dst = weights.resolve(), out.resolve()
    if dst == src or dst in src.parents or src in dst.parents:
        raise EmotionError(f"The preview folder {out} would overlap the weights folder {weights}; choose another "
                           "folder (for example push_preview).", code="bad_staging")
    if dst.exists():
        if not dst.is_dir():
            raise EmotionError(f"{out} exists and is not a folder; choose another preview folder.", code="bad_staging")
        if any(dst.iterdir()) and not (dst / STAGING_MARK).is_file():
            raise EmotionError(f"{out} already exists and was not made by this tool; it is left untouched. Choose "
                               "another (or an empty) preview folder.", code="bad_staging")
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    (dst / STAGING_MARK).write_text("Made by python -m train.push; replaced by the next --dry-run.\n")


def stage(weights: str | Path, out: str | Path) -> list[Path]:
    """Copy the files to upload into `out` and regenerate the model card from metrics.json + config."""
    weights, out = Path(weights), Path(out)
    files = weight_files(PipelineConfig.from_json(weights / "config.json")) if (weights / "config.json").is_file() \
        else ["config.json"]
    missing = [f for f in files + ["metrics.json"] if not (weights / f).is_file()]
    if missing:
        raise EmotionError(f"{weights} lacks {', '.join(missing)}; train first (python -m train.run).", code="bad_weights")
    prepare_staging(weights, out)
    cfg = PipelineConfig.from_json(weights / "config.json")
    extra = [f.name for f in weights.glob(f"{Path(cfg.appearance_model).stem}*") if f.is_file()] if cfg.appearance_model else []
    for name in files + ["metrics.json", *extra]:
        shutil.copy2(weights / name, out / name)
    metrics = json.loads((out / "metrics.json").read_text())
    write_card(out, metrics, PipelineConfig.from_json(out / "config.json"))
    return sorted(f for f in out.iterdir() if f.name != STAGING_MARK)


def push(weights: str | Path, repo_id: str, private: bool = False, revision: str | None = None,
         message: str = "Upload emotion recognizer weights", api=None, staging: str | Path | None = None) -> str:
    """Create the model repo if needed and upload the staged folder; returns the commit URL."""
    import tempfile

    from huggingface_hub import HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    if api is None:
        token = get_token()
        if not token:
            raise EmotionError("No Hugging Face token: set HF_TOKEN or run `hf auth login` first.", code="no_token")
        api = HfApi(token=token)
    folder = Path(staging or tempfile.mkdtemp(prefix="emotion-push-"))
    stage(weights, folder)
    try:
        for other in ("space", "dataset"):
            if api.repo_exists(repo_id, repo_type=other) and not api.repo_exists(repo_id, repo_type="model"):
                raise EmotionError(f"{repo_id} is a {other} repo, not a model repo; choose another name.",
                                   code="wrong_repo_type")
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        if revision:
            api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model", revision=revision,
                                 commit_message=message, allow_patterns=[*WEIGHT_PATTERNS, "README.md"])
    except EmotionError:
        raise
    except RepositoryNotFoundError:
        raise EmotionError(f"{repo_id} cannot be created or written with this token.", code="hub") from None
    except HfHubHTTPError as exc:
        raise EmotionError(f"The Hub refused the upload: {exc}", code="hub") from None
    except OSError as exc:  # connection errors (httpx's are OSError subclasses) and the like
        raise EmotionError(f"The Hugging Face Hub could not be reached ({exc.__class__.__name__}). "
                           "Check your internet connection.", code="network") from None
    except Exception as exc:
        if exc.__class__.__module__.startswith(("httpx", "httpcore", "requests")):
            raise EmotionError(f"The Hugging Face Hub could not be reached ({exc.__class__.__name__}). "
                               "Check your internet connection.", code="network") from None
        raise
    finally:
        if staging is None:
            shutil.rmtree(folder, ignore_errors=True)
    return str(getattr(info, "commit_url", info))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.push", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo-id", required=True, help="USER/NAME of the model repo")
    p.add_argument("--weights", default="weights")
    p.add_argument("--private", action="store_true")
    p.add_argument("--revision", help="branch to push to (created if missing)")
    p.add_argument("--message", default="Upload emotion recognizer weights")
    p.add_argument("--dry-run", nargs="?", const="push_preview", metavar="DIR",
                   help="write the folder that would be uploaded (default push_preview/) and list it")
    args = p.parse_args(argv)
    if args.dry_run is not None and not args.dry_run.strip():
        # An unset shell variable (`--dry-run "$DIR"`) must never turn a preview into a real upload.
        p.error("--dry-run needs a folder name (or no value at all for push_preview/); an empty one is refused")
    try:
        if args.dry_run is not None:
            files = stage(args.weights, args.dry_run)
            print(f"Would upload to {args.repo_id} (model repo{', private' if args.private else ''}"
                  f"{', branch ' + args.revision if args.revision else ''}):")
            for f in files:
                print(f"  {f.name}  ({f.stat().st_size:,} bytes)")
            return 0
        url = push(args.weights, args.repo_id, args.private, args.revision, args.message)
    except EmotionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Pushed: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
