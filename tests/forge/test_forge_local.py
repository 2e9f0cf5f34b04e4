"""The local forge: files in the run directory and one line each on the terminal."""

from __future__ import annotations

import io
import json

import pytest

from mlops_ci.forge import detect_forge
from mlops_ci.forge.local import LocalForge
from mlops_ci.report import report_marker_id


@pytest.fixture
def forge(tmp_path) -> LocalForge:
    forge = detect_forge({}, tmp_path / ".mlops-ci", out=io.StringIO())
    assert isinstance(forge, LocalForge)
    return forge


def printed(forge: LocalForge) -> list[str]:
    return forge.out.getvalue().splitlines()


def test_comment_is_upserted_per_marker(forge):
    a, b = report_marker_id("a", "pr"), report_marker_id("b", "pr")
    assert forge.upsert_comment("first <!-- an inner html comment -->\n<!-- x -->", a).created
    assert forge.upsert_comment("other", b).created
    again = forge.upsert_comment("second", a)
    assert not again.created
    assert again.id == a
    text = (forge.run_dir / "comment.md").read_text()
    assert f"<!-- {a} -->\nsecond" in text
    assert f"<!-- {b} -->\nother" in text
    assert "first" not in text
    assert printed(forge)[0].startswith("comment written: ")
    assert printed(forge)[2].startswith("comment updated: ")
    assert forge.comment_limit is None
    assert forge.name == "local"


def test_statuses_deployments_and_summary(forge):
    forge.set_status("a" * 40, "success", "x" * 200, "mlops-ci/classifier")
    forge.set_status("a" * 40, "failure", "dropped", "mlops-ci/classifier")
    statuses = json.loads((forge.run_dir / "statuses.json").read_text())
    assert [s["state"] for s in statuses] == ["success", "failure"]
    assert len(statuses[0]["description"]) == 140
    forge.record_deployment(
        "a" * 40, "production", "classifier@v1.0.0", "success", "ok", url="file:///m"
    )
    (dep,) = json.loads((forge.run_dir / "deployments.json").read_text())
    assert dep["version"] == "classifier@v1.0.0"
    assert dep["url"] == "file:///m"
    assert forge.write_summary("## Report") == forge.run_dir / "summary.md"
    assert printed(forge) == [
        "status mlops-ci/classifier: success — " + "x" * 139 + "…",
        "status mlops-ci/classifier: failure — dropped",
        "deployment classifier@v1.0.0 to production: success (file:///m)",
    ]
    assert forge.find_pr("a" * 40) is None
    assert forge.create_check_run("a" * 40, "n", "success", "t", "s") is None
    assert forge.run_url is None
    assert forge.commit_url("a" * 40) is None


def test_bad_marker_is_refused(forge):
    with pytest.raises(ValueError, match="no '--'"):
        forge.upsert_comment("x", "evil -->")
