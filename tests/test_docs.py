"""Docs that cannot drift. The docs (README.md and docs/*.md) are checked against the code in both
directions:

- every command and flag of the CLI parser is in the README's usage block, and every command and
  flag written there exists;
- every environment variable the package reads (and the command-target environment it sets) is
  documented, and every `MLOPS_CI_*` variable the docs name is read by the package, an action,
  a workflow or the GitLab template;
- every key `mlops-ci.yaml` accepts is documented, and every settings example in the docs is
  valid for the settings loader and names metrics and params that the reference pipeline has;
- every action input and output is in docs/actions.md, in the section of its action, with its
  default; every reusable workflow's inputs, secrets and outputs likewise;
- every YAML example loads; workflow examples pass actionlint; the GitLab example includes a
  template that exists.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_ci.cli import build_parser
from mlops_ci.project.errors import ConfigError
from mlops_ci.project.settings import parse_settings
from tests.lint import tools

ROOT = Path(__file__).parents[1]
ACTIONS = sorted(ROOT.glob("actions/*/action.yml"))
WORKFLOWS = ROOT / ".github" / "workflows"
REUSABLE = sorted(WORKFLOWS.glob("reusable-*.yml"))
GITLAB_TEMPLATE = ROOT / "templates" / "gitlab" / "mlops-ci.gitlab-ci.yml"
DOCS = ROOT / "docs" / "actions.md"
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([a-z]*)\n(.*?)^```", re.M | re.S)


def doc_text() -> str:
    return "\n".join(p.read_text() for p in DOC_FILES)


def fenced(lang: str | None = None) -> Iterator[tuple[str, str]]:
    """(where, body) of every fenced block of `lang` (every block when None) in the docs."""
    for path in DOC_FILES:
        text = path.read_text()
        for match in FENCE.finditer(text):
            if lang is None or match.group(1) in lang.split("|"):
                line = text[: match.start()].count("\n") + 1
                yield f"{path.relative_to(ROOT)}:{line}", match.group(2)


def code_text() -> str:
    """What the docs show as code: fenced blocks and inline code spans."""
    text = doc_text()
    blocks = [body for _, body in fenced()]
    prose = FENCE.sub("", text)
    return "\n".join(blocks + re.findall(r"`([^`\n]+)`", prose))


# --- the CLI -----------------------------------------------------------------------------------


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


COMMON = {"-C", "--run-dir", "--json", "--traceback", "-h", "--help"}


def usage_entries() -> dict[str, str]:
    """The README's usage block: `mlops-ci CMD ...` line (and its continuation) per command."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Usage", 1)[1].split("```", 2)[1]
    entries: dict[str, str] = {}
    current = None
    for line in block.splitlines():
        match = re.match(r"mlops-ci (\w[\w-]*)", line)
        if match:
            current = match.group(1)
            entries[current] = line
        elif current and line.startswith(" "):
            entries[current] += "\n" + line
    return entries


def test_every_command_and_flag_is_in_the_usage_block():
    entries = usage_entries()
    readme = (ROOT / "README.md").read_text()
    for flag in COMMON - {"-h", "--help"}:
        assert f"`{flag}" in readme.split("Every command takes", 1)[1][:400], flag
    for name, parser in subcommands().items():
        assert name in entries, f"`mlops-ci {name}` is missing from the README's usage block"
        usage = (
            entries[name].split("  ", 1)[0]
            + " "
            + " ".join(part.split("  ")[0] for part in entries[name].splitlines()[1:])
        )
        entry = entries[name]
        for action in parser._actions:
            strings = set(action.option_strings)
            if strings & COMMON:
                continue
            if not strings:  # a positional: its choices are written out
                for choice in action.choices or ():
                    assert re.search(rf"\b{choice}\b", entry), f"{name}: {choice} not in the usage"
                continue
            longest = max(strings, key=len)
            assert re.search(rf"{re.escape(longest)}\b", entry), (
                f"`mlops-ci {name} {longest}` is not in the README's usage block"
            )
        # ...and nothing in the entry's synopsis is a flag the command does not take.
        known = {s for a in parser._actions for s in a.option_strings}
        for flag in re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", usage):
            assert flag in known, f"the usage of `mlops-ci {name}` shows {flag}, which it lacks"


