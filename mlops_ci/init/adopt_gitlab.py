"""What `mlops-ci init` says about a `.gitlab-ci.yml` it did not write (it never replaces one).

The lines to add (the released template's `include:` and `variables:`), the template's stages
when the pipeline lists its own, and `workflow: rules` that would never let a merge request
pipeline run. Pure: the command reads the file and prints these as next steps.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from mlops_ci.init.adopt import (
    GITLAB_CI_FILE,
    GITLAB_TEMPLATE_URL,
    INIT_HEADER,
    Detected,
    gitlab_variables,
)

# The stages the released GitLab template declares: a pipeline that lists its own `stages:`
# replaces the included list, so it must name these too.
GITLAB_STAGES = ("mlops-ci", "mlops-ci-post", "mlops-ci-release", "mlops-ci-deploy")


def written_by_init(text: str) -> bool:
    return text.startswith(INIT_HEADER)


def _gitlab_yaml(text: str) -> dict[str, Any]:
    """The user's pipeline as plain data; GitLab's own tags (`!reference`) read as null."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    try:
        data = yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def gitlab_include_steps(found: Detected, existing: str) -> list[str]:
    """What to add to a `.gitlab-ci.yml` init did not write (it is never replaced): the
    `include:` and `variables:`, the template's stages when the pipeline lists its own, and a
    warning when its `workflow: rules` would stop merge request pipelines."""
    data = _gitlab_yaml(existing)
    steps = []
    if GITLAB_TEMPLATE_URL not in existing:
        snippet = ["include:", f"  - remote: {GITLAB_TEMPLATE_URL}", "variables:"]
        snippet += gitlab_variables(found)
        steps.append(
            f"add to your {GITLAB_CI_FILE} (it was kept as it is):\n"
            + "\n".join(f"       {line}" for line in snippet)
            + "\n     (merge them into your `include:` and `variables:` if you have them)"
        )
    stages = data.get("stages")
    if isinstance(stages, list) and not set(GITLAB_STAGES) <= set(map(str, stages)):
        missing = [s for s in GITLAB_STAGES if s not in stages]
        steps.append(
            f"your {GITLAB_CI_FILE} lists its own `stages:`, which replace the template's: "
            f"add {', '.join(missing)} to them"
        )
    workflow = data.get("workflow")
    rules = workflow.get("rules") if isinstance(workflow, dict) else None
    if isinstance(rules, list) and "merge_request_event" not in json.dumps(rules):
        steps.append(
            f"your {GITLAB_CI_FILE} has `workflow: rules` that never allow merge request "
            "pipelines, so mlops-ci would never run on one: add "
            '`- if: $CI_PIPELINE_SOURCE == "merge_request_event"` to them'
        )
    return steps
