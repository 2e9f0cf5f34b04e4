"""The situations of DVC's functional tests for metrics, params and plots, as a table.

Translated from what DVC's tests set up (tests/func/metrics, tests/func/params,
tests/func/plots of DVC's repository), not copied: each `Scenario` is a baseline (`base`,
committed and tagged `base`) and the candidate's changes (`work`, left in the workspace unless
`commit`). `base_steps`/`work_steps` are DVC commands run before committing / after writing
(`commit -f` records declared outputs in `dvc.lock` and the cache without running a stage).
`tests/compare/test_dvc_scenarios.py` runs each through DVC and through mlops-ci.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Scenario:
    name: str
    base: Mapping[str, str | bytes | None]
    work: Mapping[str, str | bytes | None] = field(default_factory=dict)
    base_steps: tuple[tuple[str, ...], ...] = ()
    work_steps: tuple[tuple[str, ...], ...] = ()
    remove_after: tuple[str, ...] = ()  # deleted from the workspace after work_steps
    commit: bool = False
    init: bool = True


def j(data: object) -> str:
    return json.dumps(data)


def stage(out: str, kind: str = "metrics", cache: bool = False, params: str = "") -> str:
    """A `dvc.yaml` with one stage declaring `out` as metrics (or plots, or outs), and the
    params it uses (a YAML flow list) when given."""
    lines = ["stages:", "  make:", "    cmd: echo"]
    if params:
        lines.append(f"    params: [{params}]")
    lines += [f"    {kind}:", f"      - {out}" + ("" if cache else ":\n          cache: false")]
    return "\n".join(lines) + "\n"


COMMIT = (("commit", "-f"),)
NESTED = {"a": {"b": {"c": 1, "d": 1, "e": "1"}}}
NESTED3 = {"a": {"b": {"c": 3, "d": 1, "e": "3"}}}
CSV = "step,acc,loss\n0,0.1,1.0\n1,0.2,0.9\n2,0.3,0.8\n"
CSV2 = "step,acc,loss\n0,0.2,1.0\n1,0.3,0.7\n2,0.5,0.6\n"
ROWS = [{"x": 1, "y": 0.1}, {"x": 2, "y": 0.3}]
ROWS2 = [{"x": 1, "y": 0.2}, {"x": 2, "y": 0.5}]
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32

_TABLE: list[Scenario] = [
    # --- metrics: tests/func/metrics/test_diff.py ------------------------------------------
    Scenario("metrics-single-number", {"dvc.yaml": stage("m.yaml", cache=True), "m.yaml": "1"},
             {"m.yaml": "3"}, COMMIT, COMMIT),
    Scenario("metrics-yaml-nested", {"dvc.yaml": stage("m.yaml", cache=True), "m.yaml": j(NESTED)},
             {"m.yaml": j(NESTED3)}, COMMIT, COMMIT),
    Scenario("metrics-json-nested", {"dvc.yaml": stage("m.json", cache=True), "m.json": j(NESTED)},
             {"m.json": j(NESTED3)}, COMMIT, COMMIT),
    Scenario("metrics-json-unchanged", {"dvc.yaml": stage("m.json", cache=True),
             "m.json": j(NESTED)}, {"m.json": j(NESTED)}, COMMIT, COMMIT),
    Scenario("metrics-broken-json", {"dvc.yaml": stage("m.json"), "m.json": j(NESTED)},
             {"m.json": j(NESTED) + "ma\nlformed\n"}),
    Scenario("metrics-none-declared", {"foo": "foo"}, {"foo": "bar"}),
    Scenario("metrics-new-file", {"foo": "foo"}, {"dvc.yaml": stage("m.json"), "m.json": j(NESTED)}),
    Scenario("metrics-deleted-in-workspace", {"dvc.yaml": stage("m.json"), "m.json": j(NESTED)},
             {"m.json": None}),
    Scenario("metrics-with-unchanged", {"dvc.yaml": stage("metrics.yaml"),
             "metrics.yaml": "foo: 1\nxyz: 10"}, {"metrics.yaml": "foo: 3\nxyz: 10"}),
    Scenario("metrics-dirty-committed-then-changed", {"dvc.yaml": stage("m.yaml", cache=True),
             "m.yaml": "3"}, {"m.yaml": "4"}, COMMIT),
    Scenario("metrics-float-precision", {"dvc.yaml": stage("m.yaml", cache=True),
             "m.yaml": "foo: 1.23456789"}, {"m.yaml": "foo: 3.45678910111213"}, COMMIT, COMMIT),
    Scenario("metrics-top-level", {"dvc.yaml": "metrics: [my_metrics.yaml]\n",
             "my_metrics.yaml": "foo: 3"}, {"my_metrics.yaml": "foo: 5"}),
    Scenario("metrics-top-level-in-subdir", {"dir/dvc.yaml": "metrics: [my_metrics.yaml]\n",
             "dir/my_metrics.yaml": "foo: 3"}, {"dir/my_metrics.yaml": "foo: 5"}),
    Scenario("metrics-top-level-parent-of-subdir", {"dir/dvc.yaml": "metrics: [../my.yaml]\n",
             "my.yaml": "foo: 3"}, {"my.yaml": "foo: 5"}),
    Scenario("metrics-committed-candidate", {"dvc.yaml": stage("m.yaml"), "m.yaml": "foo: 1"},
             {"m.yaml": "foo: 2"}, commit=True),
    # --- metrics: tests/func/metrics/test_show.py ------------------------------------------
    Scenario("metrics-single-float", {"dvc.yaml": stage("metrics.yaml"), "metrics.yaml": "1.1"},
             {"metrics.yaml": "1.5"}),
    Scenario("metrics-stage-in-subdir", {"dvc.yaml": stage("subdir/metrics.yaml"),
             "subdir/metrics.yaml": "foo: 1.1"}, {"subdir/metrics.yaml": "foo: 1.3"}),
    Scenario("metrics-toml", {"dvc.yaml": stage("metrics.toml"), "metrics.toml": "[foo]\nbar = 1.2"},
             {"metrics.toml": "[foo]\nbar = 1.4"}),
    Scenario("metrics-two-files-no-suffix", {"dvc.yaml": "metrics: [foo, baz]\n", "foo": "foo: 1\n",
             "baz": "baz: 2\n"}, {"foo": "foo: 2\n"}),
    Scenario("metrics-falsey", {"dvc.yaml": "metrics: [metrics.json]\n",
             "metrics.json": '{"foo": 0, "bar": 0.0, "baz": {}}'},
             {"metrics.json": '{"foo": 1, "bar": 0.0, "baz": {}}'}),
    Scenario("metrics-malformed", {"dvc.yaml": "metrics: [metric.json]\n", "metric.json": '{"m": 1}'},
             {"metric.json": '{"m":1'}),
    Scenario("metrics-target-not-there", {"dvc.yaml": "metrics: [metrics.json]\n"},
             {"dvc.yaml": "metrics: [metrics.json]\n# touched\n"}),
    Scenario("metrics-cached-dir-and-file", {"dir/metrics.yaml": "foo: 1", "dir2/metrics.yaml": "bar: 2",
             "dvc.yaml": "metrics: [dir/metrics.yaml, dir2]\n"},
             {"dir/metrics.yaml": "foo: 3", "dir2/metrics.yaml": "bar: 4"},
             (("add", "dir"), ("add", "dir2")), (("add", "dir"), ("add", "dir2"))),
    Scenario("metrics-top-level-parametrized", {"metrics.yaml": "foo: 3\nbar: 10",
             "params.yaml": "metric_file: metrics.yaml\n", "dvc.yaml": "metrics: [${metric_file}]\n"},
             {"metrics.yaml": "foo: 4\nbar: 10"}),
    Scenario("metrics-stage-output-dir", {"dvc.yaml": stage("eval", cache=True),
             "eval/a.json": j({"acc": 0.5}), "eval/b.json": j({"loss": 0.2})},
             {"eval/a.json": j({"acc": 0.6})}, COMMIT, COMMIT),
    # --- metrics: the gate cases ---------------------------------------------------------
    Scenario("metrics-dir-manifest-lost-at-baseline", {"dvc.yaml": stage("eval", "outs", cache=True)
             + "metrics: [eval]\n", "eval/m.json": j({"acc": 0.9})},
             {"eval/m.json": j({"acc": 0.5}), ".dvc/cache": None}, COMMIT, COMMIT),
    Scenario("metrics-file-in-lost-dir-at-baseline", {"dvc.yaml": stage("eval", "outs", cache=True)
             + "metrics: [eval/m.json]\n", "eval/m.json": j({"acc": 0.9})},
             {"eval/m.json": j({"acc": 0.5}), ".dvc/cache": None}, COMMIT, COMMIT),
    Scenario("metrics-duplicated-key", {"dvc.yaml": "metrics: [m.json]\n",
             "m.json": j({"model": {"acc": 0.9}})}, {"m.json": j({"model": {"acc": 0.5}, "model.acc": 0.9})}),
    Scenario("metrics-workspace-file-missing-in-cache", {"dvc.yaml": stage("m.json", cache=True),
             "m.json": j({"acc": 42})}, {"m.json": j({"acc": 40})}, COMMIT, COMMIT, ("m.json",)),
    Scenario("metrics-workspace-dir-missing-in-cache", {"dvc.yaml": stage("eval", cache=True),
             "eval/m.json": j({"acc": 42})}, {"eval/m.json": j({"acc": 40})}, COMMIT, COMMIT, ("eval",)),
    Scenario("metrics-workspace-dir-output-missing", {"dvc.yaml": stage("eval", "outs", cache=True)
             + "metrics: [eval]\n", "eval/m.json": j({"acc": 42})}, {"eval/m.json": j({"acc": 40})},
             COMMIT, COMMIT, ("eval",)),
    # --- metrics: values -----------------------------------------------------------------
    Scenario("metrics-booleans", {"dvc.yaml": "metrics: [m.json]\n", "m.json": j({"ok": True, "n": 1})},
             {"m.json": j({"ok": False, "n": 2})}),
    Scenario("metrics-strings", {"dvc.yaml": "metrics: [m.json]\n", "m.json": j({"best": "a"})},
             {"m.json": j({"best": "b"})}),
    Scenario("metrics-lists-dropped", {"dvc.yaml": "metrics: [m.json]\n",
             "m.json": j({"acc": 0.1, "hist": [1, 2]})}, {"m.json": j({"acc": 0.2, "hist": [1, 3]})}),
    Scenario("metrics-nan-and-inf", {"dvc.yaml": "metrics: [m.json]\n",
             "m.json": '{"a": NaN, "b": 1.0}'}, {"m.json": '{"a": 1.0, "b": Infinity}'}),
    Scenario("metrics-yaml-1-2", {"dvc.yaml": "metrics: [m.yaml]\n", "m.yaml": "lr: 1e-3\nok: yes\n"},
             {"m.yaml": "lr: 2e-3\nok: no\n"}),
    Scenario("metrics-int-to-float", {"dvc.yaml": "metrics: [m.json]\n", "m.json": j({"n": 1})},
             {"m.json": j({"n": 1.5})}),
    Scenario("metrics-key-added-and-removed", {"dvc.yaml": "metrics: [m.json]\n",
             "m.json": j({"a": 1, "b": 2})}, {"m.json": j({"a": 1, "c": 3})}),
    Scenario("metrics-declaration-removed", {"dvc.yaml": "metrics: [m.json]\n", "m.json": j({"a": 1})},
             {"dvc.yaml": "params: [p.yaml]\n", "p.yaml": "x: 1\n"}),
    Scenario("metrics-stage-wdir", {"dvc.yaml": "stages:\n  s:\n    cmd: echo\n    wdir: sub\n"
             "    metrics:\n      - m.json:\n          cache: false\n", "sub/m.json": j({"a": 1})},
             {"sub/m.json": j({"a": 2})}),
    Scenario("metrics-nested-dvc-yaml", {"sub/dvc.yaml": stage("m.json"), "sub/m.json": j({"a": 1}),
             "dvc.yaml": "metrics: [top.json]\n", "top.json": j({"t": 1})},
             {"sub/m.json": j({"a": 2}), "top.json": j({"t": 0})}),
    Scenario("metrics-dvc-yaml-fails-schema", {"dvc.yaml": "metrics: [m.json]\n", "m.json": j({"a": 1})},
             {"dvc.yaml": "metrics: [m.json]\nunknown_section: 1\n", "m.json": j({"a": 2})}),
    Scenario("metrics-file-not-utf8", {"dvc.yaml": "metrics: [m.json]\n", "m.json": j({"a": 1})},
             {"m.json": b'{"a": "\xff"}'}),
    Scenario("metrics-json-top-level-list", {"dvc.yaml": "metrics: [m.json]\n", "m.json": j({"a": 1})},
             {"m.json": "[1, 2]"}),
    # --- params: tests/func/params/test_diff.py -------------------------------------------
    Scenario("params-none", {"foo": "foo"}, {"foo": "bar"}),
    Scenario("params-no-changes", {"params.yaml": "foo: bar", "dvc.yaml": stage("x", "outs", params="foo")}),
    Scenario("params-changed", {"params.yaml": "foo: bar", "dvc.yaml": stage("x", "outs", params="foo")},
             {"params.yaml": "foo: qux"}, commit=True),
    Scenario("params-dirty", {"params.yaml": "foo: bar", "dvc.yaml": stage("x", "outs", params="foo")},
             {"params.yaml": "foo: qux"}),
    Scenario("params-new", {"foo": "foo"}, {"params.yaml": "foo: bar",
             "dvc.yaml": stage("x", "outs", params="foo")}),
    Scenario("params-deleted", {"params.yaml": "foo: bar", "dvc.yaml": stage("x", "outs", params="foo")},
             {"params.yaml": None}),
    Scenario("params-list", {"params.yaml": "foo:\n- bar\n- baz", "dvc.yaml": stage("x", "outs", params="foo")},
             {"params.yaml": "foo:\n- bar\n- baz\n- qux"}),
    Scenario("params-dict", {"params.yaml": "foo:\n  bar: baz", "dvc.yaml": stage("x", "outs", params="foo")},
             {"params.yaml": "foo:\n  bar: qux"}),
    Scenario("params-with-unchanged", {"params.yaml": "foo: bar\nxyz: val",
             "dvc.yaml": stage("x", "outs", params="foo, xyz")}, {"params.yaml": "foo: qux\nxyz: val"}),
    Scenario("params-untracked-key-ignored", {"params.yaml": "foo: bar\nxyz: val\nabc: ignore",
             "other.yaml": "k: 1\n", "dvc.yaml": stage("x", "outs", params="foo, {other.yaml: [k]}")},
             {"params.yaml": "foo: qux\nxyz: val\nabc: changed", "other.yaml": "k: 2\n"}),
    Scenario("params-vars-foreach", {"test_params.yaml": j({"vars": {"m1": {"epoch": 15},
             "m2": {"epoch": 35}}}), "dvc.yaml": "vars: [test_params.yaml]\nstages:\n  build:\n"
             "    foreach: ${vars}\n    do:\n      cmd: echo ${item.epoch}\n"},
             {"test_params.yaml": j({"vars": {"m1": {"epoch": 20}, "m2": {"epoch": 35}}})}),
    Scenario("params-two-files", {"params.yaml": "foo: bar", "other_params.yaml": "xyz: val",
             "dvc.yaml": stage("x", "outs", params="foo, {other_params.yaml: [xyz]}")},
             {"params.yaml": "foo: qux", "other_params.yaml": "xyz: val3"}),
    Scenario("params-whole-default-file", {"params.yaml": j({"foo": {"bar": "bar"}, "x": "0"}),
             "dvc.yaml": stage("x", "outs", params="{params.yaml: null}")},
             {"params.yaml": j({"foo": {"bar": "baz"}, "y": "100"})}),
    Scenario("params-whole-other-file", {"other.yaml": j({"foo": {"bar": "bar"}, "x": "0"}),
             "dvc.yaml": stage("x", "outs", params="{other.yaml: null}")},
             {"other.yaml": j({"foo": {"bar": "baz"}, "y": "100"})}),
    Scenario("params-top-level", {"dvc.yaml": "params: [my_params.yaml]\n", "my_params.yaml": "foo: 3"},
             {"my_params.yaml": "foo: 5"}),
    Scenario("params-top-level-in-subdir", {"dir/dvc.yaml": "params: [my_params.yaml]\n",
             "dir/my_params.yaml": "foo: 3"}, {"dir/my_params.yaml": "foo: 5"}),
    Scenario("params-top-level-parent-of-subdir", {"dir/dvc.yaml": "params: [../p.yaml]\n",
             "p.yaml": "foo: 3"}, {"p.yaml": "foo: 5"}),
    # --- params: tests/func/params/test_show.py -------------------------------------------
    Scenario("params-toml", {"params.toml": "[foo]\nbar = 42\nbaz = [1, 2]\n",
             "dvc.yaml": "params: [params.toml]\n"}, {"params.toml": "[foo]\nbar = 43\nbaz = [1, 3]\n"}),
    Scenario("params-py", {"params.py": "CONST = 1\nIS_BOOL = True\n\nclass Config:\n    foo = 42\n",
             "dvc.yaml": "params: [params.py]\n"},
             {"params.py": "CONST = 2\nIS_BOOL = False\n\nclass Config:\n    foo = 43\n"}),
    Scenario("params-json", {"params.json": j({"a": 1, "b": {"c": "x"}}), "dvc.yaml": "params: [params.json]\n"},
             {"params.json": j({"a": 2, "b": {"c": "y"}})}),
    Scenario("params-root-default-only", {"params.yaml": "foo: bar\nbaz: qux\n"},
             {"params.yaml": "foo: bar2\nbaz: qux\n"}),
    Scenario("params-cached-dir", {"dir/params.yaml": "foo: 1", "dir2/params.yaml": "bar: 2",
             "dvc.yaml": "params: [dir/params.yaml, dir2]\n"},
             {"dir/params.yaml": "foo: 3", "dir2/params.yaml": "bar: 4"},
             (("add", "dir"), ("add", "dir2")), (("add", "dir"), ("add", "dir2"))),
    Scenario("params-top-level-parametrized", {"param.json": j({"foo": 3, "bar": 10}),
             "params.yaml": "param_file: param.json\n", "dvc.yaml": "params: [${param_file}]\n"},
             {"param.json": j({"foo": 4, "bar": 10})}),
    # --- params: values ------------------------------------------------------------------
    Scenario("params-numbers-diff", {"params.yaml": "lr: 0.1\nepochs: 10\n"},
             {"params.yaml": "lr: 0.01\nepochs: 12\n"}),
    Scenario("params-list-int-to-float", {"params.yaml": "sizes: [1, 2]\n"},
             {"params.yaml": "sizes: [1.0, 2.0]\n"}),
    Scenario("params-list-int-to-bool", {"params.yaml": "flags: [1]\n"}, {"params.yaml": "flags: [true]\n"}),
    Scenario("params-bool", {"params.yaml": "shuffle: true\n"}, {"params.yaml": "shuffle: false\n"}),
    Scenario("params-null", {"params.yaml": "seed: 1\n"}, {"params.yaml": "seed: null\n"}),
    Scenario("params-duplicated-key", {"params.yaml": j({"a": {"b": 1}})},
             {"params.yaml": j({"a": {"b": 1}, "a.b": 2})}),
    Scenario("params-list-of-dicts", {"params.yaml": "layers:\n- {n: 1}\n"},
             {"params.yaml": "layers:\n- {n: 2}\n"}),
    # --- plots: tests/func/plots ----------------------------------------------------------
    Scenario("plots-csv-stage", {"dvc.yaml": stage("p.csv", "plots"), "p.csv": CSV}, {"p.csv": CSV2}),
    Scenario("plots-json-stage", {"dvc.yaml": stage("p.json", "plots"), "p.json": j(ROWS)},
             {"p.json": j(ROWS2)}),
    Scenario("plots-yaml-stage", {"dvc.yaml": stage("p.yaml", "plots"), "p.yaml": j(ROWS)},
             {"p.yaml": j(ROWS2)}),
    Scenario("plots-tsv-stage", {"dvc.yaml": stage("p.tsv", "plots"), "p.tsv": CSV.replace(",", "\t")},
             {"p.tsv": CSV2.replace(",", "\t")}),
    Scenario("plots-cached-stage", {"dvc.yaml": stage("p.csv", "plots", cache=True), "p.csv": CSV},
             {"p.csv": CSV2}, COMMIT, COMMIT),
    Scenario("plots-top-level-x-y", {"dvc.yaml": "plots:\n  - p.csv:\n      x: step\n      y: loss\n",
             "p.csv": CSV}, {"p.csv": CSV2}),
    Scenario("plots-top-level-json-dict", {"dvc.yaml": "plots:\n  - p.json:\n      x: x\n      y: y\n",
             "p.json": j({"train": ROWS})}, {"p.json": j({"train": ROWS2})}),
    Scenario("plots-named-definition", {"dvc.yaml": "plots:\n  - acc:\n      x: step\n"
             "      y:\n        p.csv: acc\n", "p.csv": CSV}, {"p.csv": CSV2}),
    Scenario("plots-several-y-fields", {"dvc.yaml": "plots:\n  - p.csv:\n      x: step\n"
             "      y: [acc, loss]\n", "p.csv": CSV}, {"p.csv": CSV.replace("0.8", "0.5")}),
    Scenario("plots-x-from-another-file", {"dvc.yaml": "plots:\n  - cmp:\n      x: {a.json: x}\n"
             "      y: {b.json: y}\n", "a.json": j([{"x": 10}, {"x": 20}]), "b.json": j([{"y": 1}, {"y": 2}])},
             {"b.json": j([{"y": 1}, {"y": 3}])}),
    Scenario("plots-directory", {"dvc.yaml": "plots:\n  - logs\n", "logs/a.csv": CSV, "logs/b.csv": CSV},
             {"logs/b.csv": CSV2}),
    Scenario("plots-image", {"dvc.yaml": "plots:\n  - img.png\n", "img.png": PNG},
             {"img.png": PNG + b"\1"}),
    Scenario("plots-confusion", {"dvc.yaml": "plots:\n  - c.csv:\n      template: confusion\n"
             "      x: actual\n      y: predicted\n", "c.csv": "actual,predicted\na,a\nb,a\n"},
             {"c.csv": "actual,predicted\na,a\nb,b\n"}),
    Scenario("plots-not-utf8", {"dvc.yaml": "plots:\n  - p.csv\n", "p.csv": CSV},
             {"p.csv": b"step,acc\n0,\xff\n"}),
    Scenario("plots-txt-file", {"dvc.yaml": "plots:\n  - p.txt\n", "p.txt": "1\n2\n"}, {"p.txt": "1\n3\n"}),
    Scenario("plots-missing-in-workspace", {"dvc.yaml": "plots:\n  - p.csv\n", "p.csv": CSV},
             {"p.csv": None}),
    Scenario("plots-dir-manifest-lost", {"dvc.yaml": stage("logs", "plots", cache=True),
             "logs/a.csv": CSV}, {"logs/a.csv": CSV2, ".dvc/cache": None}, COMMIT, COMMIT),
    Scenario("plots-same-file-two-dvc-yaml", {"dvc.yaml": "plots:\n  - p.csv:\n      y: acc\n",
             "sub/dvc.yaml": "plots:\n  - ../p.csv:\n      y: loss\n", "p.csv": CSV}, {"p.csv": CSV2}),
    Scenario("plots-added", {"foo": "foo"}, {"dvc.yaml": "plots:\n  - p.csv\n", "p.csv": CSV}),
    Scenario("plots-and-metrics-together", {"dvc.yaml": stage("m.json") + "plots:\n  - p.csv\n",
             "m.json": j({"acc": 0.1}), "p.csv": CSV}, {"m.json": j({"acc": 0.2}), "p.csv": CSV2}),
]  # fmt: skip

SCENARIOS: dict[str, Scenario] = {s.name: s for s in _TABLE}
assert len(SCENARIOS) == len(_TABLE), "scenario names must be unique"
