"""The `retrain:` section of `mlops-ci.yaml`: what `mlops-ci retrain` refreshes and where the
result goes.

    retrain:
      sources: [data/upstream.csv.dvc]     # default: every `dvc import` / `import-url` output
      branch_prefix: mlops-ci/retrain/     # the branch is <prefix><artifact>
      labels: [mlops-ci:retrain]
      title: Retrain {artifact} on refreshed data

The keys and defaults are those of the JSON Schema (`$defs/retrain`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlops_ci.project.errors import ConfigError
from mlops_ci.project.settings_schema import FROM_SCHEMA, schema_section

# What `git check-ref-format` accepts, narrowed to what survives a URL and a shell unquoted.
_BRANCH = re.compile(r"^(?!/)(?!.*//)(?!.*\.\.)(?!.*\.lock(/|$))[A-Za-z0-9._/-]+$")


@dataclass(frozen=True)
@schema_section("retrain")
class RetrainSettings:
    sources: tuple[str, ...] = ()  # .dvc files to `dvc update`; empty: every import
    branch_prefix: str = FROM_SCHEMA
    labels: tuple[str, ...] = FROM_SCHEMA
    title: str = FROM_SCHEMA

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
        return self.title.strip().replace("{artifact}", artifact)
