"""The repository speaks of the product: no wording about who worked when, and a short README.

Work periods ("the eighth session's default"), issue numbers ("issue 12", "#25"), "of mine",
"not re-timed", "before this fix": a reader of the code or docs cannot act on any of it, and it
ages the day it is written. Git keeps the history.
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
    (rf"\b{_ORDINAL}\s+(work\s+)?sessions?\b", "a numbered work period"),
    (r"\b(this|last|previous|next|earlier|later|my|our)\s+(work\s+)?sessions?\b", "a work period"),
    (r"\bsessions?\s+\d+\b", "a numbered work period"),
    (r"project's sessions", "a work period"),
    (r"\bwork periods?\b", "a work period"),
    (r"\bissues?[\s-]*#?\d+\b", "an issue number"),
    (r"\bthe issue's\b", "an issue"),
    (r"(?:^|[\s(\[])#\d+\b", "an issue number"),
    (r"\bof mine\b", "who did the work"),
    (r"\bre-timed\b", "when something was measured"),
    (r"\bthis fix\b", "a change, not the product"),
    (r"\b(before|after|since|until) this (change|restructuring)\b", "a change, not the product"),
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
            # HTML and CSS colours (#333) are not issue numbers
            if path.suffix == ".html" and pattern.pattern.startswith("(?:^"):
                continue
            if pattern.search(line):
                out.append(f"{path.relative_to(ROOT)}:{number}: {why}: {line.strip()[:100]}")
                break
    return out


def test_the_patterns_catch_what_they_are_for(tmp_path: Path):
    sample = tmp_path / "sample.md"
    sample.write_text(
        "the eighth session's default\nmeasured in session 12\nsee issue 25\nfixed in #31\n"
        "two other jobs of mine\nnot re-timed\nbefore this fix\n"
        "pytest's scope='session' fixture\nthe session cookie\n"
    )
    hits = [
        line
        for number, line in enumerate(sample.read_text().splitlines(), 1)
        if any(p.search(line) for p, _ in _COMPILED)
    ]
    assert len(hits) == 7 and not any("cookie" in h or "scope" in h for h in hits)


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
