"""Small real DVC projects, one per way a project can declare metrics, params and plots.

Each layout builds a git repository with `main` (the baseline: the pipeline reproduced with
`dvc repro`, `dvc.lock` committed, outputs in the DVC cache) and a branch `candidate` whose
params or code change and which is reproduced again. The candidate's workspace is left trained
and uncommitted (what `mlops-ci compare` sees in CI after `train`), unless the layout says
`commit_candidate=True`. Stage commands are tiny Python scripts run by this interpreter.

    project = build_layout(LAYOUTS["dir-output"], tmp_path)   # the DVC project root

The differential tests (`tests/compare/test_dvc_oracle.py`) and `benchmarks/bench_compare.py --layout`
use them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Replaced by the interpreter running the tests: stages need dvclive, PyYAML and scikit-learn.
PY = "@PY@"
_GIT_IDENTITY = ["-c", "user.name=layouts", "-c", "user.email=layouts@example.invalid"]


@dataclass(frozen=True)
class Layout:
    """A project at two revisions: `files` (baseline) and `candidate` (changes; None deletes)."""

    name: str
    about: str
    files: Mapping[str, str]
    candidate: Mapping[str, str | None]
    project: str = ""  # the DVC project's directory inside the git repo (`dvc init --subdir`)
    commit_candidate: bool = False
    reproduce_baseline: bool = True  # False: a first pull request, main never reproduced
    drop_baseline_cache: bool = False  # main's outputs exist nowhere: DVC cannot read main
    script: str | None = None  # run this instead of `dvc repro` (DVCLive without a pipeline)
    needs: tuple[str, ...] = field(default=())  # modules the stages import


def build_layout(layout: Layout, base: Path) -> Path:
    """Build `layout` under `base/repo`; returns the DVC project root (the repo or a subdir)."""
    repo = base / "repo"
    project = repo / layout.project if layout.project else repo
    project.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    _write(repo, layout.files)
    _dvc_init(project, subdir=bool(layout.project))
    _commit(repo, f"{layout.name}: the code")  # DVCLive refuses a repository without commits
    if layout.reproduce_baseline:
        _reproduce(project, layout.script)
        _commit(repo, f"{layout.name}: baseline trained")
    _git(repo, "checkout", "-qb", "candidate")
    _write(repo, layout.candidate)
    if layout.drop_baseline_cache:
        shutil.rmtree(project / ".dvc" / "cache")
    _reproduce(project, layout.script)
    if layout.commit_candidate:
        _commit(repo, f"{layout.name}: candidate trained")
    return project


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def _commit(repo: Path, message: str) -> None:
    _git(repo, "add", "-A")
    _git(repo, *_GIT_IDENTITY, "commit", "-qm", message)


def _write(root: Path, files: Mapping[str, str | None]) -> None:
    python = shlex.quote(sys.executable)
    for rel, text in files.items():
        path = root / rel
        if text is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace(PY, python), encoding="utf-8")


def _dvc_init(project: Path, *, subdir: bool) -> None:
    from dvc.repo import Repo

    # In-process: `dvc init` as a process costs a second of imports per call, per layout.
    # DVC resolves stage paths against the working directory, so it must be the project.
    with _inside(project):
        Repo.init(project, subdir=subdir).close()


def _reproduce(project: Path, script: str | None) -> None:
    if script is not None:
        subprocess.run([sys.executable, script], cwd=project, check=True, capture_output=True)
        return
    from dvc.repo import Repo

    # `dvc repro --all-pipelines`, in-process for the same reasons as `_dvc_init`.
    with _inside(project), Repo(project) as repo:
        repo.reproduce(all_pipelines=True)


@contextlib.contextmanager
def _inside(project: Path) -> Iterator[None]:
    """In the project (contextlib.chdir is 3.11+), without DVC's "git add dvc.lock" advice
    and stage banners in a test's or a benchmark's output."""
    logger, cwd = logging.getLogger("dvc"), Path.cwd()
    level = logger.level
    logger.setLevel(logging.WARNING)
    os.chdir(project)
    try:
        yield
    finally:
        os.chdir(cwd)
        logger.setLevel(level)


# A 2x2 PNG of one grey `shade`, written by stages (no Pillow needed).
_PNG = """
import struct, zlib
def png(path, shade):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    rows = b"".join(b"\\x00" + bytes([shade] * 6) for _ in range(2))
    head = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", head)
                + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
