"""The README shows the CLI's real ``--help`` (issue 14): a changed option fails here until the
README is updated (regenerate with ``COLUMNS=100 snapshots … --help``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parents[2] / "README.md"
SNAPSHOTS = str(Path(sys.executable).parent / "snapshots")


@pytest.mark.parametrize("command", [[], ["create"], ["messages", "add"], ["download"]])
def test_readme_shows_the_current_help(command: list[str]) -> None:
    env = {**os.environ, "COLUMNS": "100"}
    shown = subprocess.run(
        [SNAPSHOTS, *command, "--help"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert f"```\n{shown}\n```" in README.read_text(encoding="utf-8")
