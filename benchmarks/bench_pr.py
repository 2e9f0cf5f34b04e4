"""A pull request's whole job: `mlops-ci pr --no-post` against what a CML workflow runs for the
same change, whole processes, in the same run.

Peer: `dvc repro`, then `dvc metrics diff main --md`, `dvc params diff main --md` and
`dvc plots diff main` (which writes DVC's HTML page). Ours: `mlops-ci pr --no-post` (train with
DVC, compare with confidence intervals, gate, report to the run directory; no PNGs, which are
drawn only with `--png`). Goal: the job's own work at least 2.5x faster (medians), and a peak
RSS no higher. When no stage runs, that is the whole job. When stages run, they are the same
processes on both sides (the user's code), so their seconds, as `train.json` records them, are
taken out of both sides for the goal; the whole-job ratio is printed too.

Three scenarios, the same work on both sides in each:
- `retrain`: every run of either side trains on a regularisation value no run used before, so
  both really train (no cache can answer). The stages' own time (two Python processes importing
  scikit-learn) is the same on both sides and bounds the ratio.
- `restore`: the change was trained before (a rerun on a fresh runner whose DVC cache has it):
  the outputs are deleted before each run, and DVC restores them from its run-cache on both sides.
- `rerun`: the pipeline is up to date (a job re-run, or a change outside the pipeline).
Our side does more in each (the gate, the report, the bootstrap); DVC's HTML page and our
markdown report stand for each other. The `charts` extra: without `--png` it is never imported
(tests/test_imports.py), so installed or not the path is the same; `--charts-row` adds
`pr --no-post --png` to show what PNGs cost.

Peak RSS is the largest process of each side's process trees (GNU time), compared as the median
of the runs' peaks: when a stage trains, that is the stage's own Python process, the same on
both sides.

    python benchmarks/bench_pr.py [--runs 5] [--scenario retrain,restore,rerun] [--charts-row]
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from _shared import (
    BIN,
    MLOPS_CI,
    Sample,
    alternate,
    measured,
    ratio_line,
    run_sequence,
    sh,
    spread,
    trained_repo,
)

PARAM = "train.logistic_regression.C"
STAGE_RSS_SLACK_MIB = 1.0
OUTPUTS = ("models", "eval/predictions.csv", "eval/plots", "eval/metrics.json")


def scenario(name: str, repo: Path, runs: int, charts_row: bool) -> dict[str, list[Sample]]:
    dvc = str(BIN / "dvc")
    values = (f"{0.05 + n / 1000:.3f}" for n in itertools.count())  # never the same twice
    pr = [MLOPS_CI, "pr", "--no-post", "--baseline", "main"]
    peer_cmds = [
        [dvc, "repro"],
        [dvc, "metrics", "diff", "main", "--md"],
        [dvc, "params", "diff", "main", "--md"],
        [dvc, "plots", "diff", "main"],
    ]

    def prepare() -> list[str]:
        """Outside the timing: put the workspace in the scenario's state; our -S arguments."""
        if name == "retrain":
            value = next(values)
            sh([sys.executable, "-c", SET_PARAM, value], repo)  # what the PR's commit changed
            return []
        if name == "restore":
            for out in OUTPUTS:
                path = repo / out
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        return []

    def ours(png: bool = False) -> Callable[[int], Sample]:
        def run(i: int) -> Sample:
            prepare()
            # exit 1 is a verdict (the gate failed the change), not a failed run
            sample = measured([*pr, "--png"] if png else pr, repo, ok=(0, 1))
            if not png and i >= 0:
                stage_seconds.append(stages_time(repo))
            return sample

        return run

    def peer(_i: int) -> Sample:
        prepare()
        return run_sequence(peer_cmds, repo)

    stage_seconds: list[float] = []
    sides = {"mlops-ci pr --no-post": ours(), "dvc repro + 3 diffs": peer}
    if charts_row:
        sides["mlops-ci pr --no-post --png"] = ours(png=True)
    samples = alternate(sides, runs)
    samples["stages"] = [Sample(t, 0.0, 0.0) for t in stage_seconds]
    return samples


