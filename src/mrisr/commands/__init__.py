"""CLI subcommands, one module each; see :mod:`mrisr.cli`."""
