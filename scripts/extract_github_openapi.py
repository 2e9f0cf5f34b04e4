"""Extract the GitHub REST operations mlops-ci uses from the `@octokit/openapi` package.

The full description is ~13 MB; the test fakes validate against this small, committed subset
(tests/openapi/github-rest-subset.json). The extraction is deterministic, so a test re-runs it
and compares whenever the npm package is installed.

    npm install --prefix /tmp/octo @octokit/openapi@23.0.2
    python scripts/extract_github_openapi.py \
        --package /tmp/octo/node_modules/@octokit/openapi \
        --output tests/openapi/github-rest-subset.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

PINNED_VERSION = "23.0.2"
SOURCE_FILE = "generated/api.github.com.json"

# Every operation the project (library and fakes) calls. Keep sorted.
OPERATIONS = (
    "checks/create",
    "git/create-ref",
    "git/create-tag",
    "git/get-ref",
    "git/list-matching-refs",
    "issues/add-labels",
    "issues/create-comment",
    "issues/get-comment",
    "issues/list-comments",
    "issues/update-comment",
    "pulls/create",
    "pulls/get",
    "pulls/list",
    "pulls/update",
    "repos/create-commit-status",
    "repos/create-deployment",
    "repos/create-deployment-status",
    "repos/get-collaborator-permission-level",
    "repos/get-combined-status-for-ref",
    "repos/list-commit-statuses-for-ref",
    "repos/list-deployment-statuses",
    "repos/list-deployments",
    "repos/list-pull-requests-associated-with-commit",
    "users/get-authenticated",
)

# Prose and examples are most of the size and validate nothing.
_DROP_KEYS = {"description", "summary", "examples", "example", "x-github", "externalDocs"}


def _strip(node: Any, *, in_properties: bool = False) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            # Inside "properties" the keys are field names (a field may be called "description").
            if not in_properties and key in _DROP_KEYS:
                continue
            out[key] = _strip(value, in_properties=(key == "properties" and not in_properties))
        return out
    if isinstance(node, list):
        return [_strip(item) for item in node]
    return node


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref)
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for item in node:
            found |= _refs(item)
    return found


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    if not ref.startswith("#/"):
        raise ValueError(f"only local references are supported, got {ref}")
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def extract(full: dict[str, Any]) -> dict[str, Any]:
    """Return an OpenAPI document holding only OPERATIONS and the components they reach."""
    paths: dict[str, Any] = {}
    wanted = set(OPERATIONS)
    for path, item in full["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict) and op.get("operationId") in wanted:
                paths.setdefault(path, {})[method] = _strip(op)
                wanted.discard(op["operationId"])
    if wanted:
        raise SystemExit(f"operations missing from the description: {sorted(wanted)}")

    components: dict[str, dict[str, Any]] = {}
    pending = _refs(paths)
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        _, _, section, name = ref.split("/", 3)
        node = _strip(_resolve(full, ref), in_properties=False)
        components.setdefault(section, {})[name] = node
        pending |= _refs(node) - seen

    return {
        "openapi": full["openapi"],
        "info": {
            "title": "GitHub REST subset used by mlops-ci",
            "version": full["info"]["version"],
            "x-source": f"@octokit/openapi@{PINNED_VERSION} {SOURCE_FILE}",
            "x-operations": list(OPERATIONS),
        },
        "paths": {p: paths[p] for p in sorted(paths)},
        "components": {s: dict(sorted(components[s].items())) for s in sorted(components)},
    }


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


def extract_package(package_dir: Path) -> str:
    manifest = json.loads((package_dir / "package.json").read_text())
    if manifest.get("version") != PINNED_VERSION:
        raise SystemExit(
            f"@octokit/openapi {manifest.get('version')} found, {PINNED_VERSION} pinned: "
            f"install @octokit/openapi@{PINNED_VERSION}"
        )
    full = json.loads((package_dir / SOURCE_FILE).read_text())
    return render(extract(full))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", required=True, type=Path, help="node_modules/@octokit/openapi")
    parser.add_argument("--output", type=Path, help="write here instead of stdout")
    args = parser.parse_args(argv)
    text = extract_package(args.package)
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