def stages_time(repo: Path) -> float:
    """Seconds the stages that ran or were restored took, as `train.json` records them: the
    same stage processes run on both sides, so this bounds how far apart the sides can be."""
    document = json.loads((repo / ".mlops-ci" / "train.json").read_text())
    return sum(s["duration_s"] for s in document["stages"] if s["status"] != "unchanged")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scenario", default="retrain,restore,rerun")
    parser.add_argument("--charts-row", action="store_true", help="also time `pr --png`")
    parser.add_argument(
        "--history", type=int, default=20, help="commits on main (noise bands, trend); 1: none"
    )
    args = parser.parse_args()
    charts = "installed" if importlib.util.find_spec("vl_convert") else "not installed"
    print(
        f"reference project, {args.history} commits on main; {args.runs} alternated runs after one warm-up; charts extra {charts}"
    )
    verdicts = []
    with tempfile.TemporaryDirectory() as tmp:
        repo = trained_repo(Path(tmp), history=args.history)
        sh(["git", "checkout", "-qb", "tune"], repo)
        sh([MLOPS_CI, "train", "-S", f"{PARAM}=0.04"], repo)  # the change, trained once
        sh(["git", "commit", "-qam", "Tune C"], repo)
        for name in args.scenario.split(","):
            samples = scenario(name, repo, args.runs, args.charts_row)
            stages = [s.wall for s in samples.pop("stages")]
            print(f"{name}:")
            for side, runs in samples.items():
                print(
                    f"  {side:<28} wall {spread([s.wall for s in runs])} s  "
                    f"peak RSS {spread([s.rss_mib for s in runs])} MiB"
                )
            ours, peer = samples["mlops-ci pr --no-post"], samples["dvc repro + 3 diffs"]
            line, fast = ratio_line("  pr vs the DVC sequence", ours, peer, 2.5)
            # Medians of each run's peak, as for the times: when a stage trains, the peak on both
            # sides is that same stage process, whose own peak varies by a few tenths of a MiB.
            rss_ours = statistics.median(s.rss_mib for s in ours)
            rss_peer = statistics.median(s.rss_mib for s in peer)
            print(line)
            if max(stages) > 0.05:  # stages ran: the job's own work, without their seconds
                own = [o.wall - t for o, t in zip(ours, stages, strict=True)]
                their = [p.wall - t for p, t in zip(peer, stages, strict=True)]
                ratio = statistics.median(their) / statistics.median(own)
                fast = ratio >= 2.5
                print(
                    f"  stages {spread(stages)} s on both sides; the job's own work without "
                    f"them: ours {spread(own)} s vs peer {spread(their)} s -> {ratio:.2f}x "
                    f"(goal >= 2.5x): {'met' if fast else 'NOT met'}"
                )
            # When a stage trains, its process is the peak on both sides; the same process
            # varies by a few tenths of a MiB from run to run, so a tie is within 1 MiB.
            slack = STAGE_RSS_SLACK_MIB if max(stages) > 0.05 else 0.0
            small = rss_ours <= rss_peer + slack
            tie = (
                f" (within {slack:.0f} MiB: the stage's process is the peak on both)"
                if slack
                else ""
            )
            print(
                f"  peak RSS (median): ours {rss_ours:.1f} MiB vs peer {rss_peer:.1f} MiB "
                f"(goal: no more{tie}): {'met' if small else 'NOT met'}"
            )
            verdicts.append(fast and small)
            sh(["git", "checkout", "--", "params.yaml", "dvc.lock"], repo)
            sh([str(BIN / "dvc"), "checkout", "-q"], repo)
    return 0 if all(verdicts) else 1


SET_PARAM = f"""
import sys
from ruamel.yaml import YAML
yaml = YAML()
with open("params.yaml") as fh:
    data = yaml.load(fh)
node = data
*parents, leaf = {PARAM!r}.split(".")
for key in parents:
    node = node[key]
node[leaf] = float(sys.argv[1])
with open("params.yaml", "w") as fh:
    yaml.dump(data, fh)
"""


if __name__ == "__main__":
    raise SystemExit(main())