def test_every_command_the_docs_name_exists():
    commands = set(subcommands())
    named = set(re.findall(r"(?<![\w/.-])mlops-ci ([a-z][a-z-]*)", code_text()))
    # `mlops-ci --version`, and words after the package name in prose-like code comments.
    unknown = sorted(named - commands)
    assert not unknown, f"the docs show commands that do not exist: {unknown}"


def test_every_flag_the_docs_show_with_a_command_exists():
    parsers = subcommands()
    problems = []
    for line in code_text().splitlines():
        for match in re.finditer(r"(?<![\w/.-])mlops-ci ([a-z][a-z-]*)((?: [^`;|&]*)?)", line):
            name, rest = match.groups()
            if name not in parsers:
                continue
            known = {s for a in parsers[name]._actions for s in a.option_strings}
            for flag in re.findall(r"(?<![\w\[-])(--[a-z][\w-]*)", rest):
                if flag not in known:
                    problems.append(f"mlops-ci {name} {flag}")
    assert not problems, f"the docs show flags that do not exist: {sorted(set(problems))}"


# --- environment variables -----------------------------------------------------------------------

ENV_NAME = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$")
# What users set or choose; the CI's own event variables (GITHUB_SHA, CI_MERGE_REQUEST_IID...)
# are documented by GitHub and GitLab.
USER_FACING = re.compile(
    r"^(MLOPS_CI_\w+|\w+_TOKEN|GITHUB_API_URL|CI_API_V4_URL|GITHUB_ACTIONS|GITLAB_CI|DVC_NO_ANALYTICS)$"
)


def package_sources() -> Iterator[tuple[Path, ast.AST]]:
    for path in sorted((ROOT / "mlops_ci").rglob("*.py")):
        yield path, ast.parse(path.read_text())


def variables_the_code_reads() -> set[str]:
    names = set()
    for _path, tree in package_sources():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and ENV_NAME.match(node.value)
                and USER_FACING.match(node.value)
            ):
                names.add(node.value)
            # `{f"MLOPS_CI_{k.upper()}": v for k, v in values.items()}`: the deploy command's
            # environment is built from the keys of `values`.
            if isinstance(node, ast.FunctionDef) and node.name == "run_command":
                for assign in ast.walk(node):
                    if (
                        isinstance(assign, ast.Assign)
                        and isinstance(assign.value, ast.Dict)
                        and any(getattr(t, "id", "") == "values" for t in assign.targets)
                    ):
                        for key in assign.value.keys:
                            if isinstance(key, ast.Constant):
                                names.add(f"MLOPS_CI_{key.value.upper()}")
    # Prefixes and constants, not variables.
    return {n for n in names if not n.startswith("MLOPS_CI_INPUT_") and "LIMIT" not in n}


def test_the_package_reads_what_the_test_expects():
    # Guards the extraction above: if these vanish, the walk is broken, not the docs.
    names = variables_the_code_reads()
    assert {"MLOPS_CI_TOKEN", "GITHUB_TOKEN", "MLOPS_CI_REMOTE_URL", "MLOPS_CI_BUNDLE"} <= names


def test_every_environment_variable_is_documented():
    text = doc_text()
    missing = sorted(n for n in variables_the_code_reads() if not re.search(rf"`{n}[`=]", text))
    assert not missing, f"environment variables the package reads but the docs omit: {missing}"


