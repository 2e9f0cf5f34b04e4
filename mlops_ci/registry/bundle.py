"""The bundle: the deployable directory of one version, and its verification.

A bundle holds the model file, `metadata.json`, `model-card.md`, `samples.csv` (recorded test
rows with the predictions the pipeline made on them) and `SHA256SUMS` (sha256 of every other
file, in the format `sha256sum -c` reads). Everything comes from the repository at the version's
commit through DVC, so any version can be rebuilt later (a rollback on a fresh runner).

`python -m mlops_ci.registry.bundle check-predictions DIR` is the fresh process the deploy step starts:
it loads the model, predicts on the samples and prints what it found as JSON.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from mlops_ci import __version__
from mlops_ci.ci import documents
from mlops_ci.ci.tokens import without_write_tokens
from mlops_ci.compare.snapshot import flatten
from mlops_ci.project.dvcfile import lock_entries
from mlops_ci.project.errors import ConfigError, ServiceError, VerificationFailed
from mlops_ci.project.settings import Settings, load_settings
from mlops_ci.registry.registry import read_verdict

CHECKSUMS = "SHA256SUMS"
METADATA = "metadata.json"
MODEL_CARD = "model-card.md"
SAMPLES = "samples.csv"
SAMPLE_ROWS = 50
# The pipeline records scores rounded to 6 decimals; a reloaded model must land within this.
SCORE_ATOL = 1e-5
# Numeric predictions match when |new - recorded| <= atol + rtol * |recorded| (numpy.isclose):
# another BLAS or summation order moves a regression output by ~1e-14, never by 1e-6.
PREDICTION_RTOL = 1e-6
PREDICTION_ATOL = 1e-6
ID_COLUMN = "id"
TARGET_COLUMN = "target"


# Where the reference pipeline writes them; `model`, `predictions` and `test_data` of
# mlops-ci.yaml say where a project's are.
DEFAULT_MODEL = "models/model.pkl"
DEFAULT_PREDICTIONS = "eval/predictions.csv"
DEFAULT_TEST_DATA = "data/prepared/test.csv"


def work_path(parent: Path, prefix: str) -> Path:
    """A temporary name beside the final one, `<prefix>.<host>.<pid>.<random>`: whoever finds
    it after a crash can tell whether the process that made it is still running."""
    return parent / f"{prefix}.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"


def remove_stale_work(parent: Path, prefix: str) -> None:
    """Remove the temporary copies and links that killed runs on this host left under
    `parent` (their process is gone); another process's work in progress is left alone."""
    host = socket.gethostname()
    for path in parent.glob(f"{glob.escape(prefix)}.*"):
        owner = path.name[len(prefix) + 1 :].rsplit(".", 2)
        if len(owner) != 3 or owner[0] != host or not owner[1].isdigit():
            continue
        if _running(int(owner[1])):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checksums(bundle_dir: Path) -> None:
    lines = [
        f"{sha256_file(p)}  {p.relative_to(bundle_dir).as_posix()}\n"
        for p in sorted(bundle_dir.rglob("*"))
        if p.is_file() and p.name != CHECKSUMS
    ]
    (bundle_dir / CHECKSUMS).write_text("".join(lines), encoding="utf-8")


def checksum_problems(bundle_dir: Path) -> list[str]:
    """Every way the directory differs from its `SHA256SUMS`; empty when it is intact."""
    sums = bundle_dir / CHECKSUMS
    if not sums.is_file():
        return [f"{CHECKSUMS} is missing"]
    listed: dict[str, str] = {}
    for line in sums.read_text(encoding="utf-8").splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    problems = []
    for name, digest in listed.items():
        path = bundle_dir / PurePosixPath(name)
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif sha256_file(path) != digest:
            problems.append(f"{name} does not match its sha256")
    present = {
        p.relative_to(bundle_dir).as_posix()
        for p in bundle_dir.rglob("*")
        if p.is_file() and p.name != CHECKSUMS
    }
    problems += [f"{name} is not listed in {CHECKSUMS}" for name in sorted(present - set(listed))]
    return problems


# --- building ---------------------------------------------------------------------------------


