"""Headless Chromium (Debian's ``chromium``; ``.ci/run`` installs it) and the training tests' prepared data."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.train.conftest import prepared  # noqa: F401  (a session fixture, shared with tests/train)

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--virtual-time-budget=5000")


def chromium_path() -> str | None:
    """The Chromium binary, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``chromium(url, *flags)``: one headless run with a fresh profile (60 s at most)."""
    path = chromium_path()
    if path is None:
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run installs it where it can)")

    def run(url: str, *flags: str) -> subprocess.CompletedProcess[str]:
        profile = tmp_path_factory.mktemp("chromium-profile")
        return subprocess.run([path, *FLAGS, f"--user-data-dir={profile}", *flags, url], capture_output=True,
                              text=True, timeout=60, check=False)

    return run
