"""The `retrain:` section of `mlops-ci.yaml`: what `mlops-ci retrain` refreshes and where the
result goes.

    retrain:
      sources: [data/upstream.csv.dvc]     # default: every `dvc import` / `import-url` output
      branch_prefix: mlops-ci/retrain/     # the branch is <prefix><artifact>
      labels: [mlops-ci:retrain]
      title: Retrain {artifact} on refreshed data

Kept apart from `settings` like the data section; the JSON Schema (`$defs/retrain`) holds the
same keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops_ci.project.errors import ConfigError

DEFAULT_PREFIX = "mlops-ci/retrain/"
DEFAULT_LABELS = ("mlops-ci:retrain",)
DEFAULT_TITLE = "Retrain {artifact} on refreshed data"
_KEYS = {"sources", "branch_prefix", "labels", "title"}
# What `git check-ref-format` accepts, narrowed to what survives a URL and a shell unquoted.
_BRANCH = re.compile(r"^(?!/)(?!.*//)(?!.*\.\.)(?!.*\.lock(/|$))[A-Za-z0-9._/-]+$")


@dataclass(frozen=True)
class RetrainSettings:
    sources: tuple[str, ...] = ()  # .dvc files to `dvc update`; empty: every import
    branch_prefix: str = DEFAULT_PREFIX
    labels: tuple[str, ...] = DEFAULT_LABELS
    title: str = DEFAULT_TITLE

    def branch(self, artifact: str) -> str:
        """One branch per artifact, so reruns update one pull request."""
        name = f"{self.branch_prefix}{artifact}"
        if not _BRANCH.match(name) or name.endswith(("/", ".")):
            raise ConfigError(
                f"mlops-ci.yaml: retrain.branch_prefix + artifact gives {name!r}, which is not a "
                "valid branch name; use letters, digits, '.', '_', '-' and single '/'"
            )
        return name

    def pull_title(self, artifact: str) -> str:
        return self.title.replace("{artifact}", artifact)


def parse_retrain(source: str, data: Any) -> RetrainSettings:
    """The `retrain:` mapping (None: defaults); every error names the file and the key."""
    if data is None:
        return RetrainSettings()
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: retrain must be a mapping, not {type(data).__name__}")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key 'retrain.{unknown[0]}'; allowed here: {', '.join(sorted(_KEYS))}"
        )
    sources = _strings(source, "sources", data.get("sources"), ())
    for path in sources:
        if not path.endswith(".dvc") or path.startswith("/") or ".." in path.split("/"):
            raise ConfigError(
                f"{source}: retrain.sources: {path!r} must be a .dvc file inside the project, "
                "relative to its root (e.g. data/raw.csv.dvc)"
            )
    prefix = data.get("branch_prefix") or DEFAULT_PREFIX
    if not isinstance(prefix, str):
        raise ConfigError(f"{source}: retrain.branch_prefix must be text, e.g. {DEFAULT_PREFIX}")
    title = data.get("title") or DEFAULT_TITLE
    if not isinstance(title, str) or not title.strip():
        raise ConfigError(f"{source}: retrain.title must be text")
    labels = _strings(source, "labels", data.get("labels"), DEFAULT_LABELS)
    return RetrainSettings(
        sources=sources, branch_prefix=prefix, labels=labels, title=title.strip()
    )


def _strings(source: str, key: str, value: Any, default: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{source}: retrain.{key} must be a list of non-empty strings")
    return tuple(value)
