"""DVC's internals that mlops-ci relies on, pinned: when a DVC release renames or changes one,
this fails by name instead of a user's run failing obscurely.

pyproject.toml bounds DVC to the versions these hold for (`dvc>=3.50,<4`); .ci/run also runs
this file and the DVC oracle suite against the lowest supported DVC.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version

import pytest
from packaging.version import Version


def test_dvc_is_within_the_supported_range() -> None:
    assert Version("3.50") <= Version(version("dvc")) < Version("4")


def test_reproduction_hooks() -> None:
    from dvc.repo.reproduce import _reproduce_stage, get_active_graph

    # mlops-ci wraps each stage's reproduction to time it and classify how it was satisfied.
    assert next(iter(inspect.signature(_reproduce_stage).parameters)) == "stage"
    assert callable(get_active_graph)
    from dvc.repo import Repo

    assert {"pull", "repro_fn", "run_env"} <= set(
        inspect.signature(Repo.reproduce).parameters
    ) or "kwargs" in inspect.signature(Repo.reproduce).parameters


def test_templating_resolver() -> None:
    from dvc.dvcfile import ProjectFile
    from dvc.parsing import DataResolver

    assert isinstance(inspect.getattr_static(ProjectFile, "resolver"), property) or hasattr(
        ProjectFile, "resolver"
    )
    for name in ("resolve", "resolve_metrics", "resolve_params", "resolve_plots"):
        assert callable(getattr(DataResolver, name)), name
    assert "tracked_vars" in inspect.getsource(DataResolver.__init__)


def test_remote_object_access() -> None:
    from dvc.config import NoRemoteError
    from dvc.config_schema import RelPath
    from dvc.data_cloud import DataCloud

    assert issubclass(NoRemoteError, Exception)
    assert issubclass(RelPath, str)
    params = inspect.signature(DataCloud.get_remote_odb).parameters
    assert {"name", "command", "hash_name"} <= set(params)


def test_the_semantics_we_mirror() -> None:
    """The readers `snapshot` mirrors: what they keep, how they flatten, how they merge."""
    from dvc.dependency import _merge_params
    from dvc.repo.metrics.show import _extract_metrics
    from dvc.utils.diff import format_dict
    from dvc.utils.flatten import flatten

    from mlops_ci.compare.snapshot import extract_metrics
    from mlops_ci.compare.snapshot import flatten as our_flatten

    sample = {"a": 1, "b": {"c": 0.5, "d": [1, 2], "e": None, "f": {}}, "g": "x", "h": True}
    assert extract_metrics(sample) == _extract_metrics(sample, "m.json")
    kept = extract_metrics(sample)
    assert our_flatten(kept) == flatten(format_dict(kept))
    assert _merge_params([{"params.yaml": ["a"]}, {"params.yaml": []}]) == {"params.yaml": []}
    ambiguous = {"model": {"acc": 0.5}, "model.acc": 0.9}
    for flattener in (flatten, our_flatten):
        with pytest.raises(ValueError, match="duplicated key"):
            flattener(ambiguous)


def test_the_diff_we_mirror() -> None:
    """DVC's `diff` of two values (booleans are numbers) and the plot data it parses."""
    from dvc.utils.diff import _diff_vals
    from dvc.utils.serialize import PARSERS

    from mlops_ci.compare.diff import dvc_diff
    from mlops_ci.compare.plot_data import PLOT_DATA_SUFFIXES

    for old, new in [(True, False), (1, 2.5), ("a", "b"), (1, "x"), (None, 1), (2, True)]:
        assert dvc_diff(old, new) == _diff_vals(old, new, False).get("diff"), (old, new)
    assert set(PLOT_DATA_SUFFIXES) == set(PARSERS) | {".yml", ".yaml", ".csv", ".tsv"}


