"""The forked helper of `compare` (mlops_ci/compare/prefork.py): it answers what the job
answers in-process, and whatever goes wrong on its side, the parent computes the job itself.

The helper never forks inside pytest (numpy is loaded here, and xdist runs threads), so each
case runs in a fresh interpreter and prints what it saw."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlops_ci.compare import prefork
from mlops_ci.project.settings import SETTINGS_FILE

JOBS = """
import os, sys

def where(parent: int) -> str:
    return "child" if os.getpid() != parent else "parent"

def raises(parent: int) -> str:
    if os.getpid() != parent:
        raise ValueError("only in the child")
    raise KeyError("in the parent too")

def dies(parent: int) -> str:
    if os.getpid() != parent:
        os._exit(3)
    return "computed by the parent"
"""


def run_script(tmp_path: Path, body: str, **env: str) -> dict[str, object]:
    (tmp_path / "jobs.py").write_text(JOBS)
    script = (
        textwrap.dedent(
            """
        import json, os, sys, threading
        sys.path.insert(0, sys.argv[1])
        import jobs
        from mlops_ci.compare import prefork
        out = {}
        """
        )
        + textwrap.dedent(body)
        + "\nprint(json.dumps(out))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True, text=True, check=False, env={**os.environ, **env},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(sys.platform != "linux", reason="the helper forks on Linux only")
def test_the_helper_computes_in_a_child_and_hands_back_the_result(tmp_path: Path) -> None:
    out = run_script(
        tmp_path,
        """
        helper = prefork.Helper.start(preload=())
        out["started"] = helper is not None
        out["where"] = helper.run(jobs.where, os.getpid())
        out["numpy"] = "numpy" in sys.modules
        out["reaped"] = helper.closed
        """,
    )
    assert out == {"started": True, "where": "child", "numpy": False, "reaped": True}


@pytest.mark.skipif(sys.platform != "linux", reason="the helper forks on Linux only")
def test_whatever_fails_in_the_helper_the_parent_computes_the_job(tmp_path: Path) -> None:
    out = run_script(
        tmp_path,
        """
        helper = prefork.Helper.start(preload=())
        try:
            helper.run(jobs.raises, os.getpid())
        except KeyError as exc:  # the parent's own run raises, as it would without a helper
            out["raised"] = str(exc)
        out["died"] = prefork.Helper.start(preload=()).run(jobs.dies, os.getpid())
        # a job that does not pickle never reaches the child
        out["unpicklable"] = prefork.Helper.start(preload=()).run(lambda: "here")
        # a child that cannot load its modules exits; the parent goes on
        out["no preload"] = prefork.Helper.start(preload=("no_such_module",)).run(
            jobs.where, os.getpid()
        )
        """,
    )
    assert out == {
        "raised": "'in the parent too'",
        "died": "computed by the parent",
        "unpicklable": "here",
        "no preload": "parent",
    }


def test_no_helper_where_forking_is_unsafe_or_unwanted(tmp_path: Path) -> None:
    out = run_script(
        tmp_path,
        """
        out["plain"] = prefork.usable()
        event = threading.Event()
        thread = threading.Thread(target=event.wait)
        thread.start()
        out["threads"] = prefork.usable()
        event.set()
        thread.join()
        out["switched off"] = prefork.usable({"MLOPS_CI_PREFORK": "0"})
        import numpy
        out["numpy loaded"] = prefork.usable()
        out["started"] = prefork.Helper.start() is not None
        """,
    )
    assert out == {
        "plain": sys.platform == "linux" and len(os.sched_getaffinity(0)) > 1,
        "threads": False,
        "switched off": False,
        "numpy loaded": False,
        "started": False,
    }


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("predictions: eval/predictions.csv\n", True),
        ("artifact: x\npredictions: 'p.csv'  # the test set\n", True),
        ("predictions: null\n", False),
        ("predictions: ~\n", False),
        ("predictions:\n", False),
        ("predictions:   # none yet\n", False),
        ("# predictions: p.csv\n", False),
        ("data:\n  predictions: p.csv\n", False),
        ("artifact: x\n", False),
    ],
)
def test_the_helper_is_wanted_when_the_settings_name_predictions(
    tmp_path: Path, text: str, wanted: bool
) -> None:
    (tmp_path / SETTINGS_FILE).write_text(text)
    assert prefork.wanted(tmp_path) is wanted
    assert prefork.SETTINGS_FILE == SETTINGS_FILE


def test_no_settings_file_no_helper(tmp_path: Path) -> None:
    assert prefork.wanted(tmp_path) is False
