"""Per-sample predictions from a confusion-matrix plot, for projects without a predictions file.

DVCLive's `log_sklearn_plot("confusion_matrix", y_true, y_pred)` writes one row per test sample,
`{"actual": ..., "predicted": ...}`, and declares the file as a `confusion` plot; DVC's
confusion templates count rows, so any plot drawn with them holds one row per sample too. Those
rows are labels-only predictions: accuracy, precision, recall and f1 can be bootstrapped from
them exactly as from a predictions file (`decide.predictions_family`).

- **Which file.** Only a file that is a confusion plot with `x` (actual) and `y` (predicted)
  fields at both revisions. Files are never pooled: with several (train and test, say) the one
  whose name says test, eval or val is used when exactly one does; otherwise none, and a warning
  says why. A lone file whose name says train is not used either.
- **Rows, not counts.** Rows that carry a count (a field named count, n, weight...) or list each
  (actual, predicted) cell once beside other fields are a pre-aggregated matrix: not used.
- **Pairing.** Rows have no ids, so their position is their id: `stats` pairs the revisions only
  when both hold the same number of rows with the same actual label at every position (the same
  test set in the same order), and resamples them apart otherwise.
- **Labels.** DVCLive writes labels as text (`"0"`, `"1"`): whole numbers are read as numbers
  (0/1 is binary, label 1 positive, as scikit-learn's default); any other text has no positive
  class, so its labels are coded from 2 on and precision, recall and f1 are macro averages.
- **Which rows an interval joins.** The policy never named this file, so an interval from it
  joins a metric row only when that row's values are the plot's (`matches`): a `train/f1` is not
  given the interval of the test set's f1.
"""

from __future__ import annotations

import csv
import io
import math
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops_ci.compare.plot_data import PLOT_DATA_SUFFIXES, plot_table, short
from mlops_ci.project.dvcfile import PlotDef

# The metrics labels alone give (no scores): the ones an interval from a plot is computed for.
LABEL_METRICS = ("accuracy", "precision", "recall", "f1")
# Words of a file's name that say it holds the evaluation split, or the training split.
HELD_OUT_WORDS = frozenset(
    {"test", "tests", "testing", "eval", "evaluate", "evaluation", "val", "valid", "validation",
     "holdout"}
)  # fmt: skip
TRAIN_WORDS = frozenset({"train", "training", "fit"})
# Fields that make a row a cell of a pre-aggregated matrix rather than one sample.
COUNT_FIELDS = frozenset(
    {"count", "counts", "n", "num", "number", "total", "value", "values", "weight", "weights",
     "freq", "frequency", "support", "samples", "xy_count"}
)  # fmt: skip
MAX_PATH = 512  # comparison.json's limit on a path it names
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")  # what comparison.json's text refuses
# DVCLive's folder for its scikit-learn plots: below it is the name the user gave the plot.
DVCLIVE_SKLEARN = "plots/sklearn/"


class NotPerSample(ValueError):
    """A confusion plot's rows are not one row per sample."""


@dataclass(frozen=True)
class ConfusionFile:
    """One data file of a confusion plot at one revision, with the fields its plot reads."""

    path: str
    actual: str  # the plot's x field
    predicted: str  # the plot's y field
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class PlotPredictions:
    """Both revisions' predictions read from one confusion plot file."""

    path: str
    baseline: Any  # predictions.Predictions
    candidate: Any

    @property
    def paired(self) -> bool:
        """Whether `stats` pairs them: row numbers are their ids, so the same number of rows
        with the same actual label at each position."""
        from mlops_ci.compare.numeric import np

        base, cand = self.baseline.y_true, self.candidate.y_true
        return len(base) == len(cand) and bool(np.array_equal(base, cand))

    def note(self) -> str:
        """Where the intervals come from and whether the rows pair (for the warnings)."""
        n_base, n_cand = len(self.baseline), len(self.candidate)
        how = (
            f"paired: both revisions hold the same {n_base} rows with the same actual labels "
            "in the same order"
            if self.paired
            else f"unpaired: the revisions' rows differ ({n_base} and {n_cand} rows, or other "
            "actual labels in some position)"
        )
        return (
            f"confidence intervals of {', '.join(LABEL_METRICS)} come from the per-sample rows "
            f"of the confusion plot {self.path} (no `predictions:` file is set), {how}"
        )

    def joins(self, warnings: list[str], row: Mapping[str, Any], ci: Any) -> bool:
        """Whether an interval from these rows is the metric row's own: the row's values are
        the plot's (`matches`); else a warning says why the row has none."""
        if matches(row["baseline"], ci.baseline) and matches(row["candidate"], ci.candidate):
            return True
        name = _CONTROL.sub(" ", str(row["name"])[:300])  # a key of a metrics file: any text
        warnings.append(
            f"no confidence interval for {name}: its values ({row['baseline']:.6g} → "
            f"{row['candidate']:.6g}) are not the {ci.metric} of the confusion plot {self.path} "
            f"({ci.baseline:.6g} → {ci.candidate:.6g})"
        )
        return False