def test_every_variable_the_docs_name_exists():
    shipped = "\n".join(
        p.read_text()
        for p in [
            *ACTIONS,
            *WORKFLOWS.glob("*.yml"),
            GITLAB_TEMPLATE,
            *(ROOT / "mlops_ci").rglob("*.py"),
        ]
    )
    shipped += "\n".join(sorted(variables_the_code_reads()))  # the deploy command's environment
    named = set(re.findall(r"\b(MLOPS_CI_[A-Z0-9_]*[A-Z0-9])\b", doc_text()))
    unknown = sorted(
        n
        for n in named
        if not n.startswith("MLOPS_CI_INPUT_") and not re.search(rf"\b{n}\b", shipped)
    )
    assert not unknown, f"the docs name variables nothing reads: {unknown}"


# --- mlops-ci.yaml ------------------------------------------------------------------------------


def allowed_keys(probe: dict[str, Any]) -> set[str]:
    """The keys the loader allows at the place of `__probe__` (it lists them in its error)."""
    with pytest.raises(ConfigError) as err:
        parse_settings(yaml.safe_dump(probe))
    return set(str(err.value).split("allowed here: ", 1)[1].split(", "))


def setting_keys() -> set[str]:
    keys = {k for k in allowed_keys({"__probe__": 1})}
    for section in ("promote", "deploy", "remote", "sweep"):
        keys |= {f"{section}.{k}" for k in allowed_keys({section: {"__probe__": 1}})}
    keys |= {f"metrics.*.{k}" for k in allowed_keys({"metrics": {"m": {"__probe__": 1}}})}
    return keys


def settings_examples() -> Iterator[tuple[str, dict[str, Any]]]:
    top = allowed_keys({"__probe__": 1})
    for where, body in fenced("yaml"):
        data = yaml.safe_load(body)
        if isinstance(data, dict) and data and set(data) <= top:
            yield where, data


