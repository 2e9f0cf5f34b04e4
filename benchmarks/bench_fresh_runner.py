"""A pull request's status on a fresh runner: the shipped `pr.yml` against a CML-style workflow
doing the same work, both run by act from a fresh clone, through to what they post.

The same pull request (one param of the reference pipeline changed, `dvc.lock` as main left it)
runs on each side from a fresh clone with an empty DVC cache, a fresh Python virtual environment
(first on PATH: the runner's interpreter, as setup-python gives it) and a shared DVC remote
holding main's outputs and run-cache:

- (a) `pr.yml` as shipped: the setup action installs mlops-ci (the wheel built from this
  checkout, `install:` pointed at it) with uv, announces the run, `mlops-ci pr --pull` (pull,
  stages, compare, gate, report), posts the comment and the status to the fake GitHub.
- (b) a CML-style workflow, written into the scratch repo the way CML's DVC example runs:
  setup-python, `pip install dvc` and the pipeline's requirements, `dvc pull --run-cache`,
  `dvc repro`, `dvc metrics diff --md` + `dvc params diff --md` + `dvc plots diff` against main,
  one comment posted with the same token (python instead of `cml comment create`, which needs
  Node and CML's own package; the plot is rendered as HTML, not uploaded as an image).

Scenarios: `cold` (empty package caches: a fresh PIP_CACHE_DIR and uv cache per run) and
`warm` (the caches filled by a warm-up run of the same side, the cold scenario's first run when
both are measured, as on a runner whose cache step hits: actions/cache for uv's cache on side
(a), setup-python's pip cache on side (b)). pip follows the machine's pip configuration; a
local file index it names is read in place, never cached, so pip's two scenarios differ little
there. uv reads the package index itself.
The sides alternate (the order flips each round); each side's seconds are split into install,
pull, stages, compare, posting and the rest (checkout, act, uploads) from act's step timings
and the run's `train.json`. The last line is `ratio: X`, median (b) / median (a) in the warm
scenario; the script exits 1 when X < 2.

    .venv/bin/python benchmarks/bench_fresh_runner.py --runs 3 --scenario both
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from _shared import BIN, MLOPS_CI, REPO, package_source, sh, spread

sys.path.insert(0, str(REPO))
from tests.e2e.harness import REMOTE_ACTIONS, REPOSITORY, fake_forge
from tests.fakes.github import DEFAULT_TOKEN

PR = 7
GOAL = 2.0
RUN_TIMEOUT = 3600
PHASES = ("install", "pull", "stages", "compare", "posting", "other")
PARAM = ("    C: 1.0\n", "    C: 0.5\n")  # train.logistic_regression.C: the one change
# What the reference pipeline's stage code imports (CML's example installs requirements.txt).
REQUIREMENTS = "scikit-learn\npandas\nnumpy\npyyaml\n"

# A CML-style pull request workflow (CML's DVC example, posting through the API directly).
CML_WORKFLOW = """\
name: cml
on:
  pull_request:
    branches: [main]
permissions:
  contents: read
  pull-requests: write
env:
  DVC_NO_ANALYTICS: "1"
jobs:
  report:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0
      - name: Set up Python
        uses: actions/setup-python@v5
        with:
          python-version: "3.11"
          cache: pip
      - name: Install
        run: pip install dvc -r requirements.txt
      - name: Pull
        run: dvc pull --run-cache
      - name: Reproduce
        run: dvc repro
      - name: Compare
        run: |
          git fetch origin main:main
          echo "## Metrics: workflow vs. main" >> report.md
          dvc metrics diff --md main >> report.md
          echo "## Params" >> report.md
          dvc params diff --md main >> report.md
          dvc plots diff main --out dvc_plots
          echo "Plots: dvc_plots/index.html" >> report.md
      - name: Post the report
        env:
          GITHUB_TOKEN: ${{ github.token }}
          PR_NUMBER: ${{ github.event.pull_request.number }}
        run: |
          python - <<'EOF'
          import json, os, urllib.request
          url = "{}/repos/{}/issues/{}/comments".format(
              os.environ["GITHUB_API_URL"], os.environ["GITHUB_REPOSITORY"], os.environ["PR_NUMBER"])
          body = json.dumps({"body": open("report.md").read()}).encode()
          headers = {"Authorization": "token " + os.environ["GITHUB_TOKEN"],
                     "Content-Type": "application/json"}
          request = urllib.request.Request(url, data=body, headers=headers, method="POST")
          print(urllib.request.urlopen(request, timeout=30).status)
          EOF