"""

_LAYOUTS: list[Layout] = []


def _layout(**fields: Any) -> None:
    _LAYOUTS.append(Layout(**fields))


_layout(
    name="top-level-git",
    about="top-level metrics:, params: and plots: on files that git tracks (cache: false)",
    files={
        "params.yaml": "train:\n  lr: 0.1\n  epochs: 2\n",
        "extra.yaml": "seed: 1\nsplit: {test: 0.2}\n",
        "train.py": (
            "import json, yaml\n"
            "p = yaml.safe_load(open('params.yaml'))['train']\n"
            "json.dump({'accuracy': 0.5 + p['lr'], 'loss': 1 - p['lr'],\n"
            "           'per_class': {'0': {'f1': 0.7}, '1': {'f1': 0.6 + p['lr']}}},\n"
            "          open('metrics.json', 'w'))\n"
            "rows = ''.join(f'{i},{1 - p[\"lr\"] * i}\\n' for i in range(p['epochs']))\n"
            "open('loss.csv', 'w').write('step,loss\\n' + rows)\n"
        ),
        "dvc.yaml": (
            "stages:\n  train:\n    cmd: @PY@ train.py\n    deps: [train.py]\n    params: [train]\n"
            "    outs:\n      - metrics.json: {cache: false}\n      - loss.csv: {cache: false}\n"
            "metrics: [metrics.json]\nparams: [extra.yaml]\n"
            "plots:\n  - loss.csv: {x: step, y: loss}\n"
        ),
    },
    candidate={
        "params.yaml": "train:\n  lr: 0.2\n  epochs: 3\n",
        "extra.yaml": "seed: 2\nsplit: {test: 0.2}\n",
    },
)

_layout(
    name="stage-git",
    about="stage-level metrics: and plots: with cache: false",
    files={
        "params.yaml": "threshold: 0.5\n",
        "evaluate.py": (
            "import json, yaml\n"
            "t = yaml.safe_load(open('params.yaml'))['threshold']\n"
            "json.dump({'precision': t, 'recall': 1 - t}, open('scores.json', 'w'))\n"
            "open('curve.csv', 'w').write('t,score\\n0,0\\n1,%s\\n' % t)\n"
        ),
        "dvc.yaml": (
            "stages:\n  evaluate:\n    cmd: @PY@ evaluate.py\n    deps: [evaluate.py]\n"
            "    params: [threshold]\n"
            "    metrics:\n      - scores.json: {cache: false}\n"
            "    plots:\n      - curve.csv: {cache: false, x: t, y: score}\n"
        ),
    },
    candidate={"params.yaml": "threshold: 0.7\n"},
)

_layout(
    name="stage-cached",
    about="stage-level metrics: (json and yaml) and plots: in the DVC cache; a metric added "
    "and one removed; candidate committed",
    files={
        "params.yaml": "threshold: 0.5\nextra_metric: false\n",
        "evaluate.py": (
            "import json, os, yaml\n"
            "p = yaml.safe_load(open('params.yaml'))\n"
            "m = {'precision': p['threshold'], 'recall': 0.5}\n"
            "if p['extra_metric']:\n    m['auc'] = 0.9\nelse:\n    m['legacy'] = 1\n"
            "json.dump(m, open('scores.json', 'w'))\n"
            "os.makedirs('summary', exist_ok=True)\n"
            "yaml.safe_dump({'rows': 10, 'timing': {'fit_s': p['threshold'] * 2}},\n"
            "               open('summary/summary.yaml', 'w'))\n"
            "json.dump([{'x': i, 'y': i * p['threshold']} for i in range(3)],\n"
            "          open('curve.json', 'w'))\n"
        ),
        "dvc.yaml": (
            "stages:\n  evaluate:\n    cmd: @PY@ evaluate.py\n    deps: [evaluate.py]\n"
            "    params: [threshold, extra_metric]\n"
            "    metrics: [scores.json, summary/summary.yaml]\n    plots: [curve.json]\n"
        ),
    },
    candidate={"params.yaml": "threshold: 0.6\nextra_metric: true\n"},
    commit_candidate=True,
)

_layout(
    name="dir-output",
    about="metrics and plots inside a cached directory output (outs: [eval]), declared top-level",
    files={
        "params.yaml": "model:\n  c: 1.0\n",
        "train.py": (
            "import json, os, yaml\n"
            "c = yaml.safe_load(open('params.yaml'))['model']['c']\n"
            "os.makedirs('eval/plots', exist_ok=True)\n"
            "json.dump({'accuracy': 0.9 - c / 100, 'log_loss': c / 10}, "
            "open('eval/metrics.json', 'w'))\n"
            "json.dump({'roc': [{'fpr': 0, 'tpr': 0}, {'fpr': 1, 'tpr': c / 2}]},\n"
            "          open('eval/plots/roc.json', 'w'))\n"
            "open('eval/plots/confusion.csv', 'w').write('actual,predicted\\n0,0\\n1,%d\\n' % c)\n"
        ),
        "dvc.yaml": (
            "stages:\n  train:\n    cmd: @PY@ train.py\n    deps: [train.py]\n    params: [model]\n"
            "    outs: [eval]\n"
            "metrics: [eval/metrics.json]\n"
            "plots:\n  - eval/plots/roc.json: {x: fpr, y: tpr}\n"
            "  - eval/plots/confusion.csv: {template: confusion, x: actual, y: predicted}\n"
        ),
    },
    candidate={"params.yaml": "model:\n  c: 2.0\n"},
)

_layout(
    name="plots-multi-y",
    about="top-level plot ids with several files under y:, x per file, linear and confusion "
    "templates (a train and a test confusion file, which pooled would hide both changes)",
    files={
        "params.yaml": "lr: 0.1\n",
        "train.py": (
            "import json, os, yaml\n"
            "lr = yaml.safe_load(open('params.yaml'))['lr']\n"
            "os.makedirs('logs', exist_ok=True)\n"
            "for split, col in (('train', 'step'), ('test', 'epoch')):\n"
            "    rows = ''.join(f'{i},{lr * i},{1 - lr * i}\\n' for i in range(3))\n"
            "    open(f'logs/{split}.csv', 'w').write(f'{col},acc,loss\\n' + rows)\n"
            "for split, shift in (('train', 0), ('test', 1)):\n"
            "    json.dump([{'actual': a, 'predicted': (a + int(lr * 10) + shift) % 2}\n"
            "               for a in (0, 1, 1)], open(f'logs/cm_{split}.json', 'w'))\n"
        ),
        "dvc.yaml": (
            "stages:\n  train:\n    cmd: @PY@ train.py\n    deps: [train.py]\n    params: [lr]\n"
            "    outs: [logs/train.csv, logs/test.csv, logs/cm_train.json, logs/cm_test.json]\n"
            "plots:\n"
            "  - accuracy:\n      title: Accuracy\n"
            "      x: {logs/train.csv: step, logs/test.csv: epoch}\n"
            "      y: {logs/train.csv: acc, logs/test.csv: acc}\n"
            "  - loss:\n      template: linear\n      x: step\n"
            "      y: {logs/train.csv: [loss, acc]}\n"
            "  - confusion:\n      template: confusion\n      x: actual\n"
            "      y: {logs/cm_train.json: predicted, logs/cm_test.json: predicted}\n"
        ),
    },
    candidate={"params.yaml": "lr: 0.2\n"},
)

_layout(
    name="plots-dir",
    about="directories of plots: top-level on a cached directory output (nested files) and "
    "stage-level with cache: false; a file in each hidden by .dvcignore",
    files={
        "params.yaml": "scale: 1\n",
        "train.py": (
            "import json, os, yaml\n"
            "s = yaml.safe_load(open('params.yaml'))['scale']\n"
            "os.makedirs('curves/nested', exist_ok=True)\n"
            "os.makedirs('reports', exist_ok=True)\n"
            "json.dump([{'x': 0, 'y': s}, {'x': 1, 'y': 2 * s}], open('curves/a.json', 'w'))\n"
            "open('curves/b.csv', 'w').write('x,y\\n0,%d\\n' % s)\n"
            "open('curves/nested/c.tsv', 'w').write('x\\ty\\n0\\t%d\\n' % s)\n"
            "open('reports/r.csv', 'w').write('x,y\\n1,%d\\n' % s)\n"
            "open('curves/skip.csv', 'w').write('x,y\\n0,0\\n')\n"
            "open('reports/skip.csv', 'w').write('x,y\\n0,%d\\n' % s)\n"
        ),
        "dvc.yaml": (
            "stages:\n  train:\n    cmd: @PY@ train.py\n    deps: [train.py]\n    params: [scale]\n"
            "    outs: [curves]\n    plots:\n      - reports: {cache: false}\n"
            "plots:\n  - curves: {x: x, y: y}\n"
        ),
        ".dvcignore": "skip.csv\n",  # DVC sees neither skip.csv
    },
    candidate={"params.yaml": "scale: 3\n"},
)

_layout(
    name="plots-images",
    about="image plots: a stage-level *.png (cached) and a directory of images; "
    "candidate committed",
    files={
        "params.yaml": "shade: 10\n",
        "draw.py": _PNG
        + (
            "import os, yaml\n"
            "s = yaml.safe_load(open('params.yaml'))['shade']\n"
            "os.makedirs('images', exist_ok=True)\n"
            "png('confusion.png', s)\npng('images/roc.png', 200)\npng('images/pr.png', s + 1)\n"
        ),
        "dvc.yaml": (
            "stages:\n  draw:\n    cmd: @PY@ draw.py\n    deps: [draw.py]\n    params: [shade]\n"
            "    outs: [images]\n    plots: [confusion.png]\n"
            "plots: [images]\n"
        ),
    },
    candidate={"params.yaml": "shade: 90\n"},
    commit_candidate=True,
)

_layout(
    name="plot-ids",
    about="dvc.yaml plot ids that are no file (title, template, several y fields) beside a "
    "file plot with properties",
    files={
        "params.yaml": "k: 2\n",
        "evaluate.py": (
            "import json, os, yaml\n"
            "k = yaml.safe_load(open('params.yaml'))['k']\n"
            "os.makedirs('eval', exist_ok=True)\n"
            "pts = [{'fpr': i / k, 'tpr': min(1, 2 * i / k), 'thr': 1 - i / k} for i in range(k + 1)]\n"
            "json.dump(pts, open('eval/roc.json', 'w'))\n"
            "json.dump([{'recall': i / k, 'precision': 1 - i / (2 * k)} for i in range(k + 1)],\n"
            "          open('eval/prc.json', 'w'))\n"
        ),
        "dvc.yaml": (
            "stages:\n  evaluate:\n    cmd: @PY@ evaluate.py\n    deps: [evaluate.py]\n"
            "    params: [k]\n"
            "    outs:\n      - eval/roc.json: {cache: false}\n      - eval/prc.json: {cache: false}\n"
            "plots:\n"
            "  - roc:\n      title: ROC\n      x: fpr\n      y: {eval/roc.json: [tpr, thr]}\n"
            "  - Precision-Recall:\n      template: simple\n      x: recall\n"
            "      y: {eval/prc.json: precision}\n"
            "  - eval/roc.json:\n      template: linear\n      x: fpr\n      y: tpr\n"
        ),
    },
    candidate={"params.yaml": "k: 4\n"},
)

# DVCLive inside a stage. It writes its metrics, params and plots entries into the project's
# dvc.yaml itself (dvcyaml="dvc.yaml" is its default) and the stage caches its directory.
_DVCLIVE_TRAIN = (
    "import yaml\n"
    "from dvclive import Live\n"
    "p = yaml.safe_load(open('params.yaml'))['train']\n"
    "with Live(dir='dvclive', save_dvc_exp=False) as live:\n"
    "    live.log_params(p)\n"
    "    for epoch in range(p['epochs']):\n"
    "        live.log_metric('train/loss', 1 / (epoch + 1 + p['lr']))\n"
    "        live.log_metric('acc', 0.5 + p['lr'] * epoch)\n"
    "        live.next_step()\n"
    "    y = [0, 1, 1, 0, 1, 0]\n"
    "    y_pred = [0, 1, 0, 0, 1, int(p['lr'] > 0.15)]\n"
    "    live.log_sklearn_plot('confusion_matrix', y, y_pred)\n"
    "    live.log_sklearn_plot('roc', y, [0.1, 0.8, 0.4, 0.2, 0.9, p['lr']], name='roc.json')\n"
    "    live.summary['f1'] = 0.7 + p['lr']\n"
)

_layout(
    name="dvclive-dir",
    about="the real dvclive package inside a stage whose cached directory output is dvclive/ "
    "(metrics, params and per-step plots in the .dir; sklearn confusion and ROC plots)",
    files={
        "params.yaml": "train:\n  lr: 0.1\n  epochs: 3\n",
        "train.py": _DVCLIVE_TRAIN,
        "dvc.yaml": (
            "stages:\n  train:\n    cmd: @PY@ train.py\n    deps: [train.py]\n    params: [train]\n"
            "    outs: [dvclive]\n"
        ),
    },
    candidate={"params.yaml": "train:\n  lr: 0.2\n  epochs: 4\n"},
    needs=("dvclive", "sklearn"),
)

_layout(
    name="dvclive-own-dvcyaml",
    about="the real dvclive package inside a stage, its files tracked by git, declared by the "
    "dvc.yaml dvclive generates in a subdirectory; a custom confusion plot (log_plot)",
    files={
        "params.yaml": "train:\n  lr: 0.1\n  epochs: 2\n",
        "train.py": (
            "import yaml\n"
            "from dvclive import Live\n"
            "p = yaml.safe_load(open('params.yaml'))['train']\n"
            "open('model.txt', 'w').write(str(p))\n"
            "with Live(dir='results/live', dvcyaml='results/dvc.yaml', save_dvc_exp=False) as live:\n"
            "    live.log_param('lr', p['lr'])\n"
            "    for epoch in range(p['epochs']):\n"
            "        live.log_metric('loss', 1 / (epoch + 1 + p['lr']))\n"
            "        live.next_step()\n"
            "    pairs = [{'actual': a, 'predicted': int(a != (p['lr'] > 0.2))} for a in (0, 1, 1)]\n"
            "    live.log_plot('confusion', pairs, x='actual', y='predicted', template='confusion')\n"
        ),
        "dvc.yaml": (
            "stages:\n  train:\n    cmd: @PY@ train.py\n    deps: [train.py]\n    params: [train]\n"
            "    outs: [model.txt]\n"
        ),
    },
    candidate={"params.yaml": "train:\n  lr: 0.3\n  epochs: 2\n"},
    needs=("dvclive",),
)

_layout(
    name="dvclive-script",
    about="the real dvclive package run as a plain script (no pipeline, no dvc.lock): "
    "dvclive writes the whole dvc.yaml",
    files={
        "params.yaml": "lr: 0.1\n",
        "train.py": (
            "import yaml\n"
            "from dvclive import Live\n"
            "lr = yaml.safe_load(open('params.yaml'))['lr']\n"
            "with Live(save_dvc_exp=False) as live:\n"
            "    live.log_param('lr', lr)\n"
            "    live.log_param('optimizer', {'name': 'sgd', 'momentum': lr > 0.15})\n"
            "    for step in range(2):\n"
            "        live.log_metric('acc', lr * (step + 1))\n"
            "        live.next_step()\n"
        ),
    },
    candidate={"params.yaml": "lr: 0.2\n"},
    script="train.py",
    needs=("dvclive",),
)

_layout(
    name="templating",
    about="vars (file and inline), ${...}, foreach over a params dict and matrix; a new "
    "foreach item adds a metrics file, a dropped one leaves its file undeclared",
    files={
        "params.yaml": "models:\n  small: {lr: 0.1}\n  large: {lr: 0.01}\neval_dir: eval\n",
        "train.py": (
            "import json, os, sys\n"
            "name, lr, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]\n"
            "os.makedirs(os.path.dirname(out), exist_ok=True)\n"
            "json.dump({'accuracy': 0.8 + lr, 'model': name}, open(out, 'w'))\n"
        ),
        "sweep.py": (
            "import os, sys\n"
            "depth, act = int(sys.argv[1]), sys.argv[2]\n"
            "os.makedirs('sweep', exist_ok=True)\n"
            "open(f'sweep/{depth}-{act}.csv', 'w').write('step,loss\\n0,%d\\n' % depth)\n"
        ),
        "dvc.yaml": (
            "vars:\n  - params.yaml\n  - report: eval/summary.json\n"
            "stages:\n"
            "  train:\n    foreach: ${models}\n    do:\n"
            "      cmd: @PY@ train.py ${key} ${item.lr} ${eval_dir}/${key}.json\n"
            "      deps: [train.py]\n"
            "      metrics:\n        - ${eval_dir}/${key}.json: {cache: false}\n"
            "  sweep:\n    matrix:\n      depth: [1, 2]\n      act: [relu, tanh]\n"
            "    cmd: @PY@ sweep.py ${item.depth} ${item.act}\n    deps: [sweep.py]\n"
            "    plots:\n      - sweep/${item.depth}-${item.act}.csv: {cache: false}\n"
            "  summary:\n    cmd: @PY@ train.py summary 0.05 ${report}\n    deps: [train.py]\n"
            "    metrics:\n      - ${report}: {cache: false}\n"
        ),
    },
    candidate={
        "params.yaml": (
            "models:\n  small: {lr: 0.15}\n  medium: {lr: 0.05}\n"  # large's file stays, undeclared
            "eval_dir: eval\n"
        )
    },
)

_layout(
    name="multi-dvcyaml-wdir",
    about="dvc.yaml files in subdirectories, a stage with wdir: (its params.yaml and metrics "
    "relative to it), top-level metrics and plots (a file and a plot id) of a sub dvc.yaml, "
    "a root plot id on a file of the sub project",
    files={
        "params.yaml": "root_only: 1\n",
        "prepare.py": "open('data.txt', 'w').write('rows: 3\\n')\n",
        "dvc.yaml": (
            "stages:\n  prepare:\n    cmd: @PY@ prepare.py\n    deps: [prepare.py]\n"
            "    outs: [data.txt]\n"
            "plots:\n  - root_view:\n      x: a\n      y: {sub/curve.csv: b}\n"
        ),
        "sub/fit.py": (
            "import json, os, yaml\n"
            "a = yaml.safe_load(open('params.yaml'))['alpha']\n"
            "os.makedirs('out', exist_ok=True)\n"
            "json.dump({'r2': 1 - a}, open('out/m.json', 'w'))\n"
        ),
        "sub/summarize.py": (
            "import json\n"
            "r2 = json.load(open('work/out/m.json'))['r2']\n"
            "json.dump({'score': {'r2': r2, 'ok': r2 > 0.5}}, open('summary.json', 'w'))\n"
            "open('curve.csv', 'w').write('a,b\\n0,%s\\n' % r2)\n"
        ),
        "sub/work/params.yaml": "alpha: 0.3\n",
        "sub/dvc.yaml": (
            "stages:\n"
            "  fit:\n    wdir: work\n    cmd: @PY@ ../fit.py\n    deps: [../fit.py, ../../data.txt]\n"
            "    params: [alpha]\n    metrics:\n      - out/m.json: {cache: false}\n"
            "  summarize:\n    cmd: @PY@ summarize.py\n    deps: [summarize.py, work/out/m.json]\n"
            "    outs:\n      - summary.json: {cache: false}\n      - curve.csv: {cache: false}\n"
            "metrics: [summary.json]\nplots:\n  - curve.csv: {x: a, y: b}\n"
            # a plot id in a sub dvc.yaml: its files are relative to that dvc.yaml
            "  - r2_curve:\n      x: a\n      y: {curve.csv: b}\n"
        ),
        "other/dvc.yaml": (
            "stages:\n  count:\n    cmd: @PY@ count.py\n    deps: [count.py]\n"
            "    metrics: [metrics.yaml]\n"
        ),
        "other/count.py": "open('metrics.yaml', 'w').write('files: 3\\n')\n",
    },
    candidate={
        "sub/work/params.yaml": "alpha: 0.6\n",
        "other/count.py": "open('metrics.yaml', 'w').write('files: 4\\n')\n",
    },
)

_layout(
    name="subdir-project",
    about="a DVC project in a subdirectory of the git repo (dvc init --subdir) with a cached "
    "directory output",
    project="ml",
    files={
        "README.md": "the git root is not the DVC root\n",
        "params.yaml": "not_dvc: 1\n",  # beside, not inside, the DVC project: not its params
        "ml/params.yaml": "depth: 3\n",
        "ml/train.py": (
            "import json, os, yaml\n"
            "d = yaml.safe_load(open('params.yaml'))['depth']\n"
            "os.makedirs('eval', exist_ok=True)\n"
            "json.dump({'accuracy': 0.7 + d / 100}, open('eval/metrics.json', 'w'))\n"
            "open('eval/curve.csv', 'w').write('x,y\\n0,%d\\n' % d)\n"
        ),
        "ml/dvc.yaml": (
            "stages:\n  train:\n    cmd: @PY@ train.py\n    deps: [train.py]\n    params: [depth]\n"
            "    outs: [eval]\n"
            "metrics: [eval/metrics.json]\nplots:\n  - eval/curve.csv: {x: x, y: y}\n"
        ),
    },
    candidate={"ml/params.yaml": "depth: 5\n", "params.yaml": "not_dvc: 2\n"},
)

_layout(
    name="params-formats",
    about="params as dvc params diff sees them: the whole params.yaml (undeclared keys, lists, "
    "booleans, nested, added and removed keys, YAML 1.2 scalars, a null), json, toml and python "
    "files, top-level params files; candidate committed",
    files={
        "params.yaml": (
            "train:\n  lr: 0.1\n  layers: [64, 32]\n  use_bias: true\n"
            "  optimizer: {name: adam, betas: [0.9, 0.999]}\n"
            "seed: 1\nobsolete: gone soon\nnames: [a, b]\n"
            "min_lr: 1e-5\nenabled: yes\nempty:\nversion: '1.0'\n"  # YAML 1.2, as DVC reads it
        ),
        "config.py": "BATCH = 32\n\n\nclass Train:\n    lr = 0.1\n    layers = [1, 2]\n",
        "conf.json": '{"model": {"depth": 3, "dropout": 0.1}, "tags": ["x", "y"]}\n',
        "conf.toml": "[data]\nsplit = 0.2\nshuffle = true\n",
        "extra.yml": "batch: 32\nflags: {fast: false}\n",
        "train.py": (
            "import json, yaml\n"
            "lr = yaml.safe_load(open('params.yaml'))['train']['lr']\n"
            "json.dump({'accuracy': 0.8 + lr}, open('metrics.json', 'w'))\n"
        ),
        "dvc.yaml": (
            "stages:\n  train:\n    cmd: @PY@ train.py\n    deps: [train.py]\n"
            "    params:\n      - train.lr\n      - conf.json: [model.depth]\n      - conf.toml:\n"
            "    outs:\n      - metrics.json: {cache: false}\n"
            "metrics: [metrics.json]\nparams: [extra.yml, config.py]\n"
        ),
    },
    candidate={
        "params.yaml": (
            "train:\n  lr: 0.2\n  layers: [64, 64]\n  use_bias: false\n"
            "  optimizer: {name: adam, betas: [0.8, 0.999]}\n  momentum: 0.9\n"
            "seed: 2\nnames: [a, b]\n"
            "min_lr: 2e-5\nenabled: no\nempty: 1\nversion: '2.0'\n"
        ),
        "config.py": "BATCH = 64\n\n\nclass Train:\n    lr = 0.1\n    layers = [1, 3]\n",
        "conf.json": '{"model": {"depth": 4, "dropout": 0.2}, "tags": ["x"]}\n',
        "conf.toml": "[data]\nsplit = 0.25\nshuffle = false\n",
        "extra.yml": "batch: 64\nflags: {fast: true}\n",
    },
    commit_candidate=True,
)

_layout(
    name="odd-values",
    about="metric values that are strings, booleans, NaN, infinity, null and lists; yaml "
    "metrics files, one with YAML 1.2 scalars",
    files={
        "params.yaml": "flip: false\n",
        "evaluate.py": (
            "import json, yaml\n"
            "f = yaml.safe_load(open('params.yaml'))['flip']\n"
            "nan, inf = float('nan'), float('inf')\n"
            "json.dump({'model': 'rf' if f else 'lr', 'converged': f, 'loss': nan if f else 0.3,\n"
            "           'score': 0.5 if f else nan, 'stable_nan': nan, 'bound': inf,\n"
            "           'missing': None, 'history': [1, 2], 'count': 7},\n"
            "          open('metrics.json', 'w'))\n"
            "yaml.safe_dump({'calibrated': not f, 'ece': 0.1, 'label': 'v1'},\n"
            "               open('extra.yaml', 'w'))\n"
            "# YAML 1.2 as DVC reads it: 1e-3 is a number, yes a string, 0x10 sixteen\n"
            "open('raw.yaml', 'w').write('rate: %s\\nok: %s\\nhex: 0x1%d\\nedge: %s\\n'\n"
            "                            % (('2e-3', 'no', 1, '-.inf') if f else ('1e-3', 'yes', 0, '.inf')))\n"
        ),
        "dvc.yaml": (
            "stages:\n  evaluate:\n    cmd: @PY@ evaluate.py\n    deps: [evaluate.py]\n"
            "    params: [flip]\n"
            "    metrics:\n      - metrics.json: {cache: false}\n      - extra.yaml: {cache: false}\n"
            "      - raw.yaml: {cache: false}\n"
        ),
    },
    candidate={"params.yaml": "flip: true\n"},
)

_FIRST_PR_TRAIN = (
    "import json, os, yaml\n"
    "lr = yaml.safe_load(open('params.yaml'))['lr']\n"
    "os.makedirs('eval', exist_ok=True)\n"
    "json.dump({'accuracy': 0.8 + lr}, open('eval/metrics.json', 'w'))\n"
    "open('eval/loss.csv', 'w').write('step,loss\\n0,%s\\n' % lr)\n"
)
_FIRST_PR_DVC = (
    "stages:\n  train:\n    cmd: @PY@ train.py\n    deps: [train.py]\n    params: [lr]\n"
    "    outs: [eval]\n"
    "metrics: [eval/metrics.json]\nplots:\n  - eval/loss.csv: {x: step, y: loss}\n"
)

_layout(
    name="first-pr",
    about="main declares the pipeline but was never reproduced: no dvc.lock, no metrics, "
    "nothing to compare with (every metric added)",
    files={"params.yaml": "lr: 0.1\n", "train.py": _FIRST_PR_TRAIN, "dvc.yaml": _FIRST_PR_DVC},
    candidate={"params.yaml": "lr: 0.2\n"},
    reproduce_baseline=False,
)

_layout(
    name="baseline-not-in-cache",
    about="main's metrics sit in a directory output that is in no cache and no remote: DVC "
    "cannot read main",
    files={"params.yaml": "lr: 0.1\n", "train.py": _FIRST_PR_TRAIN, "dvc.yaml": _FIRST_PR_DVC},
    candidate={"params.yaml": "lr: 0.2\n"},
    drop_baseline_cache=True,
)

LAYOUTS: dict[str, Layout] = {layout.name: layout for layout in _LAYOUTS}
