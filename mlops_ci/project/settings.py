"""`mlops-ci.yaml` (+ environment) to typed settings, with errors that name the file and key.

Unknown keys are errors, not ignored: a misspelt `max_dorp` silently turning a gate off is the
worst failure a gate can have.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from mlops_ci.project.data_settings import DataSettings, parse_data
from mlops_ci.project.errors import ConfigError
from mlops_ci.project.retrain_settings import RetrainSettings, parse_retrain

SETTINGS_FILE = "mlops-ci.yaml"
# The JSON Schema of mlops-ci.yaml is the source of truth for its keys, choices and ranges;
# editors read the same file (`# yaml-language-server: $schema=...`).
SCHEMA_FILE = "mlops-ci.schema.json"
# Package data beside the modules (pyproject's "**/*.json" glob); read from the file system, not
# through importlib.resources, whose import costs more than the read.
SCHEMAS = Path(__file__).parent / "schemas"


@cache
def settings_schema() -> dict[str, Any]:
    """The JSON Schema of `mlops-ci.yaml`, shipped in the package (project/schemas/)."""
    path = SCHEMAS.joinpath(SCHEMA_FILE)
    return json.loads(path.read_text(encoding="utf-8"))


def _section(name: str | None) -> dict[str, Any]:
    """The schema of one section (`$defs/<name>`), or of the whole file for None."""
    schema = settings_schema()
    return schema if name is None else schema["$defs"][name]


def _keys(name: str | None) -> set[str]:
    return set(_section(name)["properties"])


def _choices(name: str | None, key: str) -> tuple[str, ...]:
    return tuple(v for v in _section(name)["properties"][key]["enum"] if v is not None)


DIRECTIONS = _choices("rule", "direction")
MISSING_CHOICES = _choices(None, "on_missing_metric")
INCONCLUSIVE_CHOICES = _choices(None, "on_inconclusive")
BUMPS = _choices("promote", "bump")
VERIFY_CHOICES = _choices("deploy", "verify")
DEFAULT_KEY = "default"  # metrics.default: the rule for metrics not listed by name
MAX_SETTINGS_BYTES = 1024 * 1024  # a policy is a page of YAML; /dev/zero must not be read
MAX_YAML_DEPTH = 32
MAX_YAML_EVENTS = 200_000
# GTO's rule for artifact and stage names (gto.constants.name): tags are `name@vX.Y.Z` and
# `name#stage#N`, so `#`, `@`, `:` or a space in a name make tags GTO cannot parse.
ARTIFACT_NAME = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9_/-]*[a-zA-Z0-9])?")


@dataclass(frozen=True)
class MetricRule:
    direction: str | None = None
    min: float | None = None
    max: float | None = None
    max_drop: float | None = None
    max_drop_pct: float | None = None
    min_gain: float | None = None
    significant: bool = False
    confidence: float | None = None
    # A band the policy states for a metric without an interval: inside it, within noise.
    tolerance: float | None = None
    tolerance_pct: float | None = None
    # The largest drop of the metric in any gated slice (predictions `slices:`).
    worst_slice_drop: float | None = None

    def has_thresholds(self) -> bool:
        return any(
            v is not None
            for v in (
                self.min, self.max, self.max_drop, self.max_drop_pct, self.min_gain,
                self.worst_slice_drop,
            )
        )  # fmt: skip


@dataclass(frozen=True)
class SliceSettings:
    """Slices of the test set every predictions metric is also computed on."""

    columns: tuple[str, ...] = ()  # columns of the predictions file (or of `features`)
    features: str | None = None  # a CSV joined to the predictions by `key`
    key: str = "id"
    min_size: int = 100  # smaller slices are reported, not gated
    show: int = 5  # worst slices in the report


@dataclass(frozen=True)
class PromoteSettings:
    stages: tuple[str, ...] = ("staging", "production")
    auto: str | None = "staging"
    bump: str = "minor"


@dataclass(frozen=True)
class DeploySettings:
    target: str = "deployments/"
    command: str | None = None
    environment: str | None = None
    # How a deployed bundle is checked before the switch: `predictions` (reproduce recorded
    # predictions on test rows), `checksums` (no tabular test set), `command` (verify_command).
    verify: str = "predictions"
    verify_command: str | None = None


@dataclass(frozen=True)
class RemoteSettings:
    """The DVC remote every runner shares (run-cache and outputs)."""

    url: str | None = None
    name: str = "mlops-ci"
    endpoint_url: str | None = None  # S3-compatible stores


@dataclass(frozen=True)
class SweepSettings:
    """Candidates for `mlops-ci sweep plan`: a params grid and/or an explicit list."""

    grid: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    candidates: tuple[Mapping[str, Any], ...] = ()
    rank_by: str | None = None  # default: the first metric of the policy
    max_candidates: int = 64


@dataclass(frozen=True)
class Settings:
    artifact: str = "model"
    target_branch: str = "main"
    baseline: str = "merge-base"
    model: str | None = None
    predictions: str | None = None
    test_data: str | None = None  # the recorded test rows a deploy verifies the model on
    confidence: float = 0.95
    bootstrap_resamples: int = 1000
    trend_commits: int = 10
    noise_commits: int = 20  # commits of the target branch a noise band is estimated from
    slices: SliceSettings = field(default_factory=SliceSettings)
    metrics: Mapping[str, MetricRule] = field(default_factory=dict)
    default_rule: MetricRule | None = None
    on_missing_metric: str = "fail"
    on_inconclusive: str = "neutral"
    promote: PromoteSettings = field(default_factory=PromoteSettings)
    deploy: DeploySettings = field(default_factory=DeploySettings)
    remote: RemoteSettings = field(default_factory=RemoteSettings)
    sweep: SweepSettings = field(default_factory=SweepSettings)
    intended_use: str | None = None
    data: DataSettings = field(default_factory=DataSettings)  # tables and data rules
    retrain: RetrainSettings = field(default_factory=RetrainSettings)  # `mlops-ci retrain`
    source: str = SETTINGS_FILE

    def policy_key(self, name: str, key: str | None = None) -> str | None:
        """The `metrics:` key that names a metric row, if any (see `metric_aliases`)."""
        if not self.metrics:  # no rules by name: skip the aliases (100k rows, 3 look-ups each)
            return None
        return next((a for a in metric_aliases(name, key) if a in self.metrics), None)

    def rule_for(self, name: str, key: str | None = None) -> MetricRule | None:
        """The rule for a metric row: the one its policy key names, else the default rule."""
        found = self.policy_key(name, key)
        return self.metrics[found] if found else self.default_rule


def metric_aliases(name: str, key: str | None = None) -> list[str]:
    """Names a policy may use for a metric row, most specific first: the row's name
    (`file:key.path` where ambiguous), its key path, and the path's last part."""
    path = key or name.split(":", 1)[-1]
    return list(dict.fromkeys([name, path, name.split(":", 1)[-1], path.rsplit(".", 1)[-1]]))


