"""Markdown → chunks, each with its heading path and exact source line range.

Pure: no I/O, no models. Works on markdown-it-py block tokens and their line
maps. A chunk is one block: a top-level list item with all its sub-items, a
paragraph, a code fence, a table, a block quote. So a definition bullet, a list
item with its sub-items and a code fence are never split. Image-only lines are
never quoted. How a chunk fits the embedding model's token limit is decided by
the embedder (see embed.windows), not by cutting blocks apart.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # markdown-it loads only when notes are chunked, not when a question is answered
    from markdown_it.token import Token

CHUNKER_VERSION = "3"  # 2: a block without a letter or digit ("- ") is no chunk; 3: outlines 50 levels deep
# markdown-it stops reading blocks nested deeper than this (each list level counts two); its default (20)
# let a 10-level outline swallow the rest of its note into one list item
MAX_NESTING = 100

_IMAGE_ONLY = re.compile(
    r"^\s*(?:[-*+]\s+|\d+[.)]\s+)?"
    r"(?:!\[[^\]]*\]\([^)]*\)|<img\b[^>]*>|</?(?:p|div|center|br)\b[^>]*>|\s)+$",
    re.IGNORECASE,
)
_TAG = re.compile(r"<[^>]+>")
_WORD = re.compile(r"[^\W_]")  # a letter or digit, in any script


@cache
def _markdown():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"maxNesting": MAX_NESTING}).enable("table")


@dataclass(frozen=True)
class Chunk:
    source: str
    file: str  # relative to the source root
    heading: str  # "Day26 > 레드햇 OpenShift > OKD4 구성 오픈소스"
    start_line: int  # 1-based, inclusive
    end_line: int  # 1-based, inclusive
    text: str  # exactly the source lines start_line..end_line
    ordinal: int  # position among the chunks under the same heading path

    @property
    def key(self) -> str:
        """Stable identity: survives edits elsewhere in the file."""
        return f"{self.source}:{self.file}#{self.heading}#{self.ordinal}"

    @property
    def embed_text(self) -> str:
        """What is embedded and lexically indexed: the heading path, then the text."""
        return f"{self.heading}\n{self.text}"

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.embed_text.encode("utf-8")).hexdigest()


def is_image_only(line: str) -> bool:
    """True for a line that shows only images (Markdown or HTML) and no words."""
    return bool(line.strip()) and bool(_IMAGE_ONLY.match(line))


def chunk_note(source: str, file: str, text: str) -> list[Chunk]:
    """Split one note into chunks. `text` uses "\\n" line endings."""
    lines = text.split("\n")
    tokens = _markdown().parse(_blank_front_matter(lines))
    root = file.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    headings: list[tuple[int, str]] = []
    ordinals: dict[str, int] = {}
    chunks: list[Chunk] = []
    for start, end, heading_level, heading_text, splittable in _blocks(tokens):
        if heading_level:
            while headings and headings[-1][0] >= heading_level:
                headings.pop()
            headings.append((heading_level, heading_text))
            continue
        path = " > ".join(h for _, h in headings) or root
        for s, e in _quotable_runs(lines, start, end, splittable):
            n = ordinals.get(path, 0)
            ordinals[path] = n + 1
            chunks.append(Chunk(source, file, path, s + 1, e, "\n".join(lines[s:e]), n))
    return chunks


def _blank_front_matter(lines: list[str]) -> str:
    """Replace a leading YAML front matter block with blank lines (keeps line numbers)."""
    if lines and lines[0].strip() == "---":
        for i in range(1, min(len(lines), 200)):
            if lines[i].strip() in ("---", "..."):
                return "\n".join([""] * (i + 1) + lines[i + 1:])
    return "\n".join(lines)


def _blocks(tokens: list[Token]):
    """Yield (start, end, heading_level, heading_text, splittable) per top-level block.

    start/end are 0-based, end exclusive. Lists yield one block per top-level
    item (sub-items included); headings yield their level and plain text.
    Only paragraphs and HTML blocks may be split around image-only lines."""
    in_list = False
    for i, tok in enumerate(tokens):
        if tok.type in ("bullet_list_open", "ordered_list_open") and tok.level == 0:
            in_list = True
        elif tok.type in ("bullet_list_close", "ordered_list_close") and tok.level == 0:
            in_list = False
        elif tok.type == "list_item_open" and in_list and tok.level == 1 and tok.map:
            yield tok.map[0], tok.map[1], 0, "", False
        elif tok.level != 0 or not tok.map or in_list:
            continue
        elif tok.type == "heading_open":
            yield tok.map[0], tok.map[1], int(tok.tag[1:]), _plain(tokens[i + 1]), False
        elif tok.type in ("paragraph_open", "fence", "code_block", "table_open",
                          "blockquote_open", "html_block"):
            yield tok.map[0], tok.map[1], 0, "", tok.type in ("paragraph_open", "html_block")


def _plain(inline: Token) -> str:
    """A heading's text without Markdown markup."""
    parts = []
    for child in inline.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(child.content)
    text = _TAG.sub("", "".join(parts)) if parts else inline.content
    return " ".join(text.split()) or inline.content.strip()


def _quotable_runs(lines: list[str], start: int, end: int, splittable: bool):
    """Split [start, end) around image-only lines (paragraphs only), trim blank
    edges, and drop runs without words."""
    if not splittable:
        runs = [(start, end)]
    else:
        runs, s = [], start
        for i in range(start, end):
            if is_image_only(lines[i]):
                runs.append((s, i))
                s = i + 1
        runs.append((s, end))
    for s, e in runs:
        while s < e and not lines[s].strip():
            s += 1
        while e > s and not lines[e - 1].strip():
            e -= 1
        if e > s and _has_words(lines[s:e]):
            yield s, e


def _has_words(block: list[str]) -> bool:
    """Whether a block says anything: a letter or digit outside tags and images. A bare
    "- " or "```" has no words, and its vector sits near every question."""
    return any(_WORD.search(_TAG.sub("", line)) and not is_image_only(line) for line in block)
