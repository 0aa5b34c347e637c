"""The repository's text cites no issue numbers: the tracker they point into is not part of the repository,
so a comment should say what went wrong or why, not which ticket asked for it.

Commit messages may cite them; code, tests, benchmarks, scripts and documentation may not."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("python", "rust", "tests", "benches", "gpu_checks", "examples", "docs", ".ci")
SUFFIXES = {".py", ".md", ".toml", ".pyi", ".txt", ".rs", ""}  # "" : scripts such as .ci/run
# "issue 12", "issues 9 and 10", "Issue 10.3": the word followed by a number (not "the issue limit")
ISSUE_NUMBER = re.compile(r"\bissues?\s+#?\d+", re.IGNORECASE)


def _text_files():
    yield ROOT / "README.md"
    yield ROOT / "conftest.py"
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*")):
            if (path.is_file() and path.suffix in SUFFIXES and "__pycache__" not in path.parts
                    and path != Path(__file__).resolve()):  # this file's own examples
                yield path


def cited_issue_numbers(text: str) -> list[str]:
    """Every place ``text`` cites an issue by number."""
    return [m.group(0) for m in ISSUE_NUMBER.finditer(text)]


def test_no_issue_numbers_in_code_or_docs():
    if not (ROOT / "python" / "lrdecay").is_dir():
        pytest.skip("needs the source tree")
    found = []
    for path in _text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # a binary file
        for lineno, line in enumerate(text.splitlines(), 1):
            if cited_issue_numbers(line):
                found.append(f"{path.relative_to(ROOT)}:{lineno}: {line.strip()}")
    assert not found, "issue numbers (say what failed or why instead):\n" + "\n".join(found)


def test_the_pattern_finds_issue_numbers_and_only_them():
    assert cited_issue_numbers("fixed for issue 9; see Issue 10.3 and issues 11") == ["issue 9", "Issue 10", "issues 11"]
    assert cited_issue_numbers("(issue #12)") == ["issue #12"]
    assert cited_issue_numbers("near the issue limit of 4 uops; issued 3 loads; tissue 5") == []
