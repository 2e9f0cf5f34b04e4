"""What a DVC project's `dvc.yaml` files declare and what its `dvc.lock`/`.dvc` files record.

Read the way DVC's own collectors read them (dvc/repo/{metrics,params,plots}), so that what
`compare` shows equals `dvc metrics diff`, `dvc params diff` and `dvc plots diff`:

- every `dvc.yaml` of the project counts, not only the root one; paths in a stage are relative
  to its `wdir`, top-level paths to the `dvc.yaml`'s own directory;
- metrics: stage `metrics:` outputs plus top-level `metrics:`; a directory means every file in it;
- params: the keys stages declare, top-level `params:` files whole, and the default
  `params.yaml` whole whenever it exists (DVC merges these per file);
- plots: stage `plots:` outputs (their id is the file), top-level path definitions (one id per
  file, directories expanded) and top-level definitions with a `y:` mapping (the id is the name).

Projects that use DVC's templating (`vars`, `${...}`, `foreach`, `matrix`) are resolved through
DVC's own resolver first (`dvc.resolve_templated`), then read here like any other.
"""

from __future__ import annotations

import functools
import json
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from mlops_ci.project.errors import ConfigError

DEFAULT_PARAMS_FILE = "params.yaml"
# DVC draws these as images, not Vega-Lite (dvc_render.ImageRenderer.EXTENSIONS).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".gif", ".png", ".svg")
_PLOT_PROPS = ("x", "y", "template", "title", "x_label", "y_label", "header")

try:  # libyaml when present: dvc.yaml/dvc.lock hold only paths, hashes and options
    _FastLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _FastLoader = yaml.SafeLoader


def load_pipeline_yaml(text: bytes | str, name: str) -> Any:
    """A `dvc.yaml`/`dvc.lock`/`.dvc` file as data (ConfigError naming the file when broken).

    The same bytes are parsed once per process: a comparison reads each revision's `dvc.lock`
    for its outputs, its data files and its stages' inputs. The data is shared between the
    callers, which only read it."""
    try:
        return _parse_pipeline_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name} is not valid YAML: {exc}") from exc


@functools.lru_cache(maxsize=64)
def _parse_pipeline_yaml(text: bytes | str) -> Any:
    return yaml.load(text, Loader=_FastLoader)  # noqa: S506 - a safe loader


# Above this many `[`/`{` a YAML file is parsed by the pure-Python parser: see parse_structured.
MAX_C_FLOW_OPENINGS = 10_000


def parse_structured(path: str, data: bytes) -> Any:
    """A metrics or params file as DVC parses it (dvc/utils/serialize): JSON, TOML, else YAML
    1.2 through ruamel (`1e-3` is a number and `yes` a string there, unlike YAML 1.1)."""
    text = data.decode("utf-8")
    suffix = posixpath.splitext(path)[1].lower()
    if suffix == ".json":
        return json.loads(text) or {}  # accepts NaN and Infinity, as DVC does
    if suffix == ".toml":
        import tomllib  # Python 3.11+; on 3.10 a TOML file is reported as unreadable

        return tomllib.loads(text)
    if suffix == ".py":  # constants and class attributes, by DVC's own AST reader
        from dvc.utils.serialize import parse_py

        return parse_py(text, path)
    # DVC's own call (dvc/utils/serialize/_yaml.py): the C parser when ruamel.yaml.clib is
    # installed, as it is with mlops-ci, else the pure one; YAML 1.2 either way. The C composer
    # recurses without a limit and crashes the process on flow collections nested some 100,000
    # deep; the pure one stops with a RecursionError that is reported as too deep.
    flow_openings = text.count("[") + text.count("{")
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=flow_openings > MAX_C_FLOW_OPENINGS).load(text) or {}