def _show_data(shown: dict[str, Any]) -> dict[str, Any]:
    """DVC's `metrics.show()` / `params.show()` of one revision, as {file: data}."""
    files = next(iter(shown.values()), {}).get("data", {}) if shown else {}
    return {name: entry["data"] for name, entry in files.items() if entry.get("data")}


def _lineage(lock: bytes | None) -> list[dict[str, Any]]:
    """Every dep and out digest of `dvc.lock`: the data, code and model a version came from."""
    return [
        {"stage": e.stage, "role": e.role, "path": e.path, "md5": e.digest, "size": e.size}
        for e in lock_entries(lock)
    ]


@dataclass
class _Sources:
    model: bytes
    test_csv: bytes | None  # None when deploy.verify is not `predictions`
    predictions_csv: bytes | None
    lock: bytes | None
    params: dict[str, Any]
    metrics: dict[str, Any]


def _read_sources(
    repo_dir: Path, sha: str, *, model: str, test_data: str | None, predictions: str | None
) -> _Sources:
    """Read everything at `sha` through one DVC repo: git files from git, outputs from cache."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(repo_dir), rev=sha) as repo:
            fs = repo.dvcfs

            def read(path: str) -> bytes:
                if not fs.exists(path):
                    raise ConfigError(
                        f"{path} does not exist at {sha[:12]}; check `model`, `predictions` and "
                        f"`test_data` in mlops-ci.yaml (defaults: {DEFAULT_MODEL}, "
                        f"{DEFAULT_PREDICTIONS}, {DEFAULT_TEST_DATA}), or set `deploy.verify: "
                        "checksums` for a model without a tabular test set"
                    )
                try:
                    with fs.open(path, "rb") as fh:
                        return fh.read()
                except FileNotFoundError as exc:
                    # DVC's "No storage files available": neither the cache nor a remote has it.
                    raise ConfigError(
                        f"{path} of {sha[:12]} is neither in the DVC cache nor on a reachable DVC "
                        f"remote ({exc}); set `remote:` in mlops-ci.yaml or MLOPS_CI_REMOTE_URL "
                        "to the shared remote, or fetch the outputs with `dvc pull`"
                    ) from exc

            return _Sources(
                model=read(model),
                test_csv=read(test_data) if test_data else None,
                predictions_csv=read(predictions) if predictions else None,
                lock=read("dvc.lock") if fs.exists("dvc.lock") else None,
                params=_show_data(repo.params.show()),
                metrics=_show_data(repo.metrics.show()),
            )
    except DvcException as exc:
        raise ServiceError(
            f"DVC cannot read the outputs of {sha[:12]}: {exc}; fetch them with `dvc pull` "
            "(or `mlops-ci train --pull`) and retry"
        ) from exc


def _samples(test_csv: bytes, predictions_csv: bytes, rows: int) -> tuple[Any, list[str]]:
    """Evenly spaced recorded test rows joined with the predictions made on them."""
    import io

    import numpy as np
    import pandas as pd

    test = pd.read_csv(io.BytesIO(test_csv))
    preds = pd.read_csv(io.BytesIO(predictions_csv))
    for name, frame in (("test data", test), ("predictions", preds)):
        if ID_COLUMN not in frame.columns:
            raise ConfigError(f"the {name} file has no `{ID_COLUMN}` column to pair rows by")
    features = [c for c in test.columns if c not in (ID_COLUMN, TARGET_COLUMN)]
    recorded = [c for c in ("y_pred", "y_score") if c in preds.columns]
    if not recorded:
        raise ConfigError("the predictions file needs a `y_pred` or `y_score` column")
    joined = test[[ID_COLUMN, *features]].merge(preds[[ID_COLUMN, *recorded]], on=ID_COLUMN)
    if joined.empty:
        raise ConfigError("no id is in both the test data and the predictions file")
    keep = np.unique(np.linspace(0, len(joined) - 1, min(rows, len(joined))).round().astype(int))
    return joined.iloc[keep].reset_index(drop=True), features


def baseline_words(base: dict[str, Any]) -> str | None:
    """The baseline in words: "the version in stage production, commit 1a2b3c4d5e6f",
    "the merge-base with main, commit ...", "the tip of main, ...", "v1.2, ..."."""
    how, ref, sha = str(base.get("how") or ""), base.get("ref"), base.get("sha")
    if how.startswith("stage:"):
        what = f"the version in stage {how.removeprefix('stage:')}"
    elif how == "merge-base" and ref:
        what = f"the merge-base with {ref}"
    elif how == "base" and ref:
        what = f"the tip of {ref}"
    elif how == "previous" and ref:
        what = f"the previous commit ({ref})"
    else:
        what = str(ref or how or "")
    commit = f"commit {str(sha)[:12]}" if sha else ""
    return ", ".join(p for p in (what, commit) if p) or None


def _card_metrics(
    metrics: dict[str, Any], comparison: dict[str, Any] | None, sha: str
) -> tuple[list[dict[str, Any]], str | None]:
    rows_by_name: dict[str, dict[str, Any]] = {}
    baseline_ref = None
    if comparison and (comparison.get("candidate") or {}).get("sha") == sha:
        rows_by_name = {row["name"]: row for row in comparison.get("metrics") or []}
        base = comparison.get("baseline") or {}
        baseline_ref = baseline_words(base)
    flat: dict[str, Any] = {}
    for data in metrics.values():
        flat.update(flatten(data))
    rows = []
    for name, value in flat.items():
        row = rows_by_name.get(name, {})
        rows.append(
            {
                "name": name,
                "value": value,
                "baseline": row.get("baseline"),
                "delta": row.get("delta"),
                "ci_low": row.get("ci_low"),
                "ci_high": row.get("ci_high"),
            }
        )
    return rows, baseline_ref


def render_model_card(context: dict[str, Any]) -> str:
    from mlops_ci.report.templating import render

    return render("model-card.md.j2", **context)


def build_bundle(
    repo_dir: Path,
    run_dir: Path,
    *,
    version: str,
    sha: str,
    settings: Settings | None = None,
    sample_rows: int = SAMPLE_ROWS,
) -> Path:
    """Build the bundle of `version` (commit `sha`) under `<run_dir>/bundles/` and return it."""
    settings = settings or load_settings(repo_dir)
    artifact, model_path = settings.artifact, settings.model or DEFAULT_MODEL
    by_rows = settings.deploy.verify == "predictions"
    sources = _read_sources(
        repo_dir,
        sha,
        model=model_path,
        test_data=(settings.test_data or DEFAULT_TEST_DATA) if by_rows else None,
        predictions=(settings.predictions or DEFAULT_PREDICTIONS) if by_rows else None,
    )
    if sources.test_csv is not None and sources.predictions_csv is not None:
        samples, features = _samples(sources.test_csv, sources.predictions_csv, sample_rows)
    else:  # deploy.verify: checksums or command; no test rows are recorded
        samples, features = None, []
    verdict = read_verdict(run_dir, sha)
    comparison = documents.read(run_dir, "comparison.json", required=False)
    created_at = documents.now()
    model_file = PurePosixPath(model_path).name
    params: dict[str, Any] = {}
    for data in sources.params.values():
        params.update(flatten(data))
    metrics_rows, baseline_ref = _card_metrics(sources.metrics, comparison, sha)
    lineage = _lineage(sources.lock)
    metadata = {
        **documents.header("bundle"),
        "artifact": artifact,
        "version": version,
        "git_sha": sha,
        "created_at": created_at,
        "model": {"file": model_file, "path": model_path, "format": "pickle"},
        "dvc_lock": lineage,
        "params": sources.params,
        "metrics": sources.metrics,
        "verdict": (
            {k: verdict.get(k) for k in ("verdict", "summary", "baseline_sha")} if verdict else None
        ),
        # The merged pull request's waivers for its final head (docs/review.md).
        "waivers": [w for w in (verdict or {}).get("pr_waivers") or [] if isinstance(w, dict)],
        "verification": _verification_without_rows(settings)
        if samples is None
        else {
            "file": SAMPLES,
            "rows": len(samples),
            "id": ID_COLUMN,
            "features": features,
            "score_atol": SCORE_ATOL,
            "rtol": PREDICTION_RTOL,
            "atol": PREDICTION_ATOL,
        },
    }
    card = render_model_card(
        {
            "artifact": artifact,
            "version": version,
            "sha": sha,
            "created_at": created_at,
            "model_file": model_file,
            "model_format": "pickle",
            "tool_version": __version__,
            "intended_use": settings.intended_use,
            "verdict": metadata["verdict"],
            "waivers": metadata["waivers"],
            "metrics": metrics_rows,
            "baseline_ref": baseline_ref,
            "confidence": float((comparison or {}).get("confidence") or 0.95),
            "params": sorted(params.items()),
            "lineage": lineage,
            "sample_rows": 0 if samples is None else len(samples),
            "samples_file": SAMPLES,
            "checksums_file": CHECKSUMS,
        }
    )
    parent = run_dir / "bundles"
    parent.mkdir(parents=True, exist_ok=True)
    dest = parent / f"{artifact.replace('/', '-')}-{version}"
    # Built beside its final place and renamed in, so a half-written bundle is never seen.
    remove_stale_work(parent, f".{dest.name}")
    work = work_path(parent, f".{dest.name}")
    work.mkdir()
    (work / model_file).write_bytes(sources.model)
    if samples is not None:
        samples.to_csv(work / SAMPLES, index=False)
    (work / METADATA).write_text(json.dumps(metadata, indent=2, default=str) + "\n")
    (work / MODEL_CARD).write_text(card, encoding="utf-8")
    write_checksums(work)
    if dest.exists():
        shutil.rmtree(dest)
    work.rename(dest)
    return dest


# --- verification -----------------------------------------------------------------------------


def _verification_without_rows(settings: Settings) -> dict[str, Any]:
    """`metadata.json`'s verification for a model without a tabular test set."""
    if settings.deploy.verify == "command":
        return {"mode": "command", "command": settings.deploy.verify_command, "rows": 0}
    return {"mode": "checksums", "rows": 0}