"""

# actions/cache as the scenario has it: uv's cache (keys `mlops-ci-uv-*`) is BENCH_UV_CACHE,
# linked in place (empty: a miss; filled by the warm-up: a hit). The DVC cache is never
# restored: every run starts from an empty DVC cache.
CACHE_STAND_IN = """\
name: cache (benchmark stand-in)
description: A hit or a miss as the benchmark's scenario says (BENCH_UV_CACHE).
inputs:
  path:
    default: ""
  key:
    default: ""
  restore-keys:
    default: ""
outputs:
  cache-hit:
    value: "false"
runs:
  using: composite
  steps:
    - shell: bash
      env:
        CACHE_PATH: ${{ inputs.path }}
        CACHE_KEY: ${{ inputs.key }}
      run: |
        case "$CACHE_KEY" in
          mlops-ci-uv-*)
            mkdir -p "$BENCH_UV_CACHE" "$(dirname "$CACHE_PATH")"
            rm -rf "$CACHE_PATH"
            ln -s "$BENCH_UV_CACHE" "$CACHE_PATH"
            echo "bench cache: uv's cache is $BENCH_UV_CACHE" ;;
          *) echo "bench cache: nothing restored for $CACHE_KEY" ;;
        esac
"""

# Step names (act prints `Success - Main NAME [duration]`) and the phase they belong to.
STEP_PHASES = {
    "a": {
        "Set up Python": "install",
        "Name the installer for later steps": "install",
        "Restore the installer's cache": "install",
        "Install mlops-ci": "install",
        "Announce the run": "posting",
        "Post the report and the status": "posting",
    },
    "b": {
        "Set up Python": "install",
        "Install": "install",
        "Pull": "pull",
        "Reproduce": "stages",
        "Compare": "compare",
        "Post the report": "posting",
    },
}
SIDE_NAMES = {"a": "mlops-ci pr.yml", "b": "CML-style"}
STEP_LINE = re.compile(r"(?:Success|Failure) - Main (.+?) \[([0-9.a-zµ]+)\]\s*$")
GO_DURATION = re.compile(r"([0-9.]+)(h|ms|µs|us|ns|m|s)")
GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6, "ns": 1e-9}


@dataclass
class Run:
    """One workflow run: wall seconds of the whole act process, and where they went."""

    wall: float
    phases: dict[str, float] = field(default_factory=dict)
    installer: str = ""


def go_seconds(text: str) -> float:
    """Seconds of a Go duration as act prints it (`1m2.5s`, `812.3ms`)."""
    return sum(float(n) * GO_UNITS[unit] for n, unit in GO_DURATION.findall(text))


def step_seconds(log: str) -> dict[str, float]:
    """Each step's seconds from act's log, summed over steps of the same name."""
    steps: dict[str, float] = {}
    for line in log.splitlines():
        found = STEP_LINE.search(line)
        if found:
            steps[found[1]] = steps.get(found[1], 0.0) + go_seconds(found[2])
    return steps


def wheel(base: Path) -> Path:
    """mlops-ci built from this checkout into a wheel, as a release ships it."""
    source = package_source(base)
    out = base / "dist"
    sh([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
        "--disable-pip-version-check", "-w", str(out), str(source)], base)  # fmt: skip
    return next(out.glob("mlops_ci-*.whl"))


def scratch_project(base: Path) -> tuple[Path, str, str]:
    """main trained and pushed to the DVC remote, with both workflows; the branch `tune`
    changes one param. Returns the bare origin and the base and head commits."""
    dev, remote = base / "dev", base / "dvc-remote"
    python = str(Path(MLOPS_CI).parent / "python")
    code = (
        "import sys; from pathlib import Path\n"
        "from mlops_ci.init.scaffold import init_repo, set_dvc_remote\n"
        "init_repo(Path(sys.argv[1])); set_dvc_remote(Path(sys.argv[1]), sys.argv[2])\n"
    )
    sh([python, "-c", code, str(dev), str(remote)], base)
    (dev / "requirements.txt").write_text(REQUIREMENTS)
    shutil.copytree(REPO / "actions", dev / "actions")
    workflows = dev / ".github" / "workflows"
    workflows.mkdir(parents=True)
    shutil.copy(REPO / ".github" / "workflows" / "pr.yml", workflows / "pr.yml")
    (workflows / "cml.yml").write_text(CML_WORKFLOW)
    sh([MLOPS_CI, "train", "--push"], dev)
    sh(["git", "add", "-A"], dev)
    sh(["git", "commit", "-qm", "Train; mlops-ci and CML-style workflows"], dev)
    main_sha = sh(["git", "rev-parse", "HEAD"], dev).strip()
    origin = base / "origin.git"
    sh(["git", "clone", "-q", "--bare", str(dev), str(origin)], base)
    sh(["git", "checkout", "-qb", "tune"], dev)
    params = dev / "params.yaml"
    old, new = PARAM
    assert old in params.read_text(), "the reference params changed: update PARAM"
    params.write_text(params.read_text().replace(old, new))
    sh(["git", "commit", "-qam", "Regularise more"], dev)
    sh(["git", "push", "-q", str(origin), "tune"], dev)
    return origin, main_sha, sh(["git", "rev-parse", "HEAD"], dev).strip()


@dataclass
class Bench:
    """What every run shares: the scratch project, the wheel and the stand-ins."""

    base: Path
    origin: Path
    main_sha: str
    head_sha: str
    wheel: Path
    stand_ins: dict[str, Path]
    count: int = 0
    # Each side's package caches after its first run with empty ones: the warm scenario's.
    filled: dict[str, tuple[Path, Path]] = field(default_factory=dict)

    def runner_env(self, venv: Path, work: Path) -> dict[str, str]:
        """The host environment act starts with: the fresh venv first on PATH, nothing of
        this benchmark's own Python (no PYTHONPATH, no project venv on PATH)."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "CI")}
        path = [p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p) != BIN]
        env["PATH"] = os.pathsep.join([str(venv / "bin"), *path])
        env["XDG_CACHE_HOME"] = str(work / "xdg-cache")
        env["XDG_CONFIG_HOME"] = str(work / "xdg-config")
        env["DVC_NO_ANALYTICS"] = "1"
        return env

    def run(self, side: str, pip_cache: Path, uv_cache: Path) -> Run:
        """One run of `side` on a fresh clone, fresh venv, the given package caches."""
        self.count += 1
        work = self.base / f"run-{self.count}-{side}"
        repo = work / "repo"
        work.mkdir()
        sh(["git", "clone", "-q", str(self.origin), str(repo)], work)
        sh(["git", "checkout", "-q", "tune"], repo)
        venv = work / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        payload = {
            "action": "synchronize",
            "number": PR,
            "pull_request": {
                "number": PR,
                "head": {"ref": "tune", "sha": self.head_sha, "repo": {"full_name": REPOSITORY}},
                "base": {"ref": "main", "sha": self.main_sha, "repo": {"full_name": REPOSITORY}},
            },
            "repository": {"full_name": REPOSITORY},
        }
        event = work / "event.json"
        event.write_text(json.dumps(payload))
        store = work / "artifacts"
        store.mkdir()
        workflow = "pr.yml" if side == "a" else "cml.yml"
        with fake_forge("github", "--pull", f"{REPOSITORY}#{PR}@{self.head_sha}") as fake:
            env = {
                "GITHUB_API_URL": fake.url,
                "GITHUB_SERVER_URL": fake.url,
                "GITHUB_REPOSITORY": REPOSITORY,
                "MLOPS_CI_INSTALL": str(self.wheel),
                "MLOPS_CI_DVC_REMOTE_URL": str(self.base / "dvc-remote"),
                "MLOPS_CI_ARTIFACT_STORE": str(store),
                "PIP_CACHE_DIR": str(pip_cache),
                "BENCH_UV_CACHE": str(uv_cache),
                "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            }
            cmd = [str(BIN / "act"), "pull_request", "-W", f".github/workflows/{workflow}"]
            cmd += ["-e", str(event), "-P", "ubuntu-latest=-self-hosted"]
            cmd += [arg for name, value in env.items() for arg in ("--env", f"{name}={value}")]
            cmd += ["-s", f"GITHUB_TOKEN={DEFAULT_TOKEN}"]
            cmd += [
                a for n, p in self.stand_ins.items() for a in ("--local-repository", f"{n}={p}")
            ]
            start = time.perf_counter()
            proc = subprocess.run(
                cmd, cwd=repo, env=self.runner_env(venv, work), capture_output=True, text=True,
                timeout=RUN_TIMEOUT, check=False,
            )  # fmt: skip
            wall = time.perf_counter() - start
            state = fake.state()
        log = proc.stdout + proc.stderr
        (self.base / f"run-{self.count}-{side}.log").write_text(log)
        posted(side, state, self.head_sha, log)
        result = Run(wall, phases(side, step_seconds(log), store, wall))
        found = re.search(r"installing with (uv|pip)", log)
        result.installer = found[1] if found else "pip"
        shutil.rmtree(work, ignore_errors=True)  # a venv per run adds up to gigabytes
        return result


def posted(side: str, state: dict, head_sha: str, log: str) -> None:
    """The run did its work: a comment (and, for pr.yml, the verdict's status) on the fake."""
    repo = state["repos"].get(REPOSITORY, {})
    problems = []
    if state["violations"]:
        problems.append(f"requests the API refuses: {state['violations']}")
    if not repo.get("comments", {}).get(str(PR)):
        problems.append("no comment was posted")
    if side == "a":
        done = [s for s in repo.get("statuses", []) if s["sha"] == head_sha]
        if not done or done[-1]["state"] == "pending":
            problems.append("no verdict status was posted")
        if "installing with uv" not in log:
            problems.append("the setup action did not install with uv")
    if problems:
        tail = "\n".join(log.splitlines()[-60:])
        raise RuntimeError(f"side {side}: " + "; ".join(problems) + f"\n{tail}")


def phases(side: str, steps: dict[str, float], store: Path, wall: float) -> dict[str, float]:
    """The run's seconds by phase. pr.yml pulls, runs the stages and compares in one step:
    `train.json` has the train part's seconds and each stage's; the rest of that step is
    compare, gate and report."""
    split = dict.fromkeys(PHASES, 0.0)
    for name, seconds in steps.items():
        phase = STEP_PHASES[side].get(name)
        if phase:
            split[phase] += seconds
    if side == "a":
        train = json.loads((store / "mlops-ci-run" / "train.json").read_text())
        ran = sum(s["duration_s"] for s in train["stages"] if s["status"] == "ran")
        split["stages"] = ran
        split["pull"] = max(0.0, train["duration_s"] - ran)
        split["compare"] = max(
            0.0, steps.get("Train, compare, gate, report", 0.0) - train["duration_s"]
        )
    split["other"] = max(0.0, wall - sum(split.values()))
    return split


def scenario(
    bench: Bench, name: str, runs: int, caches: dict[str, tuple[Path, Path]]
) -> dict[str, list[Run]]:
    """`runs` rounds, the sides alternating. Cold: fresh caches per run. Warm: `caches`."""
    results: dict[str, list[Run]] = {"a": [], "b": []}
    for i in range(runs):
        for side in ("a", "b") if i % 2 == 0 else ("b", "a"):
            if name == "cold":
                fresh = bench.base / f"caches-{bench.count + 1}-{side}"
                pip_cache, uv_cache = fresh / "pip", fresh / "uv"
                pip_cache.mkdir(parents=True)
            else:
                pip_cache, uv_cache = caches[side]
            results[side].append(bench.run(side, pip_cache, uv_cache))
            bench.filled.setdefault(side, (pip_cache, uv_cache))
            print(
                f"  {name} run {i + 1} {SIDE_NAMES[side]}: {results[side][-1].wall:.1f} s",
                flush=True,
            )
    return results


def summary(name: str, results: dict[str, list[Run]]) -> float:
    """Print both sides' min/median/max and median phases; the ratio median (b) / median (a)."""
    print(f"scenario {name} ({len(results['a'])} runs per side), wall seconds min/median/max:")
    for side in ("a", "b"):
        runs = results[side]
        split = ", ".join(f"{p} {statistics.median(r.phases[p] for r in runs):.1f}" for p in PHASES)
        installer = "/".join(sorted({r.installer for r in runs}))
        print(f"  {SIDE_NAMES[side]:<16} {spread([r.wall for r in runs])} s "
              f"({installer}); median phases: {split}")  # fmt: skip
    ratio = statistics.median(r.wall for r in results["b"]) / statistics.median(
        r.wall for r in results["a"]
    )
    print(f"  {name}: CML-style / mlops-ci = {ratio:.2f}x")
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="measured runs per side and scenario")
    parser.add_argument(
        "--scenario",
        choices=("warm", "cold", "both"),
        default="both",
        help="package caches empty (cold), filled by a warm-up (warm), or both; the ratio "
        "printed last is the warm one (the cold one with --scenario cold)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-fresh-runner-"))
    try:
        stand_ins = dict(REMOTE_ACTIONS)
        (base / "stand-ins" / "cache").mkdir(parents=True)
        (base / "stand-ins" / "cache" / "action.yml").write_text(CACHE_STAND_IN)
        stand_ins["actions/cache@v4"] = base / "stand-ins" / "cache"
        origin, main_sha, head_sha = scratch_project(base)
        bench = Bench(base, origin, main_sha, head_sha, wheel(base), stand_ins)
        print(f"scratch: {base}; wheel: {bench.wheel.name}", flush=True)
        ratios: dict[str, float] = {}
        if args.scenario in ("cold", "both"):
            ratios["cold"] = summary("cold", scenario(bench, "cold", args.runs, {}))
        if args.scenario in ("warm", "both"):
            # The warm-up: a run with empty caches (the cold scenario's first, if it ran).
            warmups: dict[str, list[Run]] = {"a": [], "b": []}
            for side in ("a", "b"):
                if side in bench.filled:
                    continue
                pip_cache, uv_cache = base / f"warm-{side}" / "pip", base / f"warm-{side}" / "uv"
                pip_cache.mkdir(parents=True)
                warmups[side].append(bench.run(side, pip_cache, uv_cache))
                bench.filled[side] = (pip_cache, uv_cache)
                print(f"  warm-up {SIDE_NAMES[side]}: {warmups[side][-1].wall:.1f} s", flush=True)
            if warmups["a"] and warmups["b"]:
                summary("warm-up (package caches empty, not counted)", warmups)
            ratios["warm"] = summary("warm", scenario(bench, "warm", args.runs, bench.filled))
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    ratio = ratios.get("warm", ratios.get("cold", 0.0))
    print(f"goal: the warm scenario's ratio >= {GOAL}")
    print(f"ratio: {ratio:.2f}")
    return 0 if ratio >= GOAL else 1


if __name__ == "__main__":
    raise SystemExit(main())
