"""The user-facing docs stay true: the README's quick start is two commands and its API tour runs, docs/cli.md
documents every command and option the parser has, and relative links resolve."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = (README, ROOT / "docs/cli.md", ROOT / "docs/glossary.md", ROOT / "docs/privacy/README.md")


def test_quick_start_is_exactly_make_demo_and_make_test():
    section = README.read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [line.strip() for line in section.splitlines() if line.startswith("    ") and line.strip()]
    assert commands == ["make demo", "make test"]


def test_readme_api_tour_runs(tmp_path):
    tour = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert tour is not None
    result = subprocess.run([sys.executable, "-c", tour.group(1)], cwd=tmp_path, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Warning" not in result.stderr
    assert (tmp_path / "report.json").is_file()


def _options(parser) -> set[str]:
    """Every long option and sub-command name reachable from ``parser``."""
    import argparse

    found: set[str] = set()
    for action in parser._actions:
        found.update(s for s in action.option_strings if s.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.add(name)
                found |= _options(sub)
    return found - {"--help"}


def test_cli_reference_documents_every_command_and_option():
    from adtarget.cli._app import build_parser

    text = (ROOT / "docs/cli.md").read_text()
    missing = sorted(o for o in _options(build_parser()) if o not in text)
    assert missing == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc):
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", doc.read_text())
    broken = [link for link in links if "://" not in link and not (doc.parent / link).exists()]
    assert broken == []
