"""`at_or_under`: one answer, by whole path segments, to "is this path an output or inside one"
(every reader of outputs, uncached paths and read errors asks it)."""

from __future__ import annotations

import pytest

from mlops_ci.project.dvcfile import at_or_under


@pytest.mark.parametrize(
    ("path", "roots", "expected"),
    [
        ("data/train.csv", ["data/train.csv"], True),  # the output itself
        ("data/train.csv", ["data"], True),  # a file of a directory output
        ("data/train.csv", ["data/"], True),  # a directory written with its slash
        ("data/deep/x.csv", ["data"], True),
        ("data2/x.csv", ["data"], False),  # a longer name is not inside
        ("dat", ["data"], False),
        ("data", ["data/train.csv"], False),  # a directory holding an output is not under it
        ("x.csv", [], False),
        ("x.csv", iter(["y", "x.csv"]), True),  # any iterable of roots
    ],
)
def test_a_path_is_at_or_under_a_root_only_by_whole_segments(
    path: str, roots: list[str], expected: bool
) -> None:
    assert at_or_under(path, roots) is expected