def confusion_files(
    plot_defs: Iterable[PlotDef],
    contents: Mapping[str, bytes | None],
    unreadable: Callable[[str], bool] = lambda _: False,
) -> dict[str, ConfusionFile]:
    """path -> the data file of every confusion plot (DVC's `confusion` templates, `x` and `y`
    fields set) that this revision holds; a file in two plots keeps the first's fields. A path
    comparison.json could not name (`family.source`: printable, at most 512 characters) is
    left out."""
    out: dict[str, ConfusionFile] = {}
    for plot in plot_defs:
        if plot.image or not plot.template.startswith("confusion"):
            continue
        for path in plot.files:
            actual, predicted = plot.x_field(path), plot.y_fields(path)
            data = contents.get(path)
            if (
                path in out or data is None or not actual or len(predicted) != 1
                or posixpath.splitext(path)[1] not in PLOT_DATA_SUFFIXES or unreadable(path)
                or len(path) > MAX_PATH or not path.isprintable()
            ):  # fmt: skip
                continue
            out[path] = ConfusionFile(path, actual, predicted[0], data)
    return out


def plot_predictions(
    baseline: Mapping[str, ConfusionFile],
    candidate: Mapping[str, ConfusionFile],
    warnings: list[str],
) -> PlotPredictions | None:
    """Both revisions' rows of the one confusion plot file fit to give intervals (see the
    module's rules); None, with a warning when a plot was there but could not serve."""
    shared = sorted(set(baseline) & set(candidate))
    if not shared:
        return None  # no confusion plot: numpy stays unloaded
    from mlops_ci.compare.predictions import MAX_CLASSES, InvalidPredictions, Predictions

    path, why = choose_file(shared)
    if path is None:
        warnings.append(f"no confidence intervals from confusion plots: {why}")
        return None
    try:
        base_actual, base_pred = sample_labels(baseline[path])
        cand_actual, cand_pred = sample_labels(candidate[path])
    except NotPerSample as exc:
        warnings.append(f"no confidence intervals from the confusion plot {path}: {exc}")
        return None
    codes = label_codes([*base_actual, *base_pred, *cand_actual, *cand_pred])
    if len(codes) > MAX_CLASSES:
        warnings.append(
            f"no confidence intervals from the confusion plot {path}: its rows hold "
            f"{len(codes)} distinct labels, more than {MAX_CLASSES} classes"
        )
        return None
    try:
        sides = [
            Predictions.from_arrays(
                [codes[a] for a in actual], [codes[p] for p in pred], source=f"{path}@{side}"
            )
            for actual, pred, side in (
                (base_actual, base_pred, "baseline"), (cand_actual, cand_pred, "candidate")
            )
        ]  # fmt: skip
    except InvalidPredictions as exc:
        warnings.append(f"no confidence intervals from the confusion plot {path}: {exc}")
        return None
    return PlotPredictions(path, sides[0], sides[1])


def choose_file(paths: list[str]) -> tuple[str | None, str | None]:
    """(the file to read, None) or (None, why none is): the only file unless its name says
    train; of several, the one whose name says test, eval or val, when exactly one does."""
    names = distinguishing_names(paths)
    if len(paths) == 1:
        (path,) = paths
        if _words(names[path]) & TRAIN_WORDS:
            return None, f"the only one, {path}, is of the training set"
        return path, None
    held_out = [p for p in paths if _words(names[p]) & HELD_OUT_WORDS]
    if len(held_out) == 1:
        return held_out[0], None
    shown = ", ".join(paths[:5]) + (" ..." if len(paths) > 5 else "")
    which = "none" if not held_out else f"{len(held_out)}"
    return None, (
        f"{len(paths)} files ({shown}) and {which} of them named test, eval or val; rows of "
        "different sets are never pooled: name the evaluation file so, or set `predictions:`"
    )


