"""What the stages share: params, paths, small I/O helpers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

PARAMS_FILE = Path("params.yaml")
PREPARED_DIR = Path("data/prepared")
TRAIN_CSV = PREPARED_DIR / "train.csv"
TEST_CSV = PREPARED_DIR / "test.csv"
MODEL_FILE = Path("models/model.pkl")
TRAIN_META = Path("models/train_meta.json")
# Wall-clock timing is noise: kept out of the cached outputs, so that equal inputs give equal
# hashes on every runner and a fresh runner restores the stage instead of re-running it.
TRAIN_METRICS = Path("eval/train_metrics.json")
METRICS_FILE = Path("eval/metrics.json")
PREDICTIONS_FILE = Path("eval/predictions.csv")
PLOTS_DIR = Path("eval/plots")
TARGET = "target"
ID = "id"


def load_params(section: str) -> dict[str, Any]:
    """One section of params.yaml; a missing section is an error that names it."""
    params = yaml.safe_load(PARAMS_FILE.read_text()) or {}
    if section not in params or not isinstance(params[section], dict):
        raise SystemExit(f"params.yaml has no '{section}' section (a mapping) for this stage")
    return params[section]


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def feature_columns(columns: list[str]) -> list[str]:
    return [c for c in columns if c not in (ID, TARGET)]
