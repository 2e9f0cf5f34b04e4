"""Noise bands for metrics without a confidence interval, from the target branch's own history.

A metric read from a metrics file alone (latency, training time, anything without per-sample
predictions) has no interval. Its run-to-run noise is measured where it shows: on the target
branch, among recent commits whose *declared inputs* to the stage that writes the metric (its
command, dependency hashes and params in `dvc.lock`) are the same, so the metric moved by noise
alone. The spread pools those repeat measurements (log values for a positive metric, whose
noise is relative; raw values otherwise), and the band around the mean of the baseline's own
input set is a Student-t prediction interval for one new measurement:

    half-width = t(df, 1 - alpha / 2) * sd * sqrt(1 + 1 / n_centre)

A band needs evidence: at least `MIN_REPEATS` repeat measurements (values beyond the first of
each input set). With two or three values, one hand-edited metric gives a band so wide (t with
one or two degrees of freedom at a small alpha) that any change would read as noise.

History is read once (`git log` over the metrics files, then one `git cat-file --batch` for
every commit's metrics files and `dvc.lock`); no fetch, no DVC checkout. The same batch gives
the report's trend (`History.series`), so the report reads no git history of its own.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlops_ci.project.dvcfile import load_pipeline_yaml, parse_structured
from mlops_ci.project.errors import ConfigError
from mlops_ci.project.git import Git

LOCK_FILE = "dvc.lock"
# Fewer repeat measurements than this give no band: the spread of so few says too little.
MIN_REPEATS = 4


@dataclass(frozen=True)
class NoiseEstimate:
    """Run-to-run noise of one metric: `sd` of log values (`relative`) or of values."""

    sd: float
    relative: bool
    df: int  # repeat measurements: values beyond the first of each input set
    centre: float  # mean of the measurements with the baseline's inputs (else the baseline)
    n_centre: int
    commits: int  # commits of the target branch read

    def half_width(self, alpha: float) -> float:
        return t_quantile(self.df, 1 - alpha / 2) * self.sd * math.sqrt(1 + 1 / self.n_centre)

    def band(self, alpha: float) -> tuple[float, float]:
        """The values one more measurement with unchanged inputs falls in, 1 - alpha of the time."""
        half = self.half_width(alpha)
        if self.relative:
            return self.centre * math.exp(-half), self.centre * math.exp(half)
        return self.centre - half, self.centre + half

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def t_quantile(df: int, q: float) -> float:
    """The `q` quantile (q > 0.5) of Student's t with a whole number `df` of degrees of
    freedom (what scipy's `t.ppf` gives, held to it by a test; importing scipy for it would
    cost a third of a second). P(|T| < t) has a closed form for whole `df` in the angle
    arctan(t / sqrt(df)) (Abramowitz & Stegun 26.7.3, 26.7.4); it rises with the angle, which
    is bisected until the float cannot tell the halves apart."""
    target, lo, hi = 2 * q - 1, 0.0, math.pi / 2
    while (mid := (lo + hi) / 2) not in (lo, hi):
        if _t_within(mid, df) < target:
            lo = mid
        else:
            hi = mid
    return math.sqrt(df) * math.tan(mid)


def _t_within(angle: float, df: int) -> float:
    """P(|T| < sqrt(df) tan(angle)) for Student's t with `df` degrees of freedom."""
    c2 = math.cos(angle) ** 2
    term = total = 1.0
    if df % 2:  # odd: (2 / pi)(angle + sin cos (1 + 2/3 c2 + 2*4/(3*5) c2^2 + ...))
        for k in range(1, (df - 1) // 2):
            term *= 2 * k / (2 * k + 1) * c2
            total += term
        series = math.sin(angle) * math.cos(angle) * total if df > 1 else 0.0
        return 2 / math.pi * (angle + series)
    for k in range(1, df // 2):  # even: sin (1 + 1/2 c2 + 1*3/(2*4) c2^2 + ...)
        term *= (2 * k - 1) / (2 * k) * c2
        total += term
    return math.sin(angle) * total


def estimate_noise(
    points: Sequence[tuple[str, float]], baseline_inputs: str | None, baseline_value: float, *,
    commits: int | None = None,
) -> NoiseEstimate | None:  # fmt: skip
    """The noise of one metric from (inputs digest, value) measurements of the target branch;
    None with fewer than `MIN_REPEATS` repeat measurements (too little to tell noise from
    change).

    >>> pts = [("a", 10.0), ("a", 10.4), ("a", 9.8), ("b", 12.0), ("b", 12.3), ("b", 12.1)]
    >>> est = estimate_noise(pts, "a", 10.4)
    >>> est.df, round(est.sd, 3), est.n_centre
    (4, 0.023, 3)
    """
    values = [v for _, v in points] + [baseline_value]
    relative = all(v > 0 for v in values)
    scale = math.log if relative else float
    groups: dict[str, list[float]] = {}
    for digest, value in points:
        groups.setdefault(digest, []).append(scale(value))
    df = sum(len(g) - 1 for g in groups.values())
    if df < MIN_REPEATS:
        return None
    ss = sum(sum((x - sum(g) / len(g)) ** 2 for x in g) for g in groups.values())
    own = groups.get(baseline_inputs or "", [])
    if own:
        centre, n_centre = sum(own) / len(own), len(own)
        centre = math.exp(centre) if relative else centre
    else:
        centre, n_centre = baseline_value, 1
    return NoiseEstimate(
        sd=math.sqrt(ss / df), relative=relative, df=df, centre=centre, n_centre=n_centre,
        commits=len(points) if commits is None else commits,
    )  # fmt: skip


def split_alpha(alpha: float, interval_members: int, band_members: int) -> tuple[float, float]:
    """(the bootstrap family's share, each noise band's share) of the verdict's error `alpha`:
    Bonferroni across the two kinds, each metric-and-slice with an interval and each banded
    metric counting once, so all of them hold at once with probability at least 1 - alpha."""
    total = interval_members + band_members
    if total == 0:
        return alpha, alpha
    return alpha * interval_members / total, alpha / total


# --- reading the history ---------------------------------------------------------------------------


@dataclass(frozen=True)
class History:
    """Measurements of metrics along the target branch: `points[(file, key)]` is a list of
    (inputs digest, value), newest first; `baseline_inputs[file]` the baseline's digest."""

    ref: str
    commits: int
    points: Mapping[tuple[str, str], list[tuple[str, float]]]
    baseline_inputs: Mapping[str, str | None]
    # Every commit read, oldest first, with each metric's value there (None: a gap).
    log: tuple[tuple[str, str], ...] = ()  # (sha, subject)
    series: Mapping[tuple[str, str], tuple[float | None, ...]] = field(default_factory=dict)


def read_history(
    git: Git,
    ref: str,
    metrics: Sequence[tuple[str, str]],
    *,
    commits: int,
    baseline_sha: str | None,
) -> History:
    """Values of `metrics` ((file, key) pairs) over the last `commits` commits of `ref` that
    changed a metrics file, each tagged with the digest of its stage's declared inputs."""
    files = sorted({f for f, _ in metrics if "\n" not in f})
    if not files or commits <= 0 or git.rev_parse(ref) is None:
        return History(ref, 0, {}, {})
    history = git.log(ref, commits, paths=files)
    specs = [f"{c.sha}:{path}" for c in history for path in [*files, LOCK_FILE]]
    if baseline_sha:
        specs.append(f"{baseline_sha}:{LOCK_FILE}")
    blobs = git.read_many(list(dict.fromkeys(specs)))
    points: dict[tuple[str, str], list[tuple[str, float]]] = {m: [] for m in metrics}
    series: dict[tuple[str, str], list[float | None]] = {m: [] for m in metrics}
    by_file: dict[str, list[tuple[str, str]]] = {}
    for metric in dict.fromkeys(metrics):
        by_file.setdefault(metric[0], []).append(metric)
    previous: dict[str, bytes | None] = {}
    for commit in reversed(history):  # oldest first: a file equal to its predecessor is a copy
        inputs = stage_inputs(blobs.get(f"{commit.sha}:{LOCK_FILE}"))
        for path in files:
            raw = blobs.get(f"{commit.sha}:{path}")
            digest = inputs.get(path)
            copy = raw is not None and previous.get(path) == raw
            previous[path] = raw
            document = load_or_none(raw, path)
            for metric in by_file.get(path, ()):
                value = _number(lookup(document, metric[1]))
                series[metric].append(value)
                if value is not None and digest is not None and not copy:
                    points[metric].append((digest, value))
    base_inputs = stage_inputs(blobs.get(f"{baseline_sha}:{LOCK_FILE}")) if baseline_sha else {}
    return History(
        ref, len(history), {m: p[::-1] for m, p in points.items()},
        {f: base_inputs.get(f) for f in files},
        log=tuple((c.sha, c.subject) for c in reversed(history)),
        series={m: tuple(v) for m, v in series.items()},
    )  # fmt: skip


def stage_inputs(lock: bytes | None) -> dict[str, str]:
    """Output path -> digest of what its stage declares as inputs in `dvc.lock` (command,
    dependency paths and hashes, params). Unreadable: no digests (no estimate, never a guess)."""
    return {path: digest for path, (_stage, digest) in lock_outputs(lock).items()}


def lock_outputs(lock: bytes | None) -> dict[str, tuple[str, str]]:
    """Output path -> (stage name, digest of the stage's declared inputs) in `dvc.lock`."""
    if lock is None:
        return {}
    try:
        data = load_pipeline_yaml(lock, LOCK_FILE)
    except ConfigError:
        return {}
    stages = data.get("stages") if isinstance(data, dict) else None
    out: dict[str, tuple[str, str]] = {}
    for name, stage in (stages or {}).items():
        if not isinstance(stage, dict):
            continue
        deps = [
            {k: v for k, v in d.items() if k != "size"} for d in stage.get("deps") or []
            if isinstance(d, dict)
        ]  # fmt: skip
        declared = {"cmd": stage.get("cmd"), "deps": deps, "params": stage.get("params")}
        digest = hashlib.sha256(json.dumps(declared, sort_keys=True, default=str).encode())
        for item in stage.get("outs") or []:
            if isinstance(item, dict) and isinstance(item.get("path"), str):
                out[item["path"]] = (str(name), digest.hexdigest()[:16])
    return out


# --- repeat measurements (`mlops-ci noise --repeat N`) ---------------------------------------------

REPEATS_FILE = "noise.json"


def read_repeats(
    run_dir: Path | None, lock: bytes | None, warnings: list[str]
) -> dict[tuple[str, str], list[float]]:
    """(file, key) -> values measured by re-running its stage with the candidate's inputs, from
    the run directory's noise.json; only where those inputs are still the candidate's (a stale
    file is named in `warnings` and not used)."""
    if run_dir is None or not (run_dir / REPEATS_FILE).is_file():
        return {}
    from mlops_ci.ci import documents

    try:
        doc = documents.read(run_dir, REPEATS_FILE, kind="noise")
    except Exception as exc:  # any unreadable document: no repeats, said so
        warnings.append(f"{REPEATS_FILE} is unreadable and was not used: {exc}")
        return {}
    current = stage_inputs(lock)
    inputs = doc.get("inputs") if isinstance(doc.get("inputs"), dict) else {}
    stale = sorted(str(p) for p, d in inputs.items() if current.get(p) != d)
    if stale:
        warnings.append(
            f"{REPEATS_FILE} measured other inputs than the candidate's for {', '.join(stale)}: "
            "not used (run `mlops-ci noise` again after training)"
        )
    out: dict[tuple[str, str], list[float]] = {}
    for item in doc.get("measurements") or []:
        if not isinstance(item, dict) or item.get("file") not in inputs or item["file"] in stale:
            continue
        values = [_number(v) for v in item.get("values") or []]
        if len(values) >= 2 and all(v is not None for v in values):
            out[str(item["file"]), str(item.get("key"))] = values  # type: ignore[assignment]
    return out


def load_or_none(raw: bytes | None, path: str) -> object:
    """A metrics file of a past commit as DVC parses it, or None where it is missing or
    unreadable: a gap in a history (here and in the report's trend), never an error."""
    if raw is None:
        return None
    try:
        return parse_structured(path, raw)
    except Exception:  # JSON, YAML (ruamel) and TOML errors alike: a gap
        return None


def lookup(document: object, key: str) -> object:
    """The value at a flattened metrics key (`a.b.0`) of a parsed file, else None."""
    node = document
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None