_TOP_KEYS = _keys(None)
_RULE_KEYS = _keys("rule")


class _Reader:
    """Typed access to one mapping of the file, every error naming file and key."""

    def __init__(self, source: str, data: Mapping[str, Any], where: str, allowed: set[str]):
        self.source, self.data, self.where = source, data, where
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ConfigError(
                f"{source}: unknown key {self._key(unknown[0])!r}; allowed here: "
                f"{', '.join(sorted(allowed))}"
            )

    def _key(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def fail(self, key: str, expected: str) -> ConfigError:
        return ConfigError(
            f"{self.source}: {self._key(key)} must be {expected}, not {self.data.get(key)!r}"
        )

    def text(self, key: str, default: str | None) -> str | None:
        value = self.data.get(key, default)
        if value is None or (isinstance(value, str) and value.strip()):
            return value
        raise self.fail(key, "a non-empty string")

    def name(self, key: str, default: str | None) -> str | None:
        value = self.data.get(key, default)
        if value is None or (isinstance(value, str) and ARTIFACT_NAME.fullmatch(value)):
            return value
        raise self.fail(
            key,
            "a GTO name (letters, digits, '_', '-', '/'; starting and ending with a letter or "
            "digit)",
        )

    def choice(self, key: str, choices: tuple[str, ...], default: str | None) -> str | None:
        value = self.data.get(key, default)
        if value is None or value in choices:
            return value
        raise self.fail(key, "one of " + ", ".join(choices))

    def number(
        self,
        key: str,
        default: float | None,
        *,
        low: float | None = None,
        high: float | None = None,
    ) -> float | None:
        value = self.data.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not _finite(value):
            raise self.fail(key, "a number")
        if (low is not None and value < low) or (high is not None and value > high):
            raise self.fail(key, f"between {low} and {high}")
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if isinstance(value, bool):
            return value
        raise self.fail(key, "true or false")

    def mapping(self, key: str) -> Mapping[str, Any]:
        value = self.data.get(key) or {}
        if isinstance(value, Mapping):
            return value
        raise self.fail(key, "a mapping")


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond a float's range (10**400)
        return False


def _rule(source: str, where: str, data: Any) -> MetricRule:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: {where} must be a mapping of rule keys, not {data!r}")
    r = _Reader(source, data, where, _RULE_KEYS)
    return MetricRule(
        direction=r.choice("direction", DIRECTIONS, None),
        min=r.number("min", None),
        max=r.number("max", None),
        max_drop=r.number("max_drop", None, low=0),
        max_drop_pct=r.number("max_drop_pct", None, low=0),
        min_gain=r.number("min_gain", None),
        significant=r.flag("significant", False),
        confidence=r.number("confidence", None, low=0.5, high=0.999),
        tolerance=r.number("tolerance", None, low=0),
        tolerance_pct=r.number("tolerance_pct", None, low=0),
        worst_slice_drop=r.number("worst_slice_drop", None, low=0),
    )


def parse_settings(text: str | None, source: str = SETTINGS_FILE) -> Settings:
    """`mlops-ci.yaml`'s text as Settings, errors naming `source`.

    A comparison reads the same text up to three times (the working tree's settings, the
    baseline's policy, the change's proposal): it is parsed once. Settings are immutable."""
    if text is None:
        return Settings(source=source)
    try:
        settings = _parsed(text)
    except ConfigError:
        return _parse_settings(text, source)  # raises again, naming this source
    return settings if source == settings.source else replace(settings, source=source)


@functools.lru_cache(maxsize=8)
def _parsed(text: str) -> Settings:
    return _parse_settings(text, SETTINGS_FILE)


def _parse_settings(text: str | None, source: str) -> Settings:
    """Settings from the text of `mlops-ci.yaml`; None (no file) gives the defaults."""
    if text is None:
        return Settings(source=source)
    data = load_yaml(text, source)
    if data is None:
        raise ConfigError(
            f"{source} is empty; write at least `artifact: NAME`, or delete the file to use defaults"
        )
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source} must be a mapping of settings, not {type(data).__name__}")
    r = _Reader(source, data, "", _TOP_KEYS)
    metrics: dict[str, MetricRule] = {}
    default_rule = None
    for name, rule in r.mapping("metrics").items():
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{source}: metrics keys must be metric names, not {name!r}")
        parsed = _rule(source, f"metrics.{name}", rule if rule is not None else {})
        if name == DEFAULT_KEY:
            default_rule = parsed
        else:
            metrics[name] = parsed
    promote = r.mapping("promote")
    pr = _Reader(source, promote, "promote", _keys("promote"))
    stages = promote.get("stages", list(PromoteSettings.stages))
    if not isinstance(stages, list) or not all(
        isinstance(s, str) and ARTIFACT_NAME.fullmatch(s) for s in stages
    ):
        raise pr.fail("stages", "a list of stage names, each a GTO name")
    auto = pr.text("auto", PromoteSettings.auto)
    if auto is not None and auto not in stages:
        raise pr.fail("auto", "one of promote.stages (" + ", ".join(stages) + ")")
    deploy = _Reader(source, r.mapping("deploy"), "deploy", _keys("deploy"))
    verify = deploy.choice("verify", VERIFY_CHOICES, DeploySettings.verify) or "predictions"
    verify_command = deploy.text("verify_command", None)
    if verify == "command" and not verify_command:
        raise deploy.fail("verify_command", "a program to run when deploy.verify is command")
    settings = Settings(
        artifact=r.name("artifact", Settings.artifact) or Settings.artifact,
        target_branch=r.text("target_branch", Settings.target_branch) or "main",
        baseline=r.text("baseline", Settings.baseline) or "merge-base",
        model=r.text("model", None),
        predictions=r.text("predictions", None),
        test_data=r.text("test_data", None),
        confidence=r.number("confidence", Settings.confidence, low=0.5, high=0.999) or 0.95,
        bootstrap_resamples=int(
            r.number("bootstrap_resamples", 1000, low=100, high=100_000) or 1000
        ),
        trend_commits=int(r.number("trend_commits", 10, low=0, high=200) or 0),
        noise_commits=int(r.number("noise_commits", 20, low=0, high=200) or 0),
        slices=_slices(source, data.get("slices")),
        metrics=metrics,
        default_rule=default_rule,
        on_missing_metric=r.choice("on_missing_metric", MISSING_CHOICES, "fail") or "fail",
        on_inconclusive=r.choice("on_inconclusive", INCONCLUSIVE_CHOICES, "neutral") or "neutral",
        promote=PromoteSettings(
            stages=tuple(stages),
            auto=auto,
            bump=pr.choice("bump", BUMPS, PromoteSettings.bump) or "minor",
        ),
        deploy=DeploySettings(
            target=deploy.text("target", DeploySettings.target) or DeploySettings.target,
            command=deploy.text("command", None),
            environment=deploy.text("environment", None),
            verify=verify,
            verify_command=verify_command,
        ),
        remote=_remote(source, r.mapping("remote")),
        sweep=_sweep(source, r.mapping("sweep")),
        intended_use=r.text("intended_use", None),
        data=parse_data(source, data.get("data")),
        retrain=parse_retrain(source, data.get("retrain")),
        source=source,
    )
    # The typed reading above words the common mistakes; the schema catches whatever else it
    # forbids, so a key or limit added to the schema holds without a reader change.
    check_schema(data, source)
    return settings


