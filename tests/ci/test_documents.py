"""Run-directory documents: atomic, indented for people when small, compact when large."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mlops_ci.ci import documents


def test_small_documents_are_indented_large_ones_compact(tmp_path: Path) -> None:
    small = {"kind": "comparison", "metrics": [{"name": "acc", "delta": 0.5}]}
    path = documents.write(tmp_path, "small.json", small)
    assert path.read_text().startswith('{\n  "kind"')
    assert json.loads(path.read_text()) == small

    large = {"metrics": [{"name": f"m{i}", "baseline": i, "candidate": i + 1} for i in range(9000)]}
    path = documents.write(tmp_path, "large.json", large)
    text = path.read_text()
    assert "\n " not in text and text.endswith("}\n")
    assert len(text) > documents.PRETTY_UP_TO_BYTES
    assert json.loads(text) == large
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left


def test_a_nan_is_refused_not_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        documents.write(tmp_path, "bad.json", {"value": math.nan})
    assert not (tmp_path / "bad.json").exists()


@pytest.mark.slow
def test_yaml_nested_too_deep_for_the_c_parser_is_an_error_not_a_crash() -> None:
    """ruamel's C composer recurses without a limit: 200,000 nested flow lists would kill the
    process (SIGSEGV). Such a file goes to the pure parser and is reported as too deep."""
    import subprocess
    import sys

    script = (
        "from mlops_ci.ci.documents import parse_bounded\n"
        "from mlops_ci.project.dvcfile import parse_structured\n"
        "n = 200_000\n"
        "try:\n"
        "    parse_bounded('eval/m.yaml', ('[' * n + ']' * n).encode(), parse_structured)\n"
        "except ValueError as exc:\n"
        "    print(exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-500:]
    assert proc.stdout.strip() == "eval/m.yaml nests deeper than 64 levels"


def test_yaml_is_read_as_yaml_1_2_by_the_c_parser_as_by_dvc() -> None:
    from ruamel.yaml import YAML

    from mlops_ci.project.dvcfile import parse_structured

    text = "a: 1e-3\nb: yes\nc: 0o17\nd: 1_000\ne: .inf\nf: ~\ng: [1, {h: off}]\n"
    ours = parse_structured("params.yaml", text.encode())
    assert ours == YAML(typ="safe", pure=True).load(text)  # same answers as the pure parser
    assert ours["a"] == 0.001 and ours["b"] == "yes" and ours["g"][1]["h"] == "off"
