"""Error text for the one-line ``mrisr: error: ...`` contract."""

from __future__ import annotations


def one_line(exc: BaseException | str, limit: int = 300) -> str:
    """A library's exception message squeezed onto one line (whitespace collapsed, at most ``limit`` chars)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
