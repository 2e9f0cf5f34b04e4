"""Stage `train`: fit the model that params.yaml chooses and save it."""

from __future__ import annotations

import pickle
import time
from typing import Any

import pandas as pd
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .common import (
    MODEL_FILE,
    TARGET,
    TRAIN_CSV,
    TRAIN_META,
    TRAIN_METRICS,
    feature_columns,
    load_params,
    write_json,
)

MODELS = ("logistic_regression", "random_forest", "gradient_boosting")


def build_model(params: dict[str, Any]) -> Any:
    name = params.get("model", "logistic_regression")
    options = dict(params.get(name) or {})
    seed = int(params.get("seed", 0))
    if name == "logistic_regression":
        return make_pipeline(StandardScaler(), LogisticRegression(random_state=seed, **options))
    if name == "random_forest":
        return RandomForestClassifier(random_state=seed, n_jobs=1, **options)
    if name == "gradient_boosting":
        return GradientBoostingClassifier(random_state=seed, **options)
    raise SystemExit(f"train.model must be one of {', '.join(MODELS)}, not {name!r}")


def main() -> None:
    params = load_params("train")
    frame = pd.read_csv(TRAIN_CSV)
    model = build_model(params)
    start = time.perf_counter()
    model.fit(frame[feature_columns(list(frame.columns))], frame[TARGET])
    elapsed = time.perf_counter() - start
    MODEL_FILE.parent.mkdir(parents=True, exist_ok=True)
    with MODEL_FILE.open("wb") as fh:
        pickle.dump(model, fh)
    write_json(TRAIN_META, {"model": params.get("model")})
    write_json(TRAIN_METRICS, {"train_time_s": round(elapsed, 4)})
    print(f"train: {params.get('model')} fitted on {len(frame)} rows in {elapsed:.2f} s")


if __name__ == "__main__":
    main()
