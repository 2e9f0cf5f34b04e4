"""How each metric's status is decided, so that colour means something on every pull request.

- **interval**: a metric computed from per-sample predictions gets a bootstrap interval, and the
  intervals of every such metric on all rows and on every gated slice hold *simultaneously*
  (`stats.bootstrap_family`): improved/regressed when the interval excludes zero, else
  inconclusive;
- **tolerance**: a rule's `tolerance` (metric units) or `tolerance_pct` (percent of the
  baseline) is a band the policy states; inside it the metric is `within-noise`;
- **noise band**: otherwise the metric's run-to-run noise on the target branch (`noise`) gives a
  band; inside it `within-noise`, outside improved/regressed;
- **none**: no interval, tolerance or noise estimate: the status is `changed`, uncoloured.

The verdict's error is split between the interval family and the noise bands (`noise.split_alpha`)
so that the chance that anything at all is coloured on a no-op change stays within
`1 - confidence`. Rules of the gate still judge the point values.
"""

from __future__ import annotations

import functools
import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mlops_ci.compare.confusion_rows import LABEL_METRICS, PlotPredictions
from mlops_ci.compare.intervals import METRICS, Family, Task
from mlops_ci.compare.noise import History, NoiseEstimate, estimate_noise, split_alpha
from mlops_ci.compare.snapshot import metric_names
from mlops_ci.project.settings import MetricRule, Settings, metric_aliases

REPEATED = "repeated"  # the inputs label of repeat measurements: a group no baseline matches

EPSILON = 1e-12  # below this a numeric change is float noise from rounding
DECIDED_BY = ("interval", "tolerance", "noise band", "none")
# A slice column is a grouping: more values than this is a feature or an id, not a slice.
MAX_SLICE_VALUES = 50


def noise_estimates(
    history: History | None,
    rows: list[tuple[str, str, str, float]],
    repeats: Mapping[tuple[str, str], list[float]] | None = None,
) -> dict[str, NoiseEstimate]:
    """name -> noise estimate, for (name, file, key, baseline value) rows with history or
    repeat measurements (`mlops-ci noise`); the repeats add to the spread, never the centre."""
    out = {}
    for name, file, key, base in rows:
        points = list(history.points.get((file, key)) or []) if history else []
        points += [(REPEATED, v) for v in (repeats or {}).get((file, key), ())]
        inputs = history.baseline_inputs.get(file) if history else None
        est = estimate_noise(points, inputs, base, commits=history.commits if history else 0)
        if est is not None:
            out[name] = est
    return out


def family_intervals(
    base_raw: bytes,
    cand_raw: bytes,
    settings: Settings,
    warnings: list[str],
    *,
    band_members: int,
    slice_columns: Mapping[str, tuple[Any, Any]] | None = None,
    root: Path | None = None,
) -> Any:
    """The bootstrap family (`intervals.Family`) of both revisions' predictions (their files'
    bytes), its share of the error set by how many metrics a noise band judges
    (`band_members`)."""
    from mlops_ci.compare.predictions import load_pair

    base, cand = load_pair(
        base_raw, cand_raw,
        sources=(f"{settings.predictions}@baseline", f"{settings.predictions}@candidate"),
    )  # fmt: skip
    slices = dict(slice_columns or {})
    if settings.slices.columns and not slices:
        slices = read_slice_columns(base_raw, cand_raw, base, cand, settings, warnings, root)
    return predictions_family(base, cand, settings, warnings, band_members=band_members,
                              slices=slices)  # fmt: skip


def predictions_family(
    base: Any,
    cand: Any,
    settings: Settings,
    warnings: list[str],
    *,
    band_members: int,
    slices: Mapping[str, tuple[Any, Any]] | None = None,
    metrics: Sequence[str] | None = None,
    task: Task | None = None,
) -> Any:
    """The bootstrap family of two loaded `Predictions` (all their task's metrics unless
    `metrics` names some), a warning for each metric left without an interval."""
    from mlops_ci.compare.stats import bootstrap_family

    family = bootstrap_family(
        base, cand, metrics, confidence=settings.confidence, task=task,
        n_resamples=settings.bootstrap_resamples, slices=slices,
        min_slice=settings.slices.min_size, band_members=band_members,
    )  # fmt: skip
    warnings += [
        f"no confidence interval for {name}: {why}" for name, why in family.skipped.items()
    ]
    return family


