"""The repository speaks of the product: no wording about who worked when, and a short README.

Numbered periods of work, tracker numbers, first-person asides and notes on when something was
changed or timed: a reader of the code or docs cannot act on any of it, and it ages the day it
is written. Git keeps the history. (The patterns below are written so that this file does not
match them itself.)
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ["src", "tests", "docs", "benchmarks", "conf", "README.md", "Makefile", ".ci"]
TEXT_SUFFIXES = {".py", ".md", ".yml", ".yaml", ".toml", ".txt", ".cfg", ".html", ".sh", ""}
README_MAX_LINES = 250

_ORDINAL = (
    r"(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth"
    r"|\d+(st|nd|rd|th))"
)
#: (pattern, what it catches); matched case-insensitively, line by line
FORBIDDEN = [
    (rf"\b{_ORDINAL}\s+(work\s+)?sessions?\b", "who worked when"),
    (r"\b(this|last|previous|next|earlier|later|my|our)\s+(work\s+)?sessions?\b", "when"),
    (r"\bsessions?\s+\d+\b", "who worked when"),
    (r"project's\s+sessions", "who worked when"),
    (r"\bwork\s+periods?\b", "who worked when"),
    (r"\bissues?[\s-]*#?\d+\b", "a tracker number"),
    (r"\bthe\s+issue's\b", "the tracker"),
    (r"(?:^|[\s(\[])#\d+\b", "a tracker number"),
    (r"\bof\s+mine\b", "who did the work"),
    (r"\bre[-]timed\b", "when something was measured"),
    (r"\bthis\s+fix\b", "a change, not the product"),
    (r"\b(before|after|since|until)\s+this\s+(change|restructuring)\b", "a change"),
]
_COMPILED = [(re.compile(pattern, re.IGNORECASE), why) for pattern, why in FORBIDDEN]


def scanned_files() -> list[Path]:
    """Tracked and new (not ignored) text files of the scanned folders, this test excepted."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", *SCANNED],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    this = Path(__file__).resolve()
    return [
        ROOT / name
        for name in sorted(set(listed))
        if Path(name).suffix in TEXT_SUFFIXES
        and (ROOT / name).is_file()
        and (ROOT / name).resolve() != this
    ]


def findings(path: Path) -> list[str]:
    """``file:line: why: text`` for each line of ``path`` that speaks of work, not product."""
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        return []
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        for pattern, why in _COMPILED:
            # colours in HTML and CSS are hex digits after a hash, not tracker numbers
            if path.suffix == ".html" and pattern.pattern.startswith("(?:^"):
                continue
            if pattern.search(line):
                out.append(f"{path.relative_to(ROOT)}:{number}: {why}: {line.strip()[:100]}")
                break
    return out


def test_the_patterns_catch_what_they_are_for(tmp_path: Path):
    sample = tmp_path / "sample.md"
    # each forbidden line is written in two parts, joined at run time, so this file stays clean
    forbidden = [
        ("the eighth ", "session's default"),
        ("measured in session ", "12"),
        ("see issue ", "25"),
        ("fixed in #", "31"),
        ("two other jobs of ", "mine"),
        ("not re-", "timed"),
        ("before this ", "fix"),
    ]
    allowed = ["pytest's scope='session' fixture", "the session cookie"]
    sample.write_text("\n".join(["".join(parts) for parts in forbidden] + allowed) + "\n")
    hits = [
        line
        for number, line in enumerate(sample.read_text().splitlines(), 1)
        if any(p.search(line) for p, _ in _COMPILED)
    ]
    assert len(hits) == len(forbidden) and not any("cookie" in h or "scope" in h for h in hits)


def test_the_repository_speaks_of_the_product_only():
    files = scanned_files()
    assert len(files) > 100  # the scan sees the repository, not an empty list
    problems = [finding for path in files for finding in findings(path)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("readme", [ROOT / "README.md"])
def test_readme_stays_a_short_user_guide(readme: Path):
    lines = readme.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README has {len(lines)} lines"
    headings = [line for line in lines if line.startswith("## ")]
    for topic in ("Quick start", "Serve", "Your own data", "Tuning", "When something goes wrong"):
        assert any(topic in h for h in headings), f"no README heading for {topic!r}"
