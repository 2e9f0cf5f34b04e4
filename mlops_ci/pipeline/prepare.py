"""Stage `prepare`: load a data set, keep a stable row id, split train/test with a fixed seed."""

from __future__ import annotations

import pandas as pd
from sklearn.datasets import load_breast_cancer, make_classification
from sklearn.model_selection import train_test_split

from .common import ID, PREPARED_DIR, TARGET, TEST_CSV, TRAIN_CSV, load_params


def load_frame(params: dict) -> pd.DataFrame:
    source = params.get("source", "breast_cancer")
    seed = int(params.get("seed", 0))
    if source == "breast_cancer":
        features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    elif source == "synthetic":
        n_features = int(params.get("n_features", 20))
        data, labels = make_classification(
            n_samples=int(params.get("n_samples", 10_000)),
            n_features=n_features,
            n_informative=max(2, n_features // 2),
            flip_y=float(params.get("label_noise", 0.05)),
            random_state=seed,
        )
        features = pd.DataFrame(data, columns=[f"f{i}" for i in range(n_features)])
        target = pd.Series(labels)
    else:
        raise SystemExit(f"data.source must be 'breast_cancer' or 'synthetic', not {source!r}")
    frame = features.copy()
    # A stable id lets later runs pair the same test rows (paired bootstrap in `compare`).
    frame.insert(0, ID, range(len(frame)))
    frame[TARGET] = target.to_numpy()
    return frame


def main() -> None:
    params = load_params("data")
    frame = load_frame(params)
    train, test = train_test_split(
        frame,
        test_size=float(params.get("test_size", 0.25)),
        random_state=int(params.get("seed", 0)),
        stratify=frame[TARGET],
    )
    PREPARED_DIR.mkdir(parents=True, exist_ok=True)
    train.sort_values(ID).to_csv(TRAIN_CSV, index=False)
    test.sort_values(ID).to_csv(TEST_CSV, index=False)
    print(f"prepare: {len(train)} train rows, {len(test)} test rows")


if __name__ == "__main__":
    main()
