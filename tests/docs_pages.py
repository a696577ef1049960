"""The project's Markdown pages as the tests read them: fenced code blocks, sections under headings, links."""

from __future__ import annotations

import pathlib
import re
from typing import NamedTuple

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS, ROOT / "CONTRIBUTING.md", ROOT / "CHANGELOG.md"]

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_HEADING = re.compile(r"^(#{1,6}) (.+)$", re.MULTILINE)


class Block(NamedTuple):
    """A fenced code block: its page, the line its fence opens on, its language and its text."""

    page: pathlib.Path
    line: int
    language: str
    text: str

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


class Heading(NamedTuple):
    """A Markdown heading: its level (the number of #), its text and where it starts in the page."""

    level: int
    text: str
    start: int


def blocks(page: pathlib.Path, language: str) -> list[Block]:
    """The page's fenced blocks in ``language``, in order."""
    text = page.read_text(encoding="utf-8")
    return [
        Block(page, text.count("\n", 0, match.start()) + 1, match.group(1), match.group(2))
        for match in _FENCE.finditer(text)
        if match.group(1) == language
    ]


def headings(text: str) -> list[Heading]:
    """The headings of a page, outside its code blocks."""
    fenced = [match.span() for match in _FENCE.finditer(text)]
    return [
        Heading(len(match.group(1)), match.group(2).strip(), match.start())
        for match in _HEADING.finditer(text)
        if not any(start <= match.start() < end for start, end in fenced)
    ]


def section(text: str, heading: Heading) -> str:
    """The text under ``heading`` up to the next heading of its level or above."""
    later = [h.start for h in headings(text) if h.start > heading.start and h.level <= heading.level]
    return text[heading.start: later[0] if later else len(text)]


def slug(heading_text: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation but - and _ dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading_text.lower()).replace(" ", "-")
