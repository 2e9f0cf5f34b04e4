"""`mlops-ci.yaml` (+ environment) to typed settings, with errors that name the file and key.

Unknown keys are errors, not ignored: a misspelt `max_dorp` silently turning a gate off is the
worst failure a gate can have.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlops_ci.project.errors import ConfigError

SETTINGS_FILE = "mlops-ci.yaml"
DIRECTIONS = ("higher", "lower")
MISSING_CHOICES = ("fail", "neutral", "ignore")
INCONCLUSIVE_CHOICES = ("fail", "neutral", "pass")
BUMPS = ("major", "minor", "patch")
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

    def has_thresholds(self) -> bool:
        return any(
            v is not None
            for v in (self.min, self.max, self.max_drop, self.max_drop_pct, self.min_gain)
        )


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
    metrics: Mapping[str, MetricRule] = field(default_factory=dict)
    default_rule: MetricRule | None = None
    on_missing_metric: str = "fail"
    on_inconclusive: str = "neutral"
    promote: PromoteSettings = field(default_factory=PromoteSettings)
    deploy: DeploySettings = field(default_factory=DeploySettings)
    remote: RemoteSettings = field(default_factory=RemoteSettings)
    sweep: SweepSettings = field(default_factory=SweepSettings)
    intended_use: str | None = None
    source: str = SETTINGS_FILE

    def policy_key(self, name: str, key: str | None = None) -> str | None:
        """The `metrics:` key that names a metric row, if any (see `metric_aliases`)."""
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


_TOP_KEYS = {
    "artifact", "target_branch", "baseline", "model", "predictions", "test_data", "confidence",
    "bootstrap_resamples", "trend_commits", "metrics", "on_missing_metric", "on_inconclusive",
    "promote", "deploy", "remote", "sweep", "intended_use",
}  # fmt: skip
_RULE_KEYS = {
    "direction", "min", "max", "max_drop", "max_drop_pct", "min_gain", "significant", "confidence",
}  # fmt: skip


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
    )


def parse_settings(text: str | None, source: str = SETTINGS_FILE) -> Settings:
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
    pr = _Reader(source, promote, "promote", {"stages", "auto", "bump"})
    stages = promote.get("stages", list(PromoteSettings.stages))
    if not isinstance(stages, list) or not all(
        isinstance(s, str) and ARTIFACT_NAME.fullmatch(s) for s in stages
    ):
        raise pr.fail("stages", "a list of stage names, each a GTO name")
    auto = pr.text("auto", PromoteSettings.auto)
    if auto is not None and auto not in stages:
        raise pr.fail("auto", "one of promote.stages (" + ", ".join(stages) + ")")
    deploy = _Reader(source, r.mapping("deploy"), "deploy", {"target", "command", "environment"})
    return Settings(
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
        ),
        remote=_remote(source, r.mapping("remote")),
        sweep=_sweep(source, r.mapping("sweep")),
        intended_use=r.text("intended_use", None),
        source=source,
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


def load_yaml(text: str, source: str, *, max_depth: int = MAX_YAML_DEPTH) -> Any:
    """YAML as safe_load reads it, but a duplicate key is an error naming its path (PyYAML
    keeps the last one silently, which drops a rule), and nesting deeper than `max_depth` is
    refused before the recursive composer could overflow the stack."""
    try:
        depth = 0
        for events, event in enumerate(yaml.parse(text, Loader=yaml.SafeLoader)):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > max_depth:
                    raise ConfigError(f"{source} nests deeper than {max_depth} levels")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            if events > MAX_YAML_EVENTS:
                raise ConfigError(f"{source} has more than {MAX_YAML_EVENTS:,} YAML nodes")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            _check_duplicates(node, source)
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
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
