"""The README's Quick start is what CI runs: two commands, the first without development tools."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README.md: no bash block under '## Quick start'"
    commands = [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()]
    return [c for c in commands if c]


def test_quick_start_has_two_commands_and_the_first_installs_no_dev_extra() -> None:
    commands = _quick_start_commands()
    assert len(commands) == 2, commands
    install_and_run, test = commands
    assert "[dev]" not in install_and_run and "remotesam-bench run" in install_and_run
    assert "[dev]" in test and "pytest" in test


def test_ci_runs_exactly_the_readme_commands() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    ci_lines = [line.strip() for line in ci.splitlines()]
    for command in _quick_start_commands():
        # CI adds only pip's -q; the command itself is the README's.
        assert command.replace("pip install", "pip install -q", 1) in ci_lines, command
