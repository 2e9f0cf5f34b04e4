"""PNG files of the comparison's plots, from DVC's own Vega-Lite templates, rendered in-process.

`dvc_render` (shipped with DVC) fills the template the user chose in `dvc.yaml` (simple, linear,
confusion, ...) with both revisions' rows, as `dvc plots diff` would; `vl-convert-python` (the
optional `charts` extra) turns the Vega-Lite spec into a PNG without Node or a browser. Without
it the report says so instead of failing.
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
    return renderer.get_filled_template()


def render_pngs(
    plots: Sequence[dict],
    out_dir: Path,
    *,
    baseline_rev: str = "baseline",
    candidate_rev: str = "candidate",
) -> PngResult:
    """Write one PNG per plot into `out_dir`; a plot that cannot be drawn adds a note."""
    result = PngResult()
    if not plots:
        return result
    if not png_available():
        result.notes.append(MISSING_NOTE)
        return result
    import vl_convert

    out_dir.mkdir(parents=True, exist_ok=True)
    for plot, name in zip(plots, plot_names(plots), strict=False):
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