def key_paths(data: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in data.items():
        path = f"{prefix}{key}"
        if prefix == "metrics.":
            yield path
            for rule_key in value or {}:
                yield f"metrics.*.{rule_key}"
            continue
        yield path
        if isinstance(value, dict) and path in ("promote", "deploy", "remote", "sweep", "metrics"):
            yield from key_paths(value, path + ".")


def test_every_setting_key_is_documented():
    shown = {p for _, data in settings_examples() for p in key_paths(data)}
    spans = set(re.findall(r"`([a-z_]+(?:\.[a-z_]+)*)(?::[^`]*)?`", doc_text()))
    missing = sorted(k for k in setting_keys() if k not in shown and k not in spans)
    assert not missing, f"mlops-ci.yaml keys that no example or text of the docs shows: {missing}"


def flatten(data: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield from flatten(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip(".")


def test_every_settings_example_is_valid_for_the_reference_pipeline(trained_template: Path):
    repo = trained_template / "repo"
    metrics = set(flatten(json.loads((repo / "eval" / "metrics.json").read_text())))
    params = set(flatten(yaml.safe_load((repo / "params.yaml").read_text())))
    examples = list(settings_examples())
    assert len(examples) >= 2
    for where, data in examples:
        parse_settings(yaml.safe_dump(data), source=where)  # raises on what the loader refuses
        for name in data.get("metrics") or {}:
            assert name == "default" or name in metrics, (
                f"{where}: metric {name!r} is not one the reference pipeline writes "
                f"({', '.join(sorted(metrics))})"
            )
        sweep = data.get("sweep") or {}
        for key in [
            *(sweep.get("grid") or {}),
            *(k for c in sweep.get("candidates") or [] for k in c),
        ]:
            assert key in params, f"{where}: sweep key {key!r} is not a param of params.yaml"


# --- actions and reusable workflows -----------------------------------------------------------


def sections() -> dict[str, str]:
    """`## \\`name\\`` heading → the text up to the next `## `."""
    parts = re.split(r"^## ", DOCS.read_text(), flags=re.M)
    found = {}
    for part in parts:
        match = re.match(r"`([a-z-]+)`\n", part)
        if match:
            found[match.group(1)] = part
    return found


def table_names(text: str, heading: str) -> dict[str, str]:
    """First-column names of the table under `### heading` → the rest of the row."""
    block = text.split(f"### {heading}\n", 1)[1].split("\n### ", 1)[0]
    rows = re.findall(r"^\| `([a-z0-9-]+)` \|(.*)$", block, flags=re.M)
    return dict(rows)


@pytest.mark.parametrize("path", ACTIONS, ids=lambda p: p.parent.name)
def test_every_input_and_output_is_documented(path: Path):
    action = yaml.safe_load(path.read_text())
    name = path.parent.name
    docs = sections()
    assert name in docs, f"docs/actions.md has no section ## `{name}`"
    text = docs[name]
    inputs = table_names(text, "Inputs")
    outputs = table_names(text, "Outputs")
    declared_inputs = action.get("inputs") or {}
    declared_outputs = action.get("outputs") or {}
    missing = sorted(set(declared_inputs) - set(inputs))
    assert not missing, f"{name}: inputs not documented in docs/actions.md: {missing}"
    missing = sorted(set(declared_outputs) - set(outputs))
    assert not missing, f"{name}: outputs not documented in docs/actions.md: {missing}"
    extra = sorted((set(inputs) - set(declared_inputs)) | (set(outputs) - set(declared_outputs)))
    assert not extra, f"{name}: documented but not in action.yml: {extra}"
    for key, spec in declared_inputs.items():
        default = str(spec.get("default", ""))
        shown = f"`{default}`" if default else "(empty)"
        assert inputs[key].strip().startswith(shown), f"{name}.{key}: default should read {shown}"
    for heading in ("Permissions", "Example"):
        assert f"### {heading}\n" in text, f"{name}: no {heading} section"
    assert f"actions/{name}@" in text.split("### Example\n", 1)[1], f"{name}: example missing"


def workflow_call(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    return (data.get("on") or data.get(True))["workflow_call"]


def reusable_sections() -> dict[str, str]:
    """`### \\`reusable-x.yml\\`` heading → its text up to the next `### ` or `## `."""
    text = DOCS.read_text()
    found = {}
    for match in re.finditer(r"^### `(reusable-[a-z-]+\.yml)`\n(.*?)(?=^##)", text, re.M | re.S):
        found[match.group(1)] = match.group(2)
    return found


@pytest.mark.parametrize("path", REUSABLE, ids=lambda p: p.name)
def test_every_reusable_workflow_input_secret_and_output_is_documented(path: Path):
    call = workflow_call(path)
    docs = reusable_sections()
    assert path.name in docs, f"docs/actions.md has no section ### `{path.name}`"
    rows = dict(re.findall(r"^\| `([a-z0-9-]+)` \|(.*)$", docs[path.name], flags=re.M))
    for kind in ("inputs", "secrets", "outputs"):
        for name, spec in (call.get(kind) or {}).items():
            assert name in rows, f"{path.name}: {kind[:-1]} {name} is not documented"
            if kind == "inputs":
                default = spec.get("default", "")
                default = str(default).lower() if isinstance(default, bool) else str(default)
                shown = f"`{default}`" if default != "" else "(empty)"
                assert shown in rows[name], f"{path.name}.{name}: default should read {shown}"
    declared = {n for k in ("inputs", "secrets", "outputs") for n in (call.get(k) or {})}
    extra = sorted(set(rows) - declared)
    assert not extra, f"{path.name}: documented but not declared: {extra}"


def test_every_workflow_is_listed():
    text = DOCS.read_text()
    for path in WORKFLOWS.glob("*.yml"):
        assert f"`{path.name}`" in text, f"{path.name} is not described in docs/actions.md"


def test_permissions_and_branch_protection_are_documented():
    text = DOCS.read_text()
    section = text.split("## Permissions and branch protection\n", 1)[1].split("\n## ", 1)[0]
    for needed in (
        "checks: write",
        "mlops-ci/<artifact>",
        "production",
        "Pipelines must succeed",
        "MLOPS_CI_PUSH_TOKEN",
        "advisory",
    ):
        assert needed in section, f"the permissions section does not mention {needed!r}"


# --- YAML examples ------------------------------------------------------------------------------


def test_every_yaml_example_loads():
    for where, body in fenced("yaml|yml"):
        try:
            yaml.safe_load(textwrap.dedent(body))
        except yaml.YAMLError as exc:
            pytest.fail(f"{where}: not valid YAML: {exc}")


def workflow_examples() -> Iterator[tuple[str, str]]:
    """Workflow examples as whole workflows: a bare list of steps becomes one job."""
    for where, body in fenced("yaml"):
        data = yaml.safe_load(textwrap.dedent(body))
        if isinstance(data, list) and all(isinstance(s, dict) for s in data):
            data = {"jobs": {"example": {"runs-on": "ubuntu-latest", "steps": data}}}
        if not isinstance(data, dict) or "jobs" not in data:
            continue
        if True in data:  # YAML 1.1 reads the key `on` as true
            data["on"] = data.pop(True)
        data.setdefault("on", "pull_request")
        for job in data["jobs"].values():
            if "steps" in job:
                job.setdefault("runs-on", "ubuntu-latest")
        yield where, yaml.safe_dump(data, sort_keys=False)


def test_every_workflow_example_passes_actionlint():
    examples = dict(workflow_examples())
    assert len(examples) >= 5
    problems = tools.actionlint({f"{w}.yml": text for w, text in examples.items()})
    assert problems == [], problems


def test_the_gitlab_example_includes_the_template():
    found = [
        data
        for _, body in fenced("yaml")
        if isinstance(data := yaml.safe_load(body), dict) and "include" in data
    ]
    assert found
    for data in found:
        for item in data["include"]:
            assert (ROOT / item["file"]).is_file()


# --- claims the docs make about the code ---------------------------------------------------------


def test_the_status_context_the_docs_name_is_the_one_posted():
    from mlops_ci.forge import status_context

    assert status_context("classifier") == "mlops-ci/classifier"
    shipped = [*DOC_FILES, *ACTIONS]
    wrong = [str(p.relative_to(ROOT)) for p in shipped if "`mlops-ci/gate`" in p.read_text()]
    assert not wrong, f"these name a status context mlops-ci never posts: {wrong}"


def test_the_docs_name_the_commands_that_write_ci_json():
    """ci.json is written where `write_ci_metadata` is called (not "every command")."""
    writers = set()
    for path, tree in package_sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and any(
                isinstance(call, ast.Call) and getattr(call.func, "id", "") == "write_ci_metadata"
                for call in ast.walk(node)
            ):
                writers.add(f"{path.stem}.{node.name}")
    commands = {"train.run_train": "mlops-ci train"}
    assert writers <= set(commands), f"update this test: ci.json is also written by {writers}"
    row = next(
        line
        for line in (ROOT / "docs" / "documents.md").read_text().splitlines()
        if line.startswith("| `ci.json`")
    )
    assert "every command" not in row
    for writer in writers:
        assert f"`{commands[writer]}`" in row, row


def _commands(text: str) -> list[str]:
    """Shell lines with their continuations joined, comments after the command dropped."""
    joined = re.sub(r"\\\n\s*", "", text)
    return [line.split("  #")[0].strip() for line in joined.splitlines()]


def test_ci_runs_the_test_commands_the_readme_shows():
    """Every pytest command .ci/run runs is one the README shows, character for character."""
    ci = [c for c in _commands((ROOT / ".ci" / "run").read_text()) if " -m pytest " in c]
    shown = set(_commands((ROOT / "README.md").read_text()))
    assert len(ci) == 2, ci  # the suite, and the DVC-facing tests under the lowest DVC
    assert [c for c in ci if c not in shown] == []