@dataclass(frozen=True)
class PlotDef:
    """One plot as `dvc plots diff` names it."""

    id: str
    config: str  # the dvc.yaml that defines it; "" for a stage's output plot
    files: tuple[str, ...]  # data files (after directory expansion, for path ids)
    props: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    path_id: bool = True  # the id is a (file or directory) path, not a name

    @property
    def image(self) -> bool:
        return self.path_id and self.id.lower().endswith(IMAGE_EXTENSIONS)

    @property
    def title(self) -> str:
        return str(self.props.get("title") or self.id)

    @property
    def template(self) -> str:
        return str(self.props.get("template") or "linear")

    def x_field(self, file: str) -> str | None:
        x = self.props.get("x")
        if isinstance(x, dict):
            x = x.get(file)
        return str(x) if isinstance(x, str) else None

    def x_source(self, file: str) -> tuple[str, str] | None:
        """(file, field) of x values another file holds for `file`'s rows, joined by row
        index as DVC joins them (`x: {other.json: field}`)."""
        x = self.props.get("x")
        if isinstance(x, dict) and file not in x and len(x) == 1:
            ((other, field),) = x.items()
            return str(other), str(field)
        return None

    @property
    def x_files(self) -> tuple[str, ...]:
        x = self.props.get("x")
        return tuple(str(f) for f in x if f not in self.files) if isinstance(x, dict) else ()

    def y_fields(self, file: str) -> list[str]:
        y = self.props.get("y")
        if isinstance(y, dict):
            y = y.get(file)
        if isinstance(y, str):
            return [y]
        return [str(v) for v in y] if isinstance(y, list) else []


@dataclass
class Declarations:
    """Everything the project's `dvc.yaml` files name, relative to the DVC project root."""

    metrics: list[str] = field(default_factory=list)  # files or directories
    params: dict[str, list[str]] = field(default_factory=dict)  # file -> keys ([]: whole)
    plots: list[tuple[str, str, dict[str, Any], bool]] = field(default_factory=list)
    templated: bool = False  # needs DVC's resolver
    # outputs declared `cache: false`: DVC reads them at a revision from git only
    uncached: set[str] = field(default_factory=set)

    def add_params(self, file: str, keys: list[str]) -> None:
        # DVC's _merge_params: a file tracked whole anywhere is tracked whole.
        if file in self.params and (not self.params[file] or not keys):
            self.params[file] = []
        else:
            self.params[file] = list(dict.fromkeys([*self.params.get(file, []), *keys]))


def norm(base: str, path: str) -> str:
    """`path` (relative to `base`) relative to the project root, as DVC normalises it."""
    if "\n" in str(path) or str(path).startswith("/"):
        raise ConfigError(f"dvc.yaml: path {path!r} must be relative to the project")
    joined = posixpath.normpath(posixpath.join(base, str(path)))
    if joined == ".." or joined.startswith("../"):
        raise ConfigError(f"dvc.yaml: path {path!r} points outside the project")
    return joined


def at_or_under(path: str, roots: Iterable[str]) -> bool:
    """Whether the project path `path` is one of `roots` or lies inside one of them (a file
    of a directory output), by whole path segments: `data/x` is not under `da`."""
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def entries(value: Any) -> list[tuple[str, Any]]:
    """DVC's list-of-str-or-single-key-dict form as (key, options) pairs."""
    pairs: list[tuple[str, Any]] = []
    for item in value or []:
        if isinstance(item, str):
            pairs.append((item, None))
        elif isinstance(item, dict):
            pairs.extend((str(k), v) for k, v in item.items())
    return pairs


def is_templated(data: Any, raw: bytes | str) -> bool:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    if not isinstance(data, dict):
        return False
    stages = data.get("stages") or {}
    return (
        "vars" in data
        or "${" in text
        or any(isinstance(s, dict) and ("foreach" in s or "matrix" in s) for s in stages.values())
    )


