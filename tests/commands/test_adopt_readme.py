"""The README's "Adopt in your repository" section, run command by command as written, on an
existing DVC project that has never seen mlops-ci: every command succeeds and the pushed main
holds what a pull request's baseline needs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_ci.project.git import Git
from mlops_ci.project.settings import parse_settings
from tests.commands import adopt_projects

pytestmark = pytest.mark.integration  # builds real DVC projects of its own

ROOT = Path(__file__).parents[2]


def adopt_commands() -> list[str]:
    """The commands of the section's bash block, comments dropped."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Adopt in your repository", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "the Adopt section shows its commands in a bash block"
    lines = [line.split("  #", 1)[0].strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line]


def test_the_adopt_section_works_as_written(tmp_path: Path) -> None:
    commands = adopt_commands()
    assert commands[0] == "pip install mlops-ci"  # installed here already: this checkout
    assert any(c.startswith("mlops-ci init") for c in commands)
    repo = adopt_projects.build("reference", tmp_path / "reference")
    Git(repo).run("branch", "--quiet", "--set-upstream-to=origin/main")  # as a clone has it
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    for command in commands[1:]:
        proc = subprocess.run(
            ["bash", "-c", command], cwd=repo, env=env, capture_output=True, text=True,
            timeout=600, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, f"`{command}` exited {proc.returncode}:\n{proc.stderr}"
    origin = Git(repo).out("rev-parse", "origin/main")
    assert origin == Git(repo).head_sha(), "the adoption was pushed"
    pushed = Git(repo).out("show", f"{origin}:mlops-ci.yaml")
    assert parse_settings(pushed).metrics, "main holds the policy a pull request is gated by"
    tree = Git(repo).out("ls-tree", "-r", "--name-only", origin)
    assert ".github/workflows/mlops-ci-pr.yml" in tree.splitlines()


@pytest.mark.parametrize("command", ["mlops-ci init", "mlops-ci validate"])
def test_each_command_the_section_names_is_documented(command: str) -> None:
    assert any(c.startswith(command) for c in adopt_commands())
