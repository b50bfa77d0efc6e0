"""Command-line entry point: parse -> typed arguments -> library functions.

Each subcommand lives in ``mrisr/commands/<name>.py`` and exposes ``register(subparsers)``, which adds its
parser and sets ``func`` (a callable taking the parsed namespace and returning an exit code). Building the
parsers imports every command module, so those import only the standard library and light mrisr modules
at module level (choice lists come from torch-free declarations such as
:data:`mrisr.degrade.baselines.BASELINES`); torch, scipy, nibabel, pydicom and the like are imported by
``func`` when the command runs, and ``mrisr --help`` starts in a fraction of a second
(``tests/test_startup.py``). Adding a command = its module + its name in :data:`COMMAND_MODULES`.

Errors that are the user's (``MrisrError``) print one line ``mrisr: error: ...`` and exit 1; argparse
usage errors exit 2; ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from mrisr import __version__
from mrisr.errors import MrisrError

#: Subcommand modules under ``mrisr.commands``, in the order ``mrisr --help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "demo", "info", "convert", "degrade", "upscale", "evaluate", "report", "compare", "models", "train", "prepare",
    "make_example_data", "selfsr", "export",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mrisr",
        description="MRI super-resolution: degrade, upscale, evaluate, prepare data, train.",
    )
    parser.add_argument("--version", action="version", version=f"mrisr {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"mrisr.commands.{name}").register(sub)
    return parser


def _one_line(exc: BaseException, **limit: int) -> str:
    """:func:`mrisr.io.messages.one_line`, imported only when there is an error to print (``mrisr.io``
    loads numpy, which a successful ``mrisr --help`` never needs)."""
    from mrisr.io.messages import one_line

    return one_line(exc, **limit)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("MRISR_DEBUG") == "1"
    logging.basicConfig(level=logging.INFO if debug else logging.WARNING, format="%(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe (`mrisr info x | head -2`) surfaces here, not at exit
        return code
    except BrokenPipeError:
        # the reader stopped early: not an error worth a message; silence the flush at interpreter exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except MrisrError as exc:
        if debug:
            raise
        print(f"mrisr: error: {_one_line(exc, limit=2000)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mrisr: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        if debug:
            raise
        print("mrisr: error: out of memory (try a smaller tile/batch size)", file=sys.stderr)
        return 1
    except Exception as exc:  # last line of defence: one line, not a traceback wall
        if debug:
            raise
        from mrisr.io.memory import is_out_of_memory

        if is_out_of_memory(exc):  # torch's allocator raises RuntimeError, not MemoryError
            print(f"mrisr: error: out of memory: {_one_line(exc, limit=200)} (try a smaller input, scale or "
                  "batch size)", file=sys.stderr)
            return 1
        print(f"mrisr: error: unexpected {type(exc).__name__}: {_one_line(exc)} (rerun with --debug for details)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
