"""PNG files of the comparison's plots, from DVC's own Vega-Lite templates, rendered in-process.

`dvc_render` (shipped with DVC) fills the template the user chose in `dvc.yaml` (simple, linear,
confusion, ...) with both revisions' rows, as `dvc plots diff` would; `vl-convert-python` (the
optional `charts` extra) turns the Vega-Lite spec into a PNG without Node or a browser. Without
it the report says so instead of failing.

PNGs cost about 0.1 s each (the first one about 0.5 s, vl-convert's start), one after another:
vl-convert holds the interpreter while it draws, so threads do not help. They are therefore
drawn only when asked (`mlops-ci report --png`, `pr --png`) and at most `DEFAULT_LIMIT` of them
(`--png-limit`); the comment itself draws its charts with Mermaid and needs none.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

MISSING_NOTE = (
    "PNG plots were not rendered: install the `charts` extra "
    "(`pip install 'mlops-ci[charts]'`) to get them in the run directory."
)
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
DEFAULT_LIMIT = 20


@dataclass
class PngResult:
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def png_available() -> bool:
    return importlib.util.find_spec("vl_convert") is not None


def png_name(plot_id: object, used: set[str] | None = None) -> str:
    """A file name under `plots/` for a plot id such as `eval/plots/roc.json`; never a path."""
    stem = re.sub(r"\.(json|csv|tsv|ya?ml)$", "", str(plot_id))
    stem = _FILENAME_UNSAFE.sub("-", stem).strip("-.")[:80] or "plot"
    name, n = f"{stem}.png", 2
    while used is not None and name in used:
        name, n = f"{stem}-{n}.png", n + 1
    if used is not None:
        used.add(name)
    return name


def plot_names(plots: Sequence[dict]) -> list[str]:
    used: set[str] = set()
    return [png_name(p.get("id") or p.get("title"), used) for p in plots]


def vega_lite_spec(plot: dict, baseline_rev: str, candidate_rev: str) -> dict:
    """The Vega-Lite spec DVC would draw for `plot`, with both revisions as `rev`."""
    from dvc_render.vega import VegaRenderer

    if candidate_rev == baseline_rev:  # the workspace on top of the baseline commit
        candidate_rev = f"{candidate_rev} (workspace)"
    rows = []
    for rev, key in ((baseline_rev, "baseline"), (candidate_rev, "candidate")):
        for row in plot.get(key) or []:
            if isinstance(row, dict):
                rows.append({**row, "rev": rev})
    properties = {
        "template": str(plot.get("template") or "simple"),
        "x": str(plot.get("x") or "x"),
        "y": str(plot.get("y") or "y"),
        "title": str(plot.get("title") or plot.get("id") or ""),
    }
    renderer = VegaRenderer(rows, str(plot.get("id") or "plot"), **properties)
    spec = renderer.get_filled_template()
    if rows and all("count" in row for row in rows):
        _sum_counts(spec)
    return spec


def _sum_counts(node: object) -> None:
    """Confusion rows arrive already counted (`actual`, `predicted`, `count`) where DVC's
    template counts raw rows: make its `count` aggregates sum the `count` field instead."""
    if isinstance(node, dict):
        for op in node.get("aggregate") or []:
            if isinstance(op, dict) and op.get("op") == "count" and "field" not in op:
                op["op"], op["field"] = "sum", "count"
        for value in node.values():
            _sum_counts(value)
    elif isinstance(node, list):
        for item in node:
            _sum_counts(item)


def render_pngs(
    plots: Sequence[dict],
    out_dir: Path,
    *,
    baseline_rev: str = "baseline",
    candidate_rev: str = "candidate",
    limit: int = DEFAULT_LIMIT,
) -> PngResult:
    """Write one PNG per Vega plot into `out_dir`, at most `limit` of them; a plot that cannot
    be drawn, and the plots over the limit, add a note."""
    result = PngResult()
    plots = [p for p in plots if p.get("kind", "vega") == "vega"]
    if not plots:
        return result
    if not png_available():
        result.notes.append(MISSING_NOTE)
        return result
    import vl_convert

    if len(plots) > limit:
        result.notes.append(
            f"{len(plots) - limit} of {len(plots)} plots were not drawn as PNG "
            f"(limit {limit}; raise it with --png-limit)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    for plot, name in zip(plots[:limit], plot_names(plots), strict=False):
        try:
            spec = vega_lite_spec(plot, baseline_rev, candidate_rev)
            if not spec:
                continue
            png = vl_convert.vegalite_to_png(spec, scale=1.0)
        except Exception as exc:  # a bad template or field in one plot must not lose the others
            result.notes.append(f"{name}: not rendered ({type(exc).__name__}: {exc})"[:300])
            continue
        path = out_dir / name
        path.write_bytes(png)
        result.files.append(path)
    return result
