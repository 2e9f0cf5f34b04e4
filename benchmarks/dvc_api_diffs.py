"""DVC's Python API doing in one process what `dvc metrics diff`, `dvc params diff` and
`dvc plots diff` do in three: the peer that takes away the "one process instead of three"
margin. Prints the three results as JSON, as the commands' --json would.

    python benchmarks/dvc_api_diffs.py BASELINE_REV
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    from dvc.render.convert import to_json
    from dvc.render.match import match_defs_renderers
    from dvc.repo import Repo

    rev = sys.argv[1]
    with Repo(".") as repo:
        metrics = repo.metrics.diff(a_rev=rev)
        params = repo.params.diff(a_rev=rev)
        # What `dvc plots diff REV --json` does: collect both revisions, fill the templates.
        data = repo.plots.diff(revs=[rev])
        renderers = match_defs_renderers(
            data=data, out="dvc_plots", templates_dir=repo.plots.templates_dir
        )
        plots = {r.renderer.name: to_json(r.renderer, False) for r in renderers}
    json.dump({"metrics": metrics, "params": params, "plots": plots}, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
