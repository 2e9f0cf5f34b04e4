"""The trust boundary: everything code from a pull request can shape enters mlops-ci here.

A pull request writes run-directory documents and bundles (a fork's job, or the retrain job that
ran its stages), comments and notes (and could copy our hidden records into them), tables,
metrics and params files, symlinks and paths. Each such input has one validating function in
this package, and the commands call it rather than parse the input themselves; docs/security.md
is the inventory (entry point, who controls the input, the function, the tests), and a test fails
when a function registered here is missing from it.

- `run_dir`: an untrusted run directory (named documents, size limits, strict JSON, schemas);
- `text`: untrusted text made inert for every renderer (no comment opener, no marker of ours,
  no control character or line separator);
- `records`: the hidden records the tool writes into its own comments, read only at the position
  the tool writes them;
- `paths`: a file of a revision, read only when it resolves inside the repository;
- `retrain`: the retrain run's claims (retrain.json, the bundle) checked against what the
  trusted side computes itself;
- `inventory`: the registry of entry points.
"""

from __future__ import annotations

from typing import Any

# The run-directory names, kept importable from the package as before; loaded on first use so
# that importing `text` or `records` (every renderer does) loads no JSON Schema machinery.
_RUN_DIR_NAMES = frozenset(
    {
        "DOCUMENTS",
        "KIB",
        "MAX_DEPTH",
        "MIB",
        "UntrustedInputRejected",
        "ValidatedRun",
        "load_schema",
        "load_untrusted_run_dir",
        "read_document",
        "validate_document",
    }
)


def __getattr__(name: str) -> Any:
    if name in _RUN_DIR_NAMES:
        from mlops_ci.ci.untrusted import run_dir

        return getattr(run_dir, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