def distinguishing_names(paths: list[str]) -> dict[str, str]:
    """The part of each path that tells it from the others: below their common directory (of
    one path, the name DVCLive gave it, else its file name)."""
    if len(paths) == 1:
        (path,) = paths
        at = path.rfind(DVCLIVE_SKLEARN)
        return {path: path[at + len(DVCLIVE_SKLEARN) :] if at >= 0 else posixpath.basename(path)}
    common = posixpath.commonpath([posixpath.dirname(p) for p in paths])
    cut = len(common) + 1 if common else 0
    return {p: p[cut:] for p in paths}


def _words(name: str) -> set[str]:
    stem = posixpath.splitext(name)[0]
    return {w for w in re.split(r"[^a-z0-9]+", stem.lower()) if w}


def sample_labels(file: ConfusionFile) -> tuple[list[str], list[str]]:
    """The actual and predicted label of each row, as text (DVCLive's form); NotPerSample when
    the file cannot be read or its rows are cells of a matrix rather than samples."""
    try:
        rows = _rows(file)
    except (ValueError, UnicodeDecodeError, csv.Error) as exc:
        raise NotPerSample(f"cannot be read ({short(exc)})") from exc
    except Exception as exc:  # ruamel's own errors: the file is not valid YAML
        raise NotPerSample(f"cannot be read ({short(exc)})") from exc
    if not rows:
        raise NotPerSample("it has no rows")
    fields = (file.actual, file.predicted)
    lacking = next((i for i, row in enumerate(rows) if not all(f in row for f in fields)), None)
    if lacking is not None:
        raise NotPerSample(f"row {lacking + 1} has no {file.actual} or {file.predicted} field")
    others = {str(k) for row in rows for k in row} - set(fields)
    counted = sorted(k for k in others if k.lower() in COUNT_FIELDS)
    if counted:
        raise NotPerSample(
            f"its rows carry {counted[0]!r}: they are counts of a matrix, not one row per sample"
        )
    # Text, as DVCLive writes labels and DVC's template groups them.
    actual = [str(row[file.actual]) for row in rows]
    predicted = [str(row[file.predicted]) for row in rows]
    if others and len(rows) > 1 and len(set(zip(actual, predicted, strict=True))) == len(rows):
        raise NotPerSample(
            "each (actual, predicted) cell is listed once beside other fields: a matrix of "
            "counts, not one row per sample"
        )
    return actual, predicted


def _rows(file: ConfusionFile) -> list[dict[str, Any]]:
    if file.path.endswith((".csv", ".tsv")):
        # Only the two columns as lists: no dict per row for a large file.
        dialect = "excel-tab" if file.path.endswith(".tsv") else "excel"
        reader = csv.reader(io.StringIO(file.data.decode("utf-8")), dialect)
        header = next((row for row in reader if row), None)
        if header is None:
            return []
        return [dict(zip(header, row, strict=False)) for row in reader if row]
    return plot_table(file.path, file.data, {})


def label_codes(labels: Iterable[str]) -> dict[str, float]:
    """text label -> the number `stats` reads: whole numbers as themselves, otherwise codes
    2, 3, ... in sorted order (no label is the positive class 1, so averages are macro)."""
    distinct = sorted(set(labels))
    numbers = {label: _whole(label) for label in distinct}
    if all(v is not None for v in numbers.values()):
        return {label: float(v) for label, v in numbers.items() if v is not None}
    return {label: float(code) for code, label in enumerate(distinct, start=2)}


def _whole(label: str) -> float | None:
    try:
        value = float(label)
    except ValueError:
        return None
    return value if math.isfinite(value) and value == round(value) else None


def matches(shown: Any, computed: float) -> bool:
    """Whether a metrics file's value is the value computed from the plot's rows: equal, or
    equal once the computed one is rounded to the decimals the file shows (3 at least)."""
    if not isinstance(shown, int | float) or isinstance(shown, bool) or not math.isfinite(computed):
        return False
    if math.isclose(shown, computed, rel_tol=1e-9, abs_tol=1e-12):
        return True
    text = repr(float(shown))
    if "e" in text or "." not in text:
        return False
    decimals = len(text.split(".")[1])
    return decimals >= 3 and math.isclose(round(computed, decimals), shown, abs_tol=1e-12)