def read_slice_columns(
    base_raw: bytes,
    cand_raw: bytes,
    base: Any,
    cand: Any,
    settings: Settings,
    warnings: list[str],
    root: Path | None = None,
) -> dict[str, tuple[Any, Any]]:
    """column -> (value per baseline row, value per candidate row), rows in the order of the
    loaded predictions; from the predictions files, or joined by `slices.key` from the
    `slices.features` file of the working tree (relative to `root`, the repository). A column that is missing is left out, with a
    warning (the slices are reported, never guessed)."""
    from mlops_ci.compare.numeric import np, pd

    spec = settings.slices
    tables = []
    for raw, preds, side in ((base_raw, base, "baseline"), (cand_raw, cand, "candidate")):
        try:
            frame = pd.read_csv(
                io.BytesIO(raw), dtype=str, keep_default_na=False, skipinitialspace=True
            )
        except (ValueError, pd.errors.ParserError):
            frame = pd.DataFrame({"id": preds.ids})
        frame.columns = [str(c).strip() for c in frame.columns]
        if spec.features:
            try:
                path = Path(root or ".") / spec.features
                features = pd.read_csv(path, dtype=str, keep_default_na=False)
            except (OSError, ValueError) as exc:
                warnings.append(
                    f"no slices: slices.features {spec.features} cannot be read ({exc})"
                )
                return {}
            if spec.key not in features.columns:
                warnings.append(f"no slices: {spec.features} has no column {spec.key} (slices.key)")
                return {}
            joined = features.drop_duplicates(spec.key).set_index(spec.key)
            frame = joined.reindex(pd.Index(preds.ids.astype(str))).reset_index()
            frame = frame.fillna("(missing)")
        else:
            frame = frame.set_index(frame["id"].astype(str)).reindex(preds.ids.astype(str))
        tables.append((frame, side))
    out: dict[str, tuple[Any, Any]] = {}
    for column in spec.columns:
        missing = [side for frame, side in tables if column not in frame.columns]
        if missing:
            where = spec.features or settings.predictions
            warnings.append(
                f"no slices by {column}: {where} has no such column at the {missing[0]}"
            )
            continue
        values = tuple(np.asarray(frame[column].to_numpy(), dtype=str) for frame, _ in tables)
        distinct = len(np.unique(np.concatenate(values)))
        if distinct > MAX_SLICE_VALUES:
            warnings.append(
                f"no slices by {column}: it has {distinct} values, more than {MAX_SLICE_VALUES}; "
                "slice by a column of groups (bin a number first)"
            )
            continue
        out[column] = values
    return out


def decide_rows(
    rows: list[dict[str, Any]],
    family: Any,
    noise: Mapping[str, NoiseEstimate],
    settings: Settings,
    accept: Callable[[Mapping[str, Any], Any], bool] | None = None,
) -> list[dict[str, Any]]:
    """Set each numeric row's `status` and say how it was decided (`decided_by`, and the band).
    `accept(row, interval)`: whether an interval of the row's leaf name is the row's own
    (None: every one is)."""
    intervals = dict(family.overall) if family is not None else {}
    members = family.members if family is not None else 0
    banded = [
        r for r in rows if _numeric(r) and _leaf(r) not in intervals and r["name"] in noise
        and _tolerance(settings.rule_for(r["name"], r.get("key"))) is None
    ]  # fmt: skip
    band_alpha = split_alpha(1 - settings.confidence, members, len(banded))[1]
    for row in rows:
        if not _numeric(row):
            continue
        rule = settings.rule_for(row["name"], row.get("key"))
        ci = intervals.get(_leaf(row))
        if ci is not None and accept is not None and not accept(row, ci):
            ci = None
            row.update(ci_low=None, ci_high=None, ci_method=None)
        row.update(decide(row, ci, noise.get(row["name"]), rule, band_alpha))
    return rows