# The shapes of DVC's dvc.yaml schema (dvc/schema.py MULTI_STAGE_SCHEMA) that a pipeline
# commonly takes. A document of these shapes only is taken as valid without importing DVC (its
# schema costs every comparison a third of a second); anything else is checked by DVC's own
# schema (`dvc.check_pipeline_schema`). tests/project/test_dvc_api.py holds the two together.
_TOP_KEYS = {"stages", "vars", "params", "metrics", "plots", "artifacts", "datasets"}
_STAGE_KEYS = {"cmd", "wdir", "deps", "params", "outs", "metrics", "plots", "vars", "frozen",
               "meta", "desc", "always_changed", "matrix"}  # fmt: skip
_OUT_OPTIONS = {"cache", "persist", "checkpoint", "remote", "push", "desc", "type", "labels",
                "meta", *_PLOT_PROPS}  # fmt: skip


def plainly_valid(data: Any) -> bool:
    """Whether a parsed `dvc.yaml` has only shapes DVC's schema surely accepts (see above);
    False means "ask DVC's schema", not "invalid"."""
    if not isinstance(data, dict) or not set(data) <= _TOP_KEYS:
        return False
    for key in ("params", "metrics"):
        if key in data and not _strings(data[key]):
            return False
    if "vars" in data and not isinstance(data["vars"], list):
        return False
    plots = data.get("plots", [])
    if not isinstance(plots, list) or not all(_plot_entry(p) for p in plots):
        return False
    stages = data.get("stages", {})
    return isinstance(stages, dict) and all(_plain_stage(s) for s in stages.values())


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _plot_entry(entry: Any) -> bool:
    if isinstance(entry, str):
        return True
    if not (isinstance(entry, dict) and len(entry) == 1):
        return False
    (props,) = entry.values()
    if props is None:
        return True
    if not (isinstance(props, dict) and set(props) <= set(_PLOT_PROPS) - {"header"}):
        return False
    x, y = props.get("x", ""), props.get("y", "")
    return (
        all(isinstance(props.get(k, ""), str) for k in ("template", "title", "x_label", "y_label"))
        and (isinstance(x, str) or (isinstance(x, dict) and _str_map(x, lambda v: isinstance(v, str))))
        and (isinstance(y, str) or _strings(y) or (isinstance(y, dict) and _str_map(y, _str_or_strings)))
    )  # fmt: skip


def _str_map(value: dict[Any, Any], check: Any) -> bool:
    return all(isinstance(k, str) and check(v) for k, v in value.items())


def _str_or_strings(value: Any) -> bool:
    return isinstance(value, str) or _strings(value)


_BOOL_OPTIONS = {"cache", "persist", "checkpoint", "push", "header"}


def _plain_options(options: Any) -> bool:
    """An output's options (`- path: {cache: false}`) of the types DVC's schema takes."""
    if not (isinstance(options, dict) and set(options) <= _OUT_OPTIONS):
        return False
    return all(
        isinstance(v, bool) if k in _BOOL_OPTIONS
        else _strings(v) if k == "labels"
        else k == "meta" or isinstance(v, str)
        for k, v in options.items()
    )  # fmt: skip


def _plain_stage(stage: Any) -> bool:
    if not isinstance(stage, dict) or "foreach" in stage or "do" in stage:
        return False  # foreach/do: DVC's schema decides
    if not set(stage) <= _STAGE_KEYS - {"matrix"} or not isinstance(stage.get("cmd"), str | list):
        return False  # matrix: DVC's schema decides
    if "deps" in stage and not _strings(stage["deps"]):
        return False
    kinds = {"wdir": str, "desc": str, "frozen": bool, "always_changed": bool, "vars": list}
    if not all(isinstance(stage[k], kind) for k, kind in kinds.items() if k in stage):
        return False
    for key in ("outs", "metrics", "plots"):
        items = stage.get(key, [])
        if not isinstance(items, list):
            return False
        for item in items:
            if isinstance(item, str):
                continue
            if not (isinstance(item, dict) and len(item) == 1):
                return False
            if not _plain_options(next(iter(item.values()))):
                return False
    params = stage.get("params", [])
    return isinstance(params, list) and all(isinstance(p, str | dict) for p in params)


