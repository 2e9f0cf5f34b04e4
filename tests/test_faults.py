"""SIGKILL during deploy and rollback, at every file operation they make (tests/faults.py).

After each kill: the live version is the old or the new one and complete (every file matches
its SHA256SUMS), nothing half-written is live, the registry never names a version that is not
live once its tags are written, and the deployment record never claims a version that is not
live. Then the same command, rerun, converges: registry, target and record name the new version.
The project's bundles verify by checksums (see `start_state`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlops_ci.commands import deploy as deploy_command
from mlops_ci.commands import promote
from mlops_ci.project import gto
from mlops_ci.project.git import Git
from tests.conftest import REFERENCE_DEPLOY, copy_project, policy_with
from tests.registry.test_deploy import two_versions_template  # noqa: F401 - the shared fixture

FAULTS = Path(__file__).with_name("faults.py")
ENV = "staging"
# Kill points excluded from the check (none: every record is written whole or not at all).
NOT_OURS: set[str] = set()
TEMPORARY = re.compile(r"\.[^/]+\.\d+\.[0-9a-f]{8}$")  # bundle.work_path names


@dataclass(frozen=True)
class Scenario:
    argv: tuple[str, ...]
    old: str  # live (and in the registry) before the command
    new: str  # live (and in the registry) once it has run


SCENARIOS = {
    "deploy": Scenario(("deploy",), old="v0.1.0", new="v0.2.0"),
    "rollback": Scenario(("rollback", "--stage", ENV), old="v0.2.0", new="v0.1.0"),
}


class Runner:
    """One fork server (tests/faults.py) per worker thread."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(FAULTS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, repo: Path, argv: tuple[str, ...], kill_at: int) -> tuple[dict, list[str], str]:
        logs = repo.parent
        job = {
            "argv": [*argv, "-C", str(repo)],
            "cwd": str(repo),
            "roots": [str(repo / "deployments"), str(repo / ".mlops-ci")],
            "kill_at": kill_at,
            "output": str(logs / f"output-{kill_at}.txt"),
            "points": str(logs / f"points-{kill_at}.json"),
        }
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        result = json.loads(self.proc.stdout.readline())
        points_file = Path(job["points"])
        points = json.loads(points_file.read_text()) if points_file.exists() else []
        return result, points, Path(job["output"]).read_text(errors="replace")

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture
def start_state(
    request: pytest.FixtureRequest,
    two_versions_template: Path,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """The project as the command finds it: v0.1.0 (HEAD~1) and v0.2.0 (HEAD) registered and
    in staging; deploy starts with v0.1.0 live, rollback with v0.2.0 live."""
    scenario = SCENARIOS[request.node.callspec.params["name"]]
    base = tmp_path_factory.mktemp("fault-start") / "reference"
    repo = copy_project(two_versions_template, base)
    # Bundles verify by their checksums here. Verifying by predictions adds a read-only process
    # (a new Python loading the model) and samples.csv, written like the bundle's other files:
    # no state a kill could leave that these points do not (tests/registry/test_deploy.py and
    # test_bundle.py cover that path), and it tripled this test's time (58 -> 17 s a scenario).
    policy_with(repo, REFERENCE_DEPLOY + "  verify: checksums\n")
    run_dir = repo / ".mlops-ci"
    promote.promote(repo, run_dir, rev="HEAD~1")
    promote.promote(repo, run_dir)
    deploy_command.deploy(repo, run_dir, version="v0.1.0")
    if scenario.old == "v0.2.0":
        deploy_command.deploy(repo, run_dir, version="v0.2.0")
    shutil.rmtree(run_dir / "bundles")  # a new runner's run directory: bundles are rebuilt
    return base


# --- what is true after a kill -------------------------------------------------------------------


def env_dir(repo: Path) -> Path:
    return repo / "deployments" / "classifier" / ENV


def live_version(repo: Path) -> str:
    link = env_dir(repo) / "current"
    assert link.is_symlink(), "no version is live"
    target = os.readlink(link)
    assert target.startswith("versions/"), target
    return target.split("/", 1)[1]


def intact(bundle_dir: Path) -> list[str]:
    """What differs from SHA256SUMS (checked here, not by the code under test)."""
    listed = {}
    for line in (bundle_dir / "SHA256SUMS").read_text().splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    problems = [
        name
        for name, digest in listed.items()
        if not (bundle_dir / name).is_file()
        or hashlib.sha256((bundle_dir / name).read_bytes()).hexdigest() != digest
    ]
    files = {p.name for p in bundle_dir.iterdir() if p.is_file()} - {"SHA256SUMS"}
    return problems + sorted(files - set(listed))


def holder(repo: Path) -> str | None:
    versions = gto.show(repo, "classifier")["versions"]
    return next((v["version"] for v in versions if ENV in v["stages"]), None)


def commits(repo: Path) -> dict[str, str]:
    return {v["version"]: v["commit"] for v in gto.show(repo, "classifier")["versions"]}


def runner_count() -> int:
    # Under pytest-xdist the scenarios already run side by side: one fork server each.
    return 1 if os.environ.get("PYTEST_XDIST_WORKER") else 2


def recorded(repo: Path) -> str | None:
    """The version the deployment record says is live in staging (the last success)."""
    path = repo / ".mlops-ci" / "deployments.json"
    entries = json.loads(path.read_text())  # never half-written
    done = [e for e in entries if e["environment"] == ENV and e["state"] == "success"]
    return done[-1]["version"] if done else None


def check_after_kill(
    repo: Path, scenario: Scenario, tags_before: list[str], shas: dict[str, str]
) -> str:
    live = live_version(repo)
    assert live in (scenario.old, scenario.new)
    assert intact(env_dir(repo) / "versions" / live) == []
    meta = json.loads((env_dir(repo) / "versions" / live / "metadata.json").read_text())
    assert meta["git_sha"] == shas[live]
    in_registry = holder(repo)
    assert in_registry in (scenario.old, scenario.new)
    if scenario.argv[0] == "deploy":
        assert sorted(Git(repo).tags()) == tags_before  # deploy writes no tags
    elif in_registry == scenario.new:
        assert live == scenario.new, "the registry names a version that is not live"
    elif live == scenario.new:
        # Deployed, tags not written yet: the journal says so, and a rerun finishes it.
        journal = json.loads((repo / ".mlops-ci" / "rollback.json").read_text())
        assert journal["state"] == "started"
    on_record = recorded(repo)
    assert on_record in (scenario.old, scenario.new)
    if on_record == scenario.new:
        assert live == scenario.new, "the deployment record claims a version that is not live"
        if scenario.argv[0] == "rollback":
            assert in_registry == scenario.new
    return live


def state_of(repo: Path) -> str:
    """A digest of everything a rerun's behaviour depends on: the target's files and links,
    the registry's tags, the deployment record and the rollback journal, which bundles exist.
    Temporary copies count by their existence only (a rerun removes them unread). Kills that
    leave the same state need one rerun between them."""
    bundles = repo / ".mlops-ci" / "bundles"
    # A rerun rebuilds its bundle (removing the old one unread): only which exist counts.
    parts = (
        sorted(TEMPORARY.sub(".TMP", p.name) for p in bundles.glob("*")) if bundles.exists() else []
    )
    for root in (repo / "deployments",):
        for path in sorted(root.rglob("*")) if root.exists() else []:
            rel = path.relative_to(repo).as_posix()
            if any(TEMPORARY.search(part) for part in path.relative_to(root).parts[:-1]):
                continue  # inside a temporary copy: a rerun only ever removes it whole
            rel = TEMPORARY.sub(".TMP", rel)
            if path.is_symlink():
                parts.append(f"{rel} -> {os.readlink(path)}")
            elif path.is_file():
                parts.append(f"{rel} {hashlib.sha256(path.read_bytes()).hexdigest()}")
            else:
                parts.append(rel)
    parts += sorted(Git(repo).tags())
    for name in ("deployments.json", "rollback.json"):  # deployment.json is only written
        path = repo / ".mlops-ci" / name
        text = path.read_text() if path.exists() else "-"
        parts.append(re.sub(r'"(created_at|deployed_at|switched_at)": "[^"]*"', "", text))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def check_converged(repo: Path, scenario: Scenario) -> None:
    assert live_version(repo) == holder(repo) == recorded(repo) == scenario.new
    assert intact(env_dir(repo) / "versions" / scenario.new) == []
    deployment = json.loads((repo / ".mlops-ci" / "deployment.json").read_text())
    assert (deployment["version"], deployment["state"]) == (scenario.new, "success")
    # Nothing half-made is left behind: no temporary copies, links or bundles.
    leftovers = [
        p.relative_to(repo).as_posix()
        for p in [*env_dir(repo).rglob(".*"), *(repo / ".mlops-ci" / "bundles").glob(".*")]
    ]
    assert leftovers == []


# --- the test ------------------------------------------------------------------------------------


@pytest.mark.slow  # a whole process killed at each of about 40 points, then rerun
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_sigkill_anywhere_leaves_old_or_new_live_and_a_rerun_converges(
    name: str, start_state: Path, tmp_path: Path
) -> None:
    scenario = SCENARIOS[name]
    start = start_state

    def fresh(label: str) -> Path:
        return copy_project(start, tmp_path / label / "reference")

    runners = [Runner() for _ in range(runner_count())]
    try:
        counted = fresh("count")
        tags_before = sorted(Git(counted).tags())
        shas = commits(counted)
        result, points, output = runners[0].run(counted, scenario.argv, 0)
        assert result == {"signal": None, "code": 0}, output[-3000:]
        check_converged(counted, scenario)
        assert len(points) >= 12, points
        indexes = [i for i, point in enumerate(points, 1) if point not in NOT_OURS]

        def kill(index: int, runner: Runner) -> tuple[Path, str, str]:
            repo = fresh(f"kill-{index}")
            result, _, output = runner.run(repo, scenario.argv, index)
            assert result["signal"] == 9, (points[index - 1], result, output[-3000:])
            return repo, check_after_kill(repo, scenario, tags_before, shas), state_of(repo)

        def rerun(repo: Path, runner: Runner) -> None:
            again, _, output = runner.run(repo, scenario.argv, 0)
            assert again == {"signal": None, "code": 0}, output[-3000:]
            check_converged(repo, scenario)

        pick = [runners[i % len(runners)] for i in range(len(indexes))]
        with ThreadPoolExecutor(max_workers=len(runners)) as pool:
            killed = list(pool.map(kill, indexes, pick))
            first = {}  # one rerun per distinct state after a kill
            for repo, _, state in killed:
                first.setdefault(state, repo)
            list(pool.map(rerun, first.values(), pick))
    finally:
        for runner in runners:
            runner.close()
    print(
        f"\n{name}: {len(points)} kill points, {len(indexes)} killed "
        f"({len(points) - len(indexes)} not ours: {sorted(NOT_OURS)}), "
        f"{len(first)} distinct states after a kill, each rerun to convergence"
    )
    for index, (_, live, state) in zip(indexes, killed, strict=True):
        print(f"  {index:2d} {points[index - 1]:<70} live: {live}  state {state[:8]}")
    assert len(indexes) >= 12