def decide(
    row: Mapping[str, Any],
    ci: Any,
    noise: NoiseEstimate | None,
    rule: MetricRule | None,
    band_alpha: float,
) -> dict[str, Any]:
    """The status of one numeric row and how it was decided."""
    base, cand = float(row["baseline"]), float(row["candidate"])
    delta, higher = cand - base, row.get("direction") != "lower"
    if ci is not None:
        if ci.regressed():
            status = "regressed"
        elif ci.improved():
            status = "improved"
        else:
            status = "unchanged" if abs(delta) <= EPSILON else "inconclusive"
        return {"status": status, "decided_by": "interval", "ci_low": ci.low, "ci_high": ci.high,
                "ci_method": ci.method}  # fmt: skip
    if abs(delta) <= EPSILON:
        return {"status": "unchanged", "decided_by": "none"}
    tolerance = _tolerance(rule)
    if tolerance is not None:
        absolute, pct = tolerance
        half = absolute if absolute is not None else abs(base) * (pct or 0.0) / 100
        low, high = base - half, base + half
        return {"status": _outside(cand, low, high, higher), "decided_by": "tolerance",
                "band_low": low, "band_high": high}  # fmt: skip
    if noise is not None:
        low, high = noise.band(band_alpha)
        return {"status": _outside(cand, low, high, higher), "decided_by": "noise band",
                "band_low": low, "band_high": high, "noise": noise.as_dict()}  # fmt: skip
    return {"status": "changed", "decided_by": "none"}


def _outside(value: float, low: float, high: float, higher: bool) -> str:
    if low - EPSILON <= value <= high + EPSILON:
        return "within-noise"
    return "improved" if (value > high) == higher else "regressed"


def _tolerance(rule: MetricRule | None) -> tuple[float | None, float | None] | None:
    if rule is None or (rule.tolerance is None and rule.tolerance_pct is None):
        return None
    return rule.tolerance, rule.tolerance_pct


def _numeric(row: Mapping[str, Any]) -> bool:
    ok = all(
        isinstance(row.get(k), int | float) and not isinstance(row.get(k), bool)
        and math.isfinite(row[k]) for k in ("baseline", "candidate")
    )  # fmt: skip
    return ok and row.get("status") not in ("unknown", "added", "removed")


def _finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _leaf(row: Mapping[str, Any]) -> str:
    return str(row.get("key") or row.get("name")).rsplit(".", 1)[-1]


# --- slices in the comparison document ------------------------------------------------------------


def slices_document(family: Any, settings: Settings) -> dict[str, Any] | None:
    """The comparison's `slices`: every slice's metrics with their (simultaneous) intervals and
    status, worst first; None when no slices were asked for or computed."""
    if family is None or len(family.segments) <= 1:
        return None
    rows = []
    for seg, deltas in zip(family.segments[1:], family.deltas[1:], strict=True):
        metrics = []
        for name, ci in deltas.items():
            has = math.isfinite(ci.low) and math.isfinite(ci.high)
            status = ("regressed" if ci.regressed() else "improved" if ci.improved()
                      else "inconclusive") if has else "not gated"  # fmt: skip
            worsening = -ci.delta if ci.direction == "higher" else ci.delta
            metrics.append({
                "name": name, "baseline": _finite(ci.baseline), "candidate": _finite(ci.candidate),
                "delta": _finite(ci.delta), "worsening": _finite(worsening),
                "ci_low": ci.low if has else None, "ci_high": ci.high if has else None,
                "direction": ci.direction, "status": status,
            })  # fmt: skip
        rows.append({
            "column": seg.column, "value": seg.value, "n_baseline": seg.n_baseline,
            "n_candidate": seg.n_candidate, "gated": seg.gated, "metrics": metrics,
        })  # fmt: skip
    return {
        "columns": list(settings.slices.columns),
        "min_size": settings.slices.min_size,
        "show": settings.slices.show,
        "rows": rows,
    }


def family_document(
    family: Any, band_members: int, settings: Settings, source: tuple[str, str] | None = None
) -> dict[str, Any]:
    """The comparison's `family`: how the verdict's error is held over everything it colours.
    `source`: (kind, file) of the per-sample rows the intervals come from."""
    members = family.members if family is not None else 0
    boot, band = split_alpha(1 - settings.confidence, members, band_members)
    kind, file = source if family is not None and source is not None else (None, None)
    return {
        "confidence": settings.confidence,
        "method": family.method if family is not None else None,
        "source": file,
        "source_kind": kind,
        "interval_members": members,
        "interval_confidence": 1 - boot if members else None,
        "critical_value": _finite(family.critical) if family is not None else None,
        "band_members": band_members,
        "band_confidence": 1 - band if band_members else None,
        "approximation": family.approximation if family is not None else None,
    }


