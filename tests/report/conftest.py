"""The training tests' prepared synthetic patients, for the reports of tiny training runs."""

from tests.train.conftest import prepared  # noqa: F401  (a session fixture, shared with tests/train)