def declare(decl: Declarations, dvcfile: str, data: Any) -> None:
    """Add what one parsed `dvc.yaml` (at project-relative path `dvcfile`) declares."""
    if not isinstance(data, dict):
        raise ConfigError(f"{dvcfile} must be a mapping with a `stages:` section")
    base = posixpath.dirname(dvcfile)
    for stage in (data.get("stages") or {}).values():
        if not isinstance(stage, dict):
            continue
        wdir = norm(base, str(stage.get("wdir", ".")))
        for path, _opts in entries(stage.get("metrics")):
            decl.metrics.append(norm(wdir, path))
        for key in ("outs", "metrics", "plots"):
            decl.uncached.update(
                norm(wdir, path)
                for path, opts in entries(stage.get(key))
                if isinstance(opts, dict) and opts.get("cache") is False
            )
        for item in stage.get("params") or []:
            if isinstance(item, str):  # a key of the stage's default params file
                decl.add_params(norm(wdir, DEFAULT_PARAMS_FILE), [item])
            elif isinstance(item, dict):  # {file: [keys]}; no keys: the whole file
                for file, keys in item.items():
                    named = [str(k) for k in keys] if isinstance(keys, list) else []
                    decl.add_params(norm(wdir, str(file)), named)
        for path, opts in entries(stage.get("plots")):
            props = _props(opts)
            decl.plots.append(("", norm(wdir, path), props, True))
    for path in data.get("metrics") or []:
        decl.metrics.append(norm(base, str(path)))
    for path in data.get("params") or []:
        decl.add_params(norm(base, str(path)), [])
    for name, opts in entries(data.get("plots")):
        props = _props(opts)
        if isinstance(props.get("y"), dict):
            props["y"] = {norm(base, f): v for f, v in props["y"].items()}
            if isinstance(props.get("x"), dict):
                props["x"] = {norm(base, f): v for f, v in props["x"].items()}
            decl.plots.append((dvcfile, name, props, False))
        else:
            decl.plots.append((dvcfile, norm(base, name), props, True))


def _props(opts: Any) -> dict[str, Any]:
    return {k: v for k, v in opts.items() if k in _PLOT_PROPS} if isinstance(opts, dict) else {}


def finish(decl: Declarations, root_params_exists: bool) -> Declarations:
    """DVC also reads the root `params.yaml` whole whenever it exists."""
    if root_params_exists:
        decl.add_params(DEFAULT_PARAMS_FILE, [])
    decl.metrics = list(dict.fromkeys(decl.metrics))
    return decl


@dataclass(frozen=True)
class LockEntry:
    """One dependency or output of a stage, as `dvc.lock` (or a `.dvc` file) records it."""

    stage: str
    role: str  # "dep" or "out"
    path: str  # relative to the project root
    md5: str | None  # directories have `.dir` hashes
    digest: str | None  # the md5, else the etag or checksum DVC records for a cloud path
    size: int | None


def lock_entries(
    text: bytes | str | None, base: str = "", wdirs: dict[str, str] | None = None
) -> list[LockEntry]:
    """Every dep and out of every stage in a `dvc.lock` (empty when there is none). Paths are
    made project-relative: `base` is the lock file's directory, `wdirs` each stage's wdir."""
    if text is None:
        return []
    data = load_pipeline_yaml(text, posixpath.join(base, "dvc.lock")) or {}
    stages = data.get("stages") if isinstance(data, dict) else None
    entries = []
    for name, stage in (stages or {}).items():
        wdir = (wdirs or {}).get(str(name), base) or base
        for role, key in (("dep", "deps"), ("out", "outs")):
            for item in (stage.get(key) if isinstance(stage, dict) else None) or []:
                entry = _entry(item, str(name), role, wdir)
                if entry:
                    entries.append(entry)
    return entries