def _finite(x: float) -> float | None:
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else None


# --- intervals from a confusion plot's rows (confusion_rows) ------------------------------------


def plot_family(
    rows: PlotPredictions, settings: Settings, warnings: list[str], *, band_members: int
) -> Callable[[], Family | None]:
    """The family of the label metrics from a confusion plot's per-sample rows (a call: the
    bootstrap runs when first needed); a note names the plot as their source."""
    warnings.append(rows.note())
    if settings.slices.columns:
        warnings.append(f"no slices: the confusion plot {rows.path} holds labels only")
    return functools.partial(
        predictions_family, rows.baseline, rows.candidate, settings, warnings,
        band_members=band_members, metrics=LABEL_METRICS, task="classification",
    )  # fmt: skip


# --- one comparison: history, intervals, decisions ----------------------------------------------


class Judgement:
    """What `compare` needs to decide its rows: the interval family and the noise estimates.

    judgement = Judgement.of(git, "main", sha, base, cand, settings, warnings)
    rows = judgement.decide(metric_rows(base, cand, settings, judgement.intervals))
    """

    def __init__(
        self,
        family: Family | Callable[[], Family | None] | None,
        noise: Mapping[str, NoiseEstimate],
        band_members: int,
        settings: Settings,
    ) -> None:
        """`family` may be a call that gives it: the bootstrap then runs when the family is
        first needed."""
        self._family = family
        self.noise, self.band_members, self.settings = noise, band_members, settings
        self.trend: dict[str, Any] | None = None
        # (kind, file) the intervals' rows come from, and the check that an interval found by
        # a row's leaf name is that row's (`decide_rows`); None: every one is.
        self.source: tuple[str, str] | None = None
        self.accept: Callable[[Mapping[str, Any], Any], bool] | None = None

    @functools.cached_property
    def family(self) -> Family | None:
        return self._family() if callable(self._family) else self._family

    @property
    def intervals(self) -> dict[str, Any]:
        return dict(self.family.overall) if self.family is not None else {}

    @classmethod
    def of(
        cls,
        git: Any,
        target: str,
        baseline_sha: str | None,
        baseline: Any,
        candidate: Any,
        settings: Settings,
        warnings: list[str],
        run_dir: Path | None = None,
    ) -> Judgement:
        """`run_dir` may hold repeat measurements (noise.json)."""
        from mlops_ci.compare.noise import LOCK_FILE, read_repeats

        names = metric_names([baseline, candidate])

        with_predictions = bool(
            settings.predictions and baseline.predictions is not None
            and candidate.predictions is not None
        )  # fmt: skip
        from_plot = None
        if not settings.predictions and baseline.rev != "none":
            from mlops_ci.compare.confusion_rows import plot_predictions

            from_plot = plot_predictions(baseline.confusion, candidate.confusion, warnings)
        interval_metrics: Mapping[str, Any] = (
            METRICS if with_predictions else dict.fromkeys(LABEL_METRICS) if from_plot else {}
        )
        pairs = _band_candidates(names, baseline, candidate, settings, interval_metrics)
        # One read of the target branch's history serves the noise bands and the report's trend.
        banded = (
            [(p, k) for _, p, k, _ in pairs] if settings.noise_commits > 0 and baseline_sha else []
        )
        followed = trend_metrics(names, candidate, settings) if settings.trend_commits > 0 else {}
        history = _target_history(git, target, baseline_sha, banded, followed, settings)
        lock = Path(git.repo_dir) / LOCK_FILE
        repeats = read_repeats(run_dir, lock.read_bytes() if lock.is_file() else None, warnings)
        noise = noise_estimates(history if banded else None, pairs, repeats)
        family = None
        if with_predictions:
            family = functools.partial(
                family_intervals, baseline.predictions, candidate.predictions, settings,
                warnings, band_members=len(noise), root=Path(git.repo_dir),
            )  # fmt: skip
        elif from_plot is not None:
            family = plot_family(from_plot, settings, warnings, band_members=len(noise))
        elif settings.predictions and baseline.rev != "none":
            warnings.append(_no_predictions_warning(baseline, candidate, settings))
        judgement = cls(family, noise, len(noise), settings)
        judgement.trend = trend_document(history, followed, settings.trend_commits)
        if with_predictions and settings.predictions:
            judgement.source = ("predictions", settings.predictions)
        elif from_plot is not None:
            judgement.source = ("confusion plot", from_plot.path)
            judgement.accept = functools.partial(from_plot.joins, warnings)
        return judgement

    def decide(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return decide_rows(rows, self.family, self.noise, self.settings, self.accept)

    def document(self) -> dict[str, Any]:
        """The comparison's `family` and `slices` fields."""
        return {
            "family": family_document(self.family, self.band_members, self.settings, self.source),
            "slices": slices_document(self.family, self.settings),
            "trend": self.trend,
        }


def _band_candidates(
    names: Mapping[tuple[str, str], str],
    baseline: Any,
    candidate: Any,
    settings: Settings,
    interval_metrics: Mapping[str, Any],
) -> list[tuple[str, str, str, float]]:
    """(name, file, key, baseline value) of the numeric metrics a noise band may judge: those
    without an interval (named in `interval_metrics`) or a tolerance."""
    pairs = []
    for (path, key), name in names.items():
        base = baseline.metrics.get(path, {}).get(key)
        cand = candidate.metrics.get(path, {}).get(key)
        leaf = key.rsplit(".", 1)[-1]
        if not (_finite_number(base) and _finite_number(cand)) or (leaf in interval_metrics):
            continue
        if _tolerance(settings.rule_for(name, key)) is None:
            pairs.append((name, path, key, float(base)))
    return pairs


def _target_history(
    git: Any,
    target: str,
    baseline_sha: str | None,
    banded: list[tuple[str, str]],
    followed: Mapping[tuple[str, str], str],
    settings: Settings,
) -> History | None:
    """The target branch's history of the banded and followed metrics, read once (None: none
    asked for, or the branch is not there)."""
    from mlops_ci.compare.noise import read_history

    if not (banded or followed):
        return None
    ref = next((r for r in (f"origin/{target}", target) if git.rev_parse(r)), None)
    if ref is None:
        return None
    return read_history(
        git, ref, list(dict.fromkeys([*banded, *followed])),
        commits=max(settings.noise_commits if banded else 0, settings.trend_commits),
        baseline_sha=baseline_sha,
    )  # fmt: skip


def _no_predictions_warning(baseline: Any, candidate: Any, settings: Settings) -> str:
    side = "baseline" if baseline.predictions is None else "candidate"
    missing = (baseline if side == "baseline" else candidate).predictions_missing
    return (
        f"no confidence intervals: {settings.predictions} cannot be read at the {side}"
        f" ({missing or 'missing'})"
    )


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")

# The metrics a report's trend follows: those the policy names, else the first few numeric ones.
TREND_METRICS = 3
TREND_METRICS_MAX = 20


def trend_metrics(
    names: Mapping[tuple[str, str], str], candidate: Any, settings: Settings
) -> dict[tuple[str, str], str]:
    """(file, key) -> row name of the metrics whose history the comparison carries for the
    report's trend: every metric a policy key names (at most 20), else the first three numeric."""
    named = set(settings.metrics)
    chosen: dict[tuple[str, str], str] = {}
    if named:
        for (path, key), name in names.items():
            if "\n" in path or len(name) > 512:
                continue
            if named.intersection(metric_aliases(name, key)):
                chosen[path, key] = name
                if len(chosen) == TREND_METRICS_MAX:
                    break
        if chosen:
            return chosen
    for (path, key), name in names.items():
        if (
            "\n" not in path
            and len(name) <= 512
            and _finite_number(candidate.metrics.get(path, {}).get(key))
        ):
            chosen[path, key] = name
            if len(chosen) == TREND_METRICS:
                break
    return chosen


def trend_document(
    history: Any, followed: Mapping[tuple[str, str], str], commits: int
) -> dict[str, Any] | None:
    """The comparison's `trend`: the last `commits` commits of the target branch read for it,
    oldest first, with the followed metrics' values (None: a gap)."""
    if history is None or not followed:
        return None
    log = history.log[-commits:] if commits else ()
    skip = len(history.log) - len(log)
    return {
        "ref": history.ref,
        "metrics": list(followed.values()),
        "commits": [
            {
                "sha": sha,
                "subject": _CONTROL.sub(" ", subject[:1000]),
                "values": {
                    name: history.series[metric][skip + i] for metric, name in followed.items()
                },
            }
            for i, (sha, subject) in enumerate(log)
        ],
    }
