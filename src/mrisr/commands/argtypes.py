"""``type=`` callables shared by the command parsers (standard library only: parsers are built at start-up)."""

from __future__ import annotations

import argparse


def size(text: str) -> list[int]:
    """``"256"``, ``"256x192"`` or ``"8x64x64"`` (commas also separate) -> ``[256]``, ``[256, 192]``, ``[8, 64, 64]``."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or HxW (or DxHxW), got {text!r}") from None