def dvcfile_entries(text: bytes | str, path: str) -> list[LockEntry]:
    """The outputs a `.dvc` file (from `dvc add` / `dvc import`) records."""
    data = load_pipeline_yaml(text, path) or {}
    base = posixpath.dirname(path)
    wdir = norm(base, str(data.get("wdir", "."))) if isinstance(data, dict) else base
    outs = data.get("outs") if isinstance(data, dict) else None
    return [e for item in outs or [] if (e := _entry(item, path, "out", wdir))]


def _entry(item: Any, stage: str, role: str, wdir: str) -> LockEntry | None:
    if not (isinstance(item, dict) and item.get("path")):
        return None
    raw = str(item["path"])
    path = raw if "://" in raw else posixpath.normpath(posixpath.join(wdir, raw))
    md5 = str(item["md5"]) if item.get("md5") else None
    other = item.get("etag") or item.get("checksum")
    return LockEntry(
        stage=stage,
        role=role,
        path=path,
        md5=md5,
        digest=md5 or (str(other) if other else None),
        size=item.get("size"),
    )


def stage_wdirs(data: Any, dvcfile: str) -> dict[str, str]:
    """Stage name -> its working directory (project-relative), for reading its `dvc.lock`."""
    base = posixpath.dirname(dvcfile)
    stages = data.get("stages") if isinstance(data, dict) else None
    return {
        str(name): norm(base, str(stage.get("wdir", ".")))
        for name, stage in (stages or {}).items()
        if isinstance(stage, dict)
    }


def lock_hashes(text: bytes | str | None) -> dict[str, str]:
    """Output path -> md5 from a root `dvc.lock` (files and `.dir` hashes alike)."""
    return {e.path: e.md5 for e in lock_entries(text) if e.role == "out" and e.md5}


@dataclass(frozen=True)
class StagePaths:
    """One stage's dependencies and outputs (project-relative), as its `dvc.yaml` lists them."""

    name: str
    dvcfile: str
    deps: tuple[str, ...]
    outs: tuple[str, ...]  # outs, metrics and plots outputs alike


def stage_paths(data: Any, dvcfile: str) -> list[StagePaths]:
    """The stages of one parsed (resolved) `dvc.yaml` with their paths."""
    if not isinstance(data, dict):
        return []
    base = posixpath.dirname(dvcfile)
    stages = []
    for name, stage in (data.get("stages") or {}).items():
        if not isinstance(stage, dict):
            continue
        wdir = norm(base, str(stage.get("wdir", ".")))
        deps = [norm(wdir, p) for p, _ in entries(stage.get("deps")) if "://" not in p]
        outs = [
            norm(wdir, p)
            for key in ("outs", "metrics", "plots")
            for p, _ in entries(stage.get(key))
            if "://" not in p
        ]
        stages.append(StagePaths(str(name), dvcfile, tuple(deps), tuple(outs)))
    return stages


@dataclass(frozen=True)
class ArtifactDecl:
    """One entry of a `dvc.yaml`'s `artifacts:` (DVC's model registry declaration, which
    `dvc artifacts get` and GTO read)."""

    name: str
    path: str  # project-relative
    type: str | None
    desc: str | None
    dvcfile: str


def artifacts(data: Any, dvcfile: str) -> list[ArtifactDecl]:
    """The `artifacts:` of one parsed `dvc.yaml`, paths made project-relative."""
    section = data.get("artifacts") if isinstance(data, dict) else None
    if not isinstance(section, dict):
        return []
    base = posixpath.dirname(dvcfile)
    found = []
    for name, entry in section.items():
        if not isinstance(entry, dict) or not entry.get("path"):
            continue
        raw = str(entry["path"])
        path = raw if "://" in raw else norm(base, raw)
        kind, desc = entry.get("type"), entry.get("desc")
        found.append(
            ArtifactDecl(
                str(name), path, str(kind) if kind else None, str(desc) if desc else None, dvcfile
            )
        )
    return found
