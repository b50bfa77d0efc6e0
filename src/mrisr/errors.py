"""User-facing errors.

Anything raised as :class:`MrisrError` is printed by the CLI as one line ``mrisr: error: ...`` with exit
code 1 (no traceback unless ``--debug``). Library code raises these for bad *input* (files, arguments,
configs); programming errors stay ordinary exceptions.
"""


class MrisrError(Exception):
    """A problem with the user's input that the CLI reports as one line, exit code 1."""


class InputError(MrisrError):
    """An input file or folder cannot be read as a scan (unreadable, truncated, unsupported, absurd)."""


class OutputExistsError(MrisrError):
    """An output path already exists and ``--force`` was not given."""


class ConfigError(MrisrError):
    """A configuration value is missing, unknown or of the wrong type (the message names the key)."""