def verify_bundle(
    bundle_dir: Path, *, env: Mapping[str, str], timeout: float = 300
) -> dict[str, Any]:
    """Checksums, then predictions in a fresh interpreter; raises `VerificationFailed`.
    The interpreter (or deploy.verify_command) runs in `env` without its write tokens."""
    problems = checksum_problems(bundle_dir)
    if problems:
        raise VerificationFailed(
            f"bundle {bundle_dir} is corrupted: {'; '.join(problems[:5])}; "
            "rebuild it with `mlops-ci deploy` (nothing was switched)"
        )
    mode = _verification_mode(bundle_dir)
    if mode.get("mode") == "checksums":
        return {"checksums": "ok", "mode": "checksums", "rows": 0}
    if mode.get("mode") == "command":
        return _verify_by_command(bundle_dir, str(mode.get("command") or ""), timeout, env)
    # cwd is the bundle: a project directory may hold its own `mlops_ci/` stage package.
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "mlops_ci.registry.bundle",
                "check-predictions",
                str(bundle_dir),
            ],
            cwd=bundle_dir,
            env=without_write_tokens(env),  # unpickling the model runs its code
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise VerificationFailed(
            f"loading bundle {bundle_dir} and predicting took over {timeout:.0f} s"
        ) from exc
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        raise VerificationFailed(
            f"the model in {bundle_dir} could not be loaded in a fresh process: "
            f"{proc.stderr.strip()[-800:]}"
        ) from None
    if result.get("mismatches"):
        largest = result.get("max_abs_diff")
        how = (
            f"largest absolute difference {largest:.3g} in {result['checked']}"
            if isinstance(largest, int | float)
            else f"different labels in {result['checked']}"
        )
        raise VerificationFailed(
            f"the model in {bundle_dir} predicts differently from the recorded predictions on "
            f"{result['mismatches']} of {result['rows']} test rows ({how}; tolerance "
            f"rtol={result.get('rtol')}, atol={result.get('atol')}); the model file and "
            "eval predictions are out of step: rerun the pipeline (`dvc repro`) and commit"
        )
    return {"checksums": "ok", **result}


