"""pytest fixtures: `fake_github` and `fake_gitlab`, loopback servers started per test.

    def test_post(fake_github, tmp_path):
        env = fake_github.ci_env(tmp_path)            # GITHUB_* pointing at the fake, PR seeded
        fake_github.seed_comments("octo/demo", 7, 250)
        fake_github.fail_next(5, status=502)
        forge = detect_forge(env, tmp_path / ".mlops-ci")
        ...
        assert fake_github.comments_on("octo/demo", 7)[-1]["body"] ...

At teardown a test fails if the library sent a request the forge's API does not accept (or the
fake answered outside GitHub's description): see `violations`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.github import FakeGitHub
from tests.fakes.gitlab import FakeGitLab


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake
    assert not fake.violations, "requests or answers outside GitHub's API:\n" + "\n".join(
        fake.violations
    )


@pytest.fixture
def fake_gitlab() -> Iterator[FakeGitLab]:
    with FakeGitLab() as fake:
        yield fake
    assert not fake.violations, "requests outside GitLab's API:\n" + "\n".join(fake.violations)