def check_schema(data: Any, source: str = SETTINGS_FILE) -> None:
    """Raise ConfigError naming file and key for the first way `data` breaks the schema."""
    errors = schema_problems(data, source)
    if errors:
        raise ConfigError(errors[0])


def schema_problems(data: Any, source: str = SETTINGS_FILE) -> list[str]:
    """Every way `data` (parsed `mlops-ci.yaml`) breaks the schema, each naming file and key."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    validator = Draft202012Validator(settings_schema())
    problems = []
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.path))):
        if error.validator == "anyOf" and error.context:
            error = best_match(error.context)
        problems.append(_schema_message(error, source))
    return problems


def without_schema_errors(data: Any) -> Any:
    """A copy of `data` without the keys that break the schema, so the checks that read the
    rest still run (`validate` lists every problem, not the first)."""
    from jsonschema import Draft202012Validator

    cleaned = copy.deepcopy(data)
    for error in Draft202012Validator(settings_schema()).iter_errors(data):
        path = list(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
            allowed = set(error.schema.get("properties", {}))
            paths = [[*path, k] for k in error.instance if k not in allowed]
        else:
            paths = [path]
        for bad in paths:
            parent = cleaned
            for part in bad[:-1]:
                parent = parent[part] if isinstance(parent, dict | list) else None
            if bad and isinstance(parent, dict):
                parent.pop(bad[-1], None)
    return cleaned


_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
}


def _schema_message(error: Any, source: str) -> str:
    key = ".".join(str(p) for p in error.absolute_path)
    schema, kind = error.schema, error.validator
    if kind == "additionalProperties" and isinstance(error.instance, Mapping):
        allowed = set(schema.get("properties", {}))
        unknown = sorted(str(k) for k in error.instance if k not in allowed)
        where = f"{key}.{unknown[0]}" if key else unknown[0]
        return f"{source}: unknown key {where!r}; allowed here: {', '.join(sorted(allowed))}"
    if kind == "enum":
        expected = "one of " + ", ".join(str(v) for v in error.validator_value if v is not None)
    elif kind == "type":
        value = error.validator_value
        types = [value] if isinstance(value, str) else list(value)
        expected = " or ".join(_TYPE_WORDS.get(t, t) for t in types if t != "null")
    elif kind == "minimum":
        expected = f"at least {error.validator_value}"
    elif kind == "maximum":
        expected = f"at most {error.validator_value}"
    elif kind == "minItems":
        expected = "a non-empty list"
    elif kind == "minProperties":
        expected = "a non-empty mapping"
    elif kind == "pattern":
        expected = schema.get("description") or "a non-empty string"
    else:
        expected = f"valid ({error.message[:200]})"
    value = repr(error.instance)
    value = value if len(value) <= 100 else value[:97] + "..."
    return f"{source}: {key or 'the file'} must be {expected}, not {value}"


def _slices(source: str, data: Any) -> SliceSettings:
    """`slices:` as a list of columns, or a mapping with `columns` and options."""
    if data is None:
        return SliceSettings()
    if isinstance(data, list):
        data = {"columns": data}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: slices must be a list of columns or a mapping, not {data!r}")
    r = _Reader(source, data, "slices", {"columns", "features", "key", "min_size", "show"})
    columns = data.get("columns") or []
    if not isinstance(columns, list) or not all(isinstance(c, str) and c for c in columns):
        raise r.fail("columns", "a list of column names")
    return SliceSettings(
        columns=tuple(dict.fromkeys(columns)),
        features=r.text("features", None),
        key=r.text("key", "id") or "id",
        min_size=int(r.number("min_size", 100, low=1, high=10_000_000) or 100),
        show=int(r.number("show", 5, low=0, high=100) or 0),
    )


def _remote(source: str, data: Mapping[str, Any]) -> RemoteSettings:
    r = _Reader(source, data, "remote", {"url", "name", "endpoint_url"})
    return RemoteSettings(
        url=r.text("url", None),
        name=r.text("name", RemoteSettings.name) or RemoteSettings.name,
        endpoint_url=r.text("endpoint_url", None),
    )


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _sweep(source: str, data: Mapping[str, Any]) -> SweepSettings:
    r = _Reader(source, data, "sweep", {"grid", "candidates", "rank_by", "max_candidates"})
    grid: dict[str, tuple[Any, ...]] = {}
    for key, values in r.mapping("grid").items():
        if not isinstance(values, list) or not values or not all(_scalar(v) for v in values):
            raise ConfigError(
                f"{source}: sweep.grid.{key} must be a non-empty list of values, not {values!r}"
            )
        grid[str(key)] = tuple(values)
    candidates = data.get("candidates") or []
    if not isinstance(candidates, list) or not all(
        isinstance(c, Mapping) and c and all(_scalar(v) for v in c.values()) for c in candidates
    ):
        raise r.fail("candidates", "a list of mappings of param key to value")
    return SweepSettings(
        grid=grid,
        candidates=tuple(dict(c) for c in candidates),
        rank_by=r.text("rank_by", None),
        max_candidates=int(r.number("max_candidates", 64, low=1, high=256) or 64),
    )


def load_settings(repo_dir: Path) -> Settings:
    """Settings from the working tree's `mlops-ci.yaml` (defaults when there is none)."""
    return parse_settings(read_settings_text(repo_dir / SETTINGS_FILE), SETTINGS_FILE)


