"""`mlops-ci.yaml` (+ environment) to typed settings, with errors that name the file and key.

The JSON Schema (`settings_schema`) holds every key, default, choice and range; this module
holds the typed settings, the checks that span keys, and the safe reading of the file. Unknown
keys are errors, not ignored: a misspelt `max_dorp` silently turning a gate off is the worst
failure a gate can have.
"""

from __future__ import annotations

import functools
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from mlops_ci.project.data_settings import DataSettings
from mlops_ci.project.errors import ConfigError
from mlops_ci.project.retrain_settings import RetrainSettings
from mlops_ci.project.settings_schema import FROM_SCHEMA, read, schema_section, section
from mlops_ci.project.settings_schema import SCHEMAS as SCHEMAS  # re-exported, as the next two
from mlops_ci.project.settings_schema import schema_problems as schema_problems
from mlops_ci.project.settings_schema import without_schema_errors as without_schema_errors

SETTINGS_FILE = "mlops-ci.yaml"
DEFAULT_KEY = "default"  # metrics.default: the rule for metrics not listed by name
MAX_SETTINGS_BYTES = 1024 * 1024  # a policy is a page of YAML; /dev/zero must not be read
MAX_YAML_DEPTH = 32
MAX_YAML_EVENTS = 200_000
# GTO's rule for artifact and stage names (gto.constants.name): tags are `name@vX.Y.Z` and
# `name#stage#N`, so `#`, `@`, `:` or a space in a name make tags GTO cannot parse.
ARTIFACT_NAME = re.compile(section("name")["pattern"])


@dataclass(frozen=True)
@schema_section("rule")
class MetricRule:
    direction: str | None = None
    min: float | None = None
    max: float | None = None
    max_drop: float | None = None
    max_drop_pct: float | None = None
    min_gain: float | None = None
    significant: bool = FROM_SCHEMA
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
@schema_section("slice_options")
class SliceSettings:
    """Slices of the test set every predictions metric is also computed on."""

    columns: tuple[str, ...] = ()  # columns of the predictions file (or of `features`)
    features: str | None = None  # a CSV joined to the predictions by `key`
    key: str = FROM_SCHEMA
    min_size: int = FROM_SCHEMA  # smaller slices are reported, not gated
    show: int = FROM_SCHEMA  # worst slices in the report


@dataclass(frozen=True)
@schema_section("promote")
class PromoteSettings:
    stages: tuple[str, ...] = FROM_SCHEMA
    auto: str | None = FROM_SCHEMA  # null: no stage on merge
    bump: str = FROM_SCHEMA


@dataclass(frozen=True)
@schema_section("deploy")
class DeploySettings:
    target: str = FROM_SCHEMA
    command: str | None = None
    environment: str | None = None
    # How a deployed bundle is checked before the switch: `predictions` (reproduce recorded
    # predictions on test rows), `checksums` (no tabular test set), `command` (verify_command).
    verify: str = FROM_SCHEMA
    verify_command: str | None = None


@dataclass(frozen=True)
@schema_section("remote")
class RemoteSettings:
    """The DVC remote every runner shares (run-cache and outputs)."""

    url: str | None = None
    name: str = FROM_SCHEMA
    endpoint_url: str | None = None  # S3-compatible stores


@dataclass(frozen=True)
@schema_section("sweep")
class SweepSettings:
    """Candidates for `mlops-ci sweep plan`: a params grid and/or an explicit list."""

    grid: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    candidates: tuple[Mapping[str, Any], ...] = ()
    rank_by: str | None = None  # default: the first metric of the policy
    max_candidates: int = FROM_SCHEMA


@dataclass(frozen=True)
@schema_section(None)
class Settings:
    artifact: str = FROM_SCHEMA
    target_branch: str = FROM_SCHEMA
    baseline: str = FROM_SCHEMA
    model: str | None = None
    predictions: str | None = None
    test_data: str | None = None  # the recorded test rows a deploy verifies the model on
    confidence: float = FROM_SCHEMA
    bootstrap_resamples: int = FROM_SCHEMA
    trend_commits: int = FROM_SCHEMA
    noise_commits: int = FROM_SCHEMA  # commits of the target branch a noise band is read from
    slices: SliceSettings = field(default_factory=SliceSettings)
    metrics: Mapping[str, MetricRule] = field(default_factory=dict)
    default_rule: MetricRule | None = None  # metrics.default
    on_missing_metric: str = FROM_SCHEMA
    on_inconclusive: str = FROM_SCHEMA
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


def _parse_settings(text: str, source: str) -> Settings:
    data = load_yaml(text, source)
    if data is None:
        raise ConfigError(
            f"{source} is empty; write at least `artifact: NAME`, or delete the file to use defaults"
        )
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source} must be a mapping of settings, not {type(data).__name__}")
    problems = schema_problems(data, source)
    if problems:
        raise ConfigError(problems[0])
    settings = read(Settings, data)
    metrics = dict(settings.metrics)
    promote, deploy = settings.promote, settings.deploy
    if promote.auto is not None and promote.auto not in promote.stages:
        raise ConfigError(
            f"{source}: promote.auto must be one of promote.stages "
            f"({', '.join(promote.stages)}), not {promote.auto!r}"
        )
    if deploy.verify == "command" and not deploy.verify_command:
        raise ConfigError(
            f"{source}: deploy.verify_command must be a program to run when deploy.verify is "
            "command, not None"
        )
    return replace(
        settings,
        slices=replace(settings.slices, columns=tuple(dict.fromkeys(settings.slices.columns))),
        default_rule=metrics.pop(DEFAULT_KEY, None),
        metrics=metrics,
        data=settings.data.checked(source),
        source=source,
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