def test_yaml_is_read_as_dvc_reads_it() -> None:
    from dvc.utils.serialize import PARSERS

    from mlops_ci.project.dvcfile import parse_structured

    text = "lr: 1e-3\nflag: yes\non: off\nlist: [1, 2]\nwhen: 2001-02-03\nnan: .nan\n"
    ours = parse_structured("params.yaml", text.encode())
    theirs = PARSERS[".yaml"](text, "params.yaml")
    assert {k: v for k, v in ours.items() if k != "nan"} == {
        k: v for k, v in theirs.items() if k != "nan"
    }
    assert ours["lr"] == 0.001 and ours["flag"] == "yes"


def test_the_schema_dvc_yaml_is_held_to() -> None:
    """`check_pipeline_schema` uses DVC's own compiled schema: what it rejects, DVC rejects."""
    from dvc.schema import COMPILED_MULTI_STAGE_SCHEMA

    from mlops_ci.project.dvc import check_pipeline_schema
    from mlops_ci.project.errors import ConfigError

    assert callable(COMPILED_MULTI_STAGE_SCHEMA)
    check_pipeline_schema({"metrics": ["m.json"], "stages": {"s": {"cmd": "echo"}}}, "dvc.yaml")
    with pytest.raises(ConfigError, match=r"dvc\.yaml fails DVC's schema"):
        check_pipeline_schema({"metrics": ["m.json"], "unknown_section": 1}, "dvc.yaml")


VALID_PIPELINE = {
    "vars": ["params.yaml"],
    "params": ["p.yaml"],
    "metrics": ["m.json"],
    "plots": [
        "a.csv",
        {"b.csv": {"x": "step", "y": ["acc", "loss"]}},
        {"c": {"y": {"c.csv": "v"}}},
    ],
    "stages": {
        "train": {
            "cmd": "python train.py",
            "wdir": ".",
            "deps": ["train.py"],
            "params": ["lr", {"other.yaml": ["k"]}],
            "outs": ["model.pkl", {"eval": {"cache": False, "desc": "d"}}],
            "metrics": [{"m.json": {"cache": False}}],
            "plots": [{"p.csv": {"x": "step", "y": "acc", "header": True}}],
            "frozen": False,
        }
    },
}


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"unknown_section": 1},
        {"metrics": "m.json"},
        {"metrics": [{"m.json": None}]},
        {"params": [1]},
        {"vars": "params.yaml"},
        {"plots": [{"a.csv": {"y": 1}}]},
        {"plots": [{"a.csv": {"header": True}}]},
        {"plots": [{"a.csv": {"x": {"f.csv": ["x"]}}}]},
        {"stages": {"s": {"deps": ["a"]}}},
        {"stages": {"s": {"cmd": "echo", "outs": [{"x": {"cache": "no"}}]}}},
        {"stages": {"s": {"cmd": "echo", "plots": [{"p.csv": {"y": ["a", "b"]}}]}}},
        {"stages": {"s": {"cmd": "echo", "outs": [{"x": None}]}}},
        {"stages": {"s": {"cmd": "echo", "wdir": 1}}},
        {"stages": {"s": {"cmd": "echo", "unknown": 1}}},
        {"stages": {"s": {"foreach": [1], "do": {"cmd": "echo ${item}"}}}},
        {"stages": {"s": {"cmd": "echo ${item.a}", "matrix": {"a": [1, 2]}}}},
        {"stages": {"s": {"cmd": "echo", "deps": "a"}}},
    ],
)
def test_plainly_valid_pipelines_are_valid_for_dvc(change: dict) -> None:
    """A `dvc.yaml` taken as valid without DVC's schema is one DVC's schema accepts; whatever
    the quick check is unsure of, DVC's schema decides (`check_pipeline_schema`)."""
    from dvc.schema import COMPILED_MULTI_STAGE_SCHEMA
    from voluptuous import MultipleInvalid

    from mlops_ci.project.dvcfile import plainly_valid

    data = {**VALID_PIPELINE, **change}
    try:
        COMPILED_MULTI_STAGE_SCHEMA(data)
        dvc_accepts = True
    except MultipleInvalid:
        dvc_accepts = False
    if plainly_valid(data):
        assert dvc_accepts, data
    if not change:
        assert plainly_valid(data), "the common shapes must not need DVC's schema"