def _verification_mode(bundle_dir: Path) -> dict[str, Any]:
    """The bundle's recorded verification (bundles without a `mode` verify by predictions)."""
    try:
        meta = json.loads((bundle_dir / METADATA).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise VerificationFailed(f"bundle {bundle_dir} has no readable {METADATA}: {exc}") from exc
    check = meta.get("verification") if isinstance(meta, dict) else None
    return check if isinstance(check, dict) else {}


def _verify_by_command(
    bundle_dir: Path, command: str, timeout: float, env: Mapping[str, str]
) -> dict[str, Any]:
    """deploy.verify: command: the program checks the bundle (it may load the model, so it
    gets no write token); a non-zero exit fails the deploy before the switch."""
    import shlex

    argv = shlex.split(command)
    if not argv:
        raise VerificationFailed("deploy.verify is command but deploy.verify_command is empty")
    if any("{bundle}" in a for a in argv):
        argv = [a.replace("{bundle}", str(bundle_dir)) for a in argv]
    else:
        argv.append(str(bundle_dir))
    try:
        proc = subprocess.run(
            argv,
            cwd=bundle_dir,
            env={**without_write_tokens(env), "MLOPS_CI_BUNDLE": str(bundle_dir)},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VerificationFailed(f"deploy.verify_command {argv[0]} could not run: {exc}") from exc
    if proc.returncode != 0:
        raise VerificationFailed(
            f"deploy.verify_command exited {proc.returncode} on {bundle_dir} (nothing was "
            f"switched): {(proc.stderr or proc.stdout).strip()[-800:]}"
        )
    return {"checksums": "ok", "mode": "command", "rows": 0, "command": argv[0]}


def check_predictions(bundle_dir: Path) -> dict[str, Any]:
    """Load the model and compare its predictions with the recorded ones (fresh process)."""
    import pickle

    import numpy as np
    import pandas as pd

    meta = json.loads((bundle_dir / METADATA).read_text(encoding="utf-8"))
    check = meta["verification"]
    with (bundle_dir / meta["model"]["file"]).open("rb") as fh:
        model = pickle.load(fh)  # noqa: S301 - the bundle's own model, checksums verified first
    frame = pd.read_csv(bundle_dir / check["file"])
    features = frame[check["features"]]
    rtol = float(check.get("rtol", PREDICTION_RTOL))
    max_diff: float | None
    if "y_score" in frame.columns and hasattr(model, "predict_proba"):
        proba = np.asarray(model.predict_proba(features))
        new = proba[:, 1] if proba.shape[1] == 2 else proba.max(axis=1)
        recorded = frame["y_score"].to_numpy(dtype=float)
        checked, atol = "y_score", float(check.get("score_atol", SCORE_ATOL))
    else:
        new = np.asarray(model.predict(features))
        recorded = frame["y_pred"].to_numpy()
        checked, atol = "y_pred", float(check.get("atol", PREDICTION_ATOL))
    if _numeric(new) and _numeric(recorded):
        new, recorded = new.astype(float), recorded.astype(float)
        bad = ~np.isclose(new, recorded, rtol=rtol, atol=atol, equal_nan=False)
        diff = np.abs(new - recorded)
        max_diff = float(np.nanmax(diff, initial=0.0)) if np.isfinite(diff).all() else float("inf")
    else:  # class labels that are strings: equal or not
        bad = new.astype(str) != recorded.astype(str)
        max_diff = None
    return {
        "rows": len(frame),
        "checked": checked,
        "mismatches": int(bad.sum()),
        "max_abs_diff": max_diff,
        "rtol": rtol,
        "atol": atol,
        "mismatched_ids": frame.loc[bad, check["id"]].head(10).tolist(),
    }


def _numeric(values: Any) -> bool:
    import numpy as np

    return np.asarray(values).dtype.kind in "iuf"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "check-predictions":
        print(
            "usage: python -m mlops_ci.registry.bundle check-predictions BUNDLE_DIR",
            file=sys.stderr,
        )
        return 2
    result = check_predictions(Path(args[1]))
    print(json.dumps(result, default=str))
    return 0 if result["mismatches"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
