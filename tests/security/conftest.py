"""The fixtures the attacks borrow: the fork's publish job and the retrain project."""

from tests.commands.test_retrain import import_template, project  # noqa: F401
from tests.commands.test_untrusted import trusted_checkout, trusted_env  # noqa: F401