def read_settings_text(path: Path, source: str = SETTINGS_FILE) -> str | None:
    """The text of a settings file, None when there is none; never reads more than
    MAX_SETTINGS_BYTES, never a directory, device or FIFO (a symlink to /dev/zero)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if os.path.lexists(path):
            raise ConfigError(f"{source} is a symlink to nothing; fix or delete it") from None
        return None
    except OSError as exc:
        raise ConfigError(f"{source} cannot be read: {exc.strerror}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{source} is not a regular file; make it a YAML file or delete it")
    if info.st_size > MAX_SETTINGS_BYTES:
        raise ConfigError(_too_big(source, info.st_size))
    with open(path, "rb") as fh:
        raw = fh.read(MAX_SETTINGS_BYTES + 1)
    return decode_settings(raw, source)


def decode_settings(raw: bytes, source: str) -> str:
    """Bytes of a settings file (from disk or git) as text, or ConfigError naming the file."""
    if len(raw) > MAX_SETTINGS_BYTES:
        raise ConfigError(_too_big(source, len(raw)))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{source} is not UTF-8 text (byte {exc.start}); it must be a YAML file"
        ) from exc


def _too_big(source: str, size: int) -> str:
    return (
        f"{source} is {size:,} bytes, over the {MAX_SETTINGS_BYTES:,}-byte limit for settings; "
        "it was not read"
    )


# The same safe loader either way; the C one when PyYAML was built with libyaml.
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str, source: str, *, max_depth: int = MAX_YAML_DEPTH) -> Any:
    """YAML as safe_load reads it, but a duplicate key is an error naming its path (PyYAML
    keeps the last one silently, which drops a rule), and nesting deeper than `max_depth` is
    refused before the recursive composer could overflow the stack."""
    try:
        depth = 0
        for events, event in enumerate(yaml.parse(text, Loader=_YAML_LOADER)):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > max_depth:
                    raise ConfigError(f"{source} nests deeper than {max_depth} levels")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            if events > MAX_YAML_EVENTS:
                raise ConfigError(f"{source} has more than {MAX_YAML_EVENTS:,} YAML nodes")
        # Compose once, check the tree, then construct from that same tree: libyaml when
        # present (PyYAML's pure-Python reader is ~20x slower), one parse fewer either way.
        loader = _YAML_LOADER(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_duplicates(node, source)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        if "maximum nesting depth" in str(exc):  # libyaml's own cap, met before ours
            raise ConfigError(f"{source} nests deeper than {max_depth} levels") from exc
        raise ConfigError(f"{source} is not valid YAML: {str(exc)[:500]}") from exc
    except RecursionError as exc:  # aliases can still nest deeper than the event stream shows
        raise ConfigError(f"{source} nests deeper than {max_depth} levels") from exc


def _check_duplicates(root: yaml.Node, source: str) -> None:
    stack: list[tuple[yaml.Node, str]] = [(root, "")]
    seen_nodes: set[int] = set()
    while stack:
        node, where = stack.pop()
        if id(node) in seen_nodes:  # an alias: checked where it was defined
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
                path = f"{where}.{key}" if where else key
                if isinstance(key_node, yaml.ScalarNode) and key != "<<":
                    if key in keys:
                        raise ConfigError(
                            f"{source}: duplicate key {path!r}; YAML keeps only the last one, "
                            "so the first would be silently dropped: merge them into one"
                        )
                    keys.add(key)
                stack.append((value_node, path))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, f"{where}.{i}") for i, item in enumerate(node.value))
