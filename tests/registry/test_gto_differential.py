"""Differential test: seeded histories of registry steps, each written by mlops-ci or by gto's
own API (a person's `gto` commands), and after every step mlops-ci's reading of the registry
(holders, versions, latest, deprecation) equals `gto show --json`'s (`gto.api.show`, the same
function its CLI prints), while `gto history` still reads every tag.

Tags carry whole-second dates and gto orders by them, so the histories run on a simulated clock
(one second per step, git's own GIT_COMMITTER_DATE for mlops-ci; gto's tags, which it always
dates now, are re-dated onto that clock with their name, target, tagger and message kept).
Racing clones end some histories on the real clock: two clones `promote --push` at once.
"""

from __future__ import annotations

import os
import random
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from mlops_ci.commands import deprecate, promote
from mlops_ci.project import gto as reading_of
from mlops_ci.project.errors import MlopsCiError
from mlops_ci.project.git import Git

SEQUENCES = 500
PARTS = 5  # the seeds in five tests of 100, so test workers share them
RACE_EVERY = 25  # every 25th history ends with two clones racing `promote --push`
STAGES = ("staging", "production")
START = 1_600_000_000


def run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=True, env=env)
    return proc.stdout


def settings_text(artifact: str) -> str:
    return f"artifact: {artifact}\npromote:\n  stages: [staging, production]\n  bump: minor\n"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three commits on main (and base); mlops-ci.yaml is untracked so a reset keeps it."""
    repo = tmp_path_factory.mktemp("differential") / "repo"
    repo.mkdir()
    run(repo, "git", "init", "--quiet", "--initial-branch=main")
    for i in range(3):
        (repo / "f.txt").write_text(str(i))
        run(repo, "git", "add", "f.txt")
        run(repo, "git", "commit", "--quiet", "-m", f"c{i}")
    run(repo, "git", "branch", "base")  # main moves with every reset; base stays
    (repo / ".git" / "info" / "exclude").write_text("mlops-ci.yaml\n.mlops-ci/\n")
    return repo


@pytest.fixture
def gto_config_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """gto parses `.gto` into a pydantic settings class it defines anew on every call, and calls
    that for every registry it opens and every commit it indexes: about half of this test's time
    (8,788 reads per 100 histories). The result is a function of the file's path and bytes, the
    working directory and the GTO_ environment (no dotenv file, no secrets dir) and gto never
    changes it, so each distinct input is read by gto once and its answer given again. Both
    sides (mlops-ci reads through gto) see exactly what gto computes."""
    import gto.config
    import gto.index
    import gto.registry

    read_by_gto = gto.config.read_registry_config
    answers: dict[tuple[Any, ...], Any] = {}

    def read_registry_config(config_file_name: str) -> Any:
        try:
            content: bytes | None = Path(config_file_name).read_bytes()
        except OSError:
            content = None
        environment = sorted((k, v) for k, v in os.environ.items() if k.upper().startswith("GTO_"))
        key = (config_file_name, content, os.getcwd(), tuple(environment))
        if key not in answers:
            answers[key] = read_by_gto(config_file_name)
        return answers[key]

    for module in (gto.config, gto.index, gto.registry):
        monkeypatch.setattr(module, "read_registry_config", read_registry_config)


class Clock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = START
        self.monkeypatch = monkeypatch

    def tick(self) -> int:
        self.now += 1
        self.monkeypatch.setenv("GIT_COMMITTER_DATE", f"{self.now} +0000")
        return self.now


def redate(repo: Path, before: set[str], when: int) -> None:
    """Move the tags gto just wrote onto the simulated clock, keeping all else."""
    for name in sorted(set(Git(repo).tags()) - before):
        fmt = "%(*objectname)%00%(taggername)%00%(taggeremail:trim)%00%(contents)"
        target, tagger, email, message = run(
            repo, "git", "for-each-ref", f"--format={fmt}", f"refs/tags/{name}"
        ).split("\0", 3)
        env = {
            **dict(os.environ),
            "GIT_COMMITTER_DATE": f"{when} +0000",
            "GIT_COMMITTER_NAME": tagger,
            "GIT_COMMITTER_EMAIL": email,
        }
        subprocess.run(
            ["git", "tag", "--force", "--annotate", "--cleanup=verbatim", "--file=-", name, target],
            cwd=repo, input=message, text=True, env=env, check=True, capture_output=True,
        )  # fmt: skip


def assert_same_reading(repo: Path, artifact: str, where: str) -> dict[str, Any]:
    """mlops-ci's reading (returned) equals gto's; gto refusing to read fails here."""
    import gto.api
    import gto.exceptions

    mine = reading_of.reading(repo, artifact)
    everything = gto.api.show(str(repo))
    try:
        versions = gto.api.show(str(repo), artifact)
    except gto.exceptions.ArtifactNotFound:
        versions = []  # no tag names it yet (every step so far was refused or a reset)
    if artifact not in everything:
        assert mine["holders"] == {} and mine["latest"] is None, where
        assert mine["versions"] == versions == [], where
        return mine
    shown = everything[artifact]
    assert mine["deprecated"] is False, where
    assert mine["latest"] == shown["version"], where
    assert mine["holders"] == {s: v for s, v in shown["stage"].items() if v}, where
    assert [(v["version"], v["commit"], v["stages"]) for v in mine["versions"]] == [
        (v["version"], v["commit_hexsha"], sorted(s["stage"] for s in v["stages"]))
        for v in versions
    ], where
    return mine


def mlops_ci_step(repo: Path, action: str, rng: random.Random, state: dict[str, Any]) -> None:
    run_dir = repo / ".mlops-ci"
    if action == "promote" or action == "assign-bare":
        promote.promote(repo, run_dir, stage=rng.choice(STAGES))
    elif action == "unassign":
        held = state["holders"]
        if held:
            deprecate.deprecate(repo, run_dir, stage=rng.choice(sorted(held)))
    elif action == "deregister":
        registered = [v["version"] for v in state["versions"] if v["registered"]]
        if registered:
            deprecate.deprecate(repo, run_dir, version=rng.choice(registered))
    elif action == "deprecate":
        deprecate.deprecate(repo, run_dir)


def gto_step(repo: Path, artifact: str, action: str, rng: random.Random, state: dict) -> None:
    import gto.api

    where = str(repo)
    if action == "promote":
        gto.api.assign(where, artifact, rng.choice(STAGES), ref="HEAD", force=True)
    elif action == "assign-bare":
        gto.api.assign(
            where, artifact, rng.choice(STAGES), ref="HEAD", skip_registration=True, force=True
        )
    elif action == "unassign":
        held = state["holders"]
        if held:
            stage = rng.choice(sorted(held))
            commit = next(v["commit"] for v in state["versions"] if v["version"] == held[stage])
            gto.api.unassign(where, artifact, ref=commit, stage=stage)
    elif action == "deregister":
        registered = [v["version"] for v in state["versions"] if v["registered"]]
        if registered:
            gto.api.deregister(where, artifact, version=rng.choice(registered))
    elif action == "deprecate":
        gto.api.deprecate(where, artifact)


def race(repo: Path, artifact: str, rng: random.Random, base: Path) -> None:
    """Two clones of one remote promote their HEADs at once, on the real clock."""
    base.mkdir(parents=True)
    origin = base / "origin.git"
    run(base, "git", "init", "--quiet", "--bare", str(origin))
    run(repo, "git", "push", "--quiet", "--force", str(origin), "base:main", "refs/tags/*")
    clones = []
    for name in ("a", "b"):
        clone = base / name
        run(base, "git", "clone", "--quiet", str(origin), str(clone))
        run(clone, "git", "reset", "--quiet", "--hard", f"HEAD~{rng.randrange(3)}")
        (clone / "mlops-ci.yaml").write_text(settings_text(artifact))
        clones.append(clone)
    errors: list[BaseException] = []

    def go(clone: Path) -> None:
        try:
            promote.promote(clone, clone / ".mlops-ci", stage="staging", push=True)
        except MlopsCiError:
            pass  # a refusal (a deregistered commit) is an answer, not a broken registry
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(c,)) for c in clones]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    run(repo, "git", "fetch", "--quiet", "--force", str(origin), "+refs/tags/*:refs/tags/*")
    for clone in clones:
        assert_same_reading(clone, artifact, f"race clone {clone.name}")


ACTIONS = ("promote", "promote", "assign-bare", "unassign", "deregister", "deprecate", "reset")


@pytest.mark.slow  # 500 simulated histories
@pytest.mark.usefixtures("gto_config_read_once")
@pytest.mark.parametrize("part", range(PARTS))
def test_mlops_ci_reads_every_generated_history_as_gto_does(
    part: int, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gto.api

    writers = {"mlops-ci": 0, "gto": 0}
    git = Git(repo)
    per_part = SEQUENCES // PARTS
    for seed in range(part * per_part, (part + 1) * per_part):
        rng = random.Random(seed)
        artifact = "models/clf" if seed % 2 else "clf"
        (repo / "mlops-ci.yaml").write_text(settings_text(artifact))
        existing = git.tags()
        if existing:
            run(repo, "git", "tag", "--delete", *existing)
        git.run("reset", "--quiet", "--hard", "base")
        clock = Clock(monkeypatch)
        steps: list[str] = []
        state = reading_of.reading(repo, artifact)
        for _ in range(rng.randint(4, 8)):
            action = rng.choice(ACTIONS)
            when = clock.tick()
            if action == "reset":
                git.run("reset", "--quiet", "--hard", f"base~{rng.randrange(3)}")
                steps.append("reset")
                continue
            writer = rng.choice(("mlops-ci", "gto"))
            before = set(git.tags())
            try:
                if writer == "mlops-ci":
                    mlops_ci_step(repo, action, rng, state)
                else:
                    gto_step(repo, artifact, action, rng, state)
                    redate(repo, before, when)
            except MlopsCiError:
                pass  # mlops-ci refused to write: what it refuses, gto must still read
            except Exception as exc:
                if type(exc).__module__.split(".")[0] != "gto":
                    raise
                redate(repo, before, when)  # gto refused; whatever it wrote stays readable
            writers[writer] += 1
            steps.append(f"{writer} {action}")
            state = assert_same_reading(repo, artifact, f"seed {seed}: {steps}")
        # `gto history` reads every tag the history left (it raises where gto cannot).
        assert gto.api.history(str(repo), artifact) or not git.tags()
        if seed % RACE_EVERY == 0:
            monkeypatch.delenv("GIT_COMMITTER_DATE")
            race(repo, artifact, rng, tmp_path / f"race-{seed}")
            assert_same_reading(repo, artifact, f"seed {seed}: {steps} + race")
    assert min(writers.values()) > 0.4 * sum(writers.values()), writers
