"""Chunks quote exact source lines, keep blocks whole, and fit the model."""

from __future__ import annotations

import functools

import re

import pytest

from okdbot.chunk import chunk_note, is_image_only
from okdbot.ingest import decode

from .conftest import BUNDLED_NOTE, SHARED_CORPORA


def _read(path):
    text, reason = decode(path.read_bytes())
    return text


def _shared_notes():
    if not SHARED_CORPORA.is_dir():
        return []
    return sorted(p for p in SHARED_CORPORA.rglob("*.md") if _read(p) is not None)


def _assert_exact_lines(text, chunks):
    lines = text.split("\n")
    for c in chunks:
        assert 1 <= c.start_line <= c.end_line <= len(lines)
        assert c.text == "\n".join(lines[c.start_line - 1:c.end_line]), (c.file, c.start_line)
        assert c.text.strip(), "empty chunk"
        assert re.search(r"[^\W_]", re.sub(r"<[^>]+>", "", c.text)), ("a chunk without words", c.file, c.start_line)
        assert not any(is_image_only(line) for line in c.text.split("\n")[:1])


def test_bundled_note_chunks_are_exact_source_lines():
    text = _read(BUNDLED_NOTE)
    chunks = chunk_note("notes", "Day26.md", text)
    assert len(chunks) > 40
    _assert_exact_lines(text, chunks)


@pytest.mark.skipif(not SHARED_CORPORA.is_dir(), reason="../shared/corpora is not on this machine")
def test_every_shared_corpus_file_chunks_to_exact_lines():
    files = _shared_notes()
    assert len(files) > 80
    total = 0
    for path in files:
        text = _read(path)
        chunks = chunk_note("s", path.name, text)
        _assert_exact_lines(text, chunks)
        total += len(chunks)
    assert total > 1000


def test_heading_path_and_definition_bullets():
    chunks = chunk_note("notes", "Day26.md", _read(BUNDLED_NOTE))
    skopeo = [c for c in chunks if "Skopeo :" in c.text]
    assert len(skopeo) == 1
    assert skopeo[0].heading == (
        "Day26 > 레드햇 OpenShift > OKD(OpenShift Origin community Distribution Kubernetes) > OKD4 구성 오픈소스")
    # every "- Name : definition" bullet lies whole inside exactly one chunk
    for line in _read(BUNDLED_NOTE).split("\n"):
        if re.match(r"^- \S.* : ", line):
            assert sum(line in c.text.split("\n") for c in chunks) == 1, line


def test_list_item_keeps_its_sub_items():
    chunks = chunk_note("notes", "Day26.md", _read(BUNDLED_NOTE))
    asset = [c for c in chunks if "특별한 Asset" in c.text]
    assert len(asset) == 1
    assert "service :" in asset[0].text and "replica controller" in asset[0].text


def test_image_only_lines_are_never_quoted():
    text = _read(BUNDLED_NOTE)
    assert any(is_image_only(line) for line in text.split("\n"))
    for c in chunk_note("notes", "Day26.md", text):
        assert not any(is_image_only(line) for line in c.text.split("\n"))


def test_a_block_without_words_is_never_a_passage():
    """A bare "- " (44-day notes, Day19) or a fence holding only a comment was a chunk, and its
    vector sat near every question: it was quoted as the answer to unrelated ones."""
    text = "# SELinux\n\n- `setenforce [0|1]`\n- \n\n***\n\n```<!-- cSpell:ignore x -->\n```\n\n- 1\n"
    chunks = chunk_note("notes", "Day19.md", text)
    assert [c.text for c in chunks] == ["- `setenforce [0|1]`", "- 1"]


def test_code_fence_is_one_chunk_and_front_matter_is_skipped():
    fence = "\n".join(f"line {i}" for i in range(80))
    text = f"---\ntitle: x\n---\n# Title\n\nIntro paragraph.\n\n```yaml\n{fence}\n```\n\n## Next\n\n![img](a.png)\n\nTail text.\n"
    chunks = chunk_note("s", "doc.md", text)
    _assert_exact_lines(text, chunks)
    fenced = [c for c in chunks if "line 0" in c.text]
    assert len(fenced) == 1 and "line 79" in fenced[0].text and fenced[0].text.endswith("```")
    assert not any("title: x" in c.text for c in chunks)
    assert [c.heading for c in chunks] == ["Title", "Title", "Title > Next"]


def test_document_without_headings_uses_file_name():
    chunks = chunk_note("s", "sub/메모.md", "just text\n")
    assert chunks[0].heading == "메모" and chunks[0].start_line == 1


@functools.lru_cache(maxsize=1)
def _reference_tokenizer(folder):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(folder / "tokenizer.json"))  # windows are counted independently


def _windows_respect_limit(model, chunks):
    reference = _reference_tokenizer(model.folder)
    for c in chunks:
        windows = model.windows(c.embed_text)
        for w in windows:
            tokens = reference.encode(model.passage_prefix + w, add_special_tokens=True).ids
            assert len(tokens) <= model.max_tokens, (c.file, c.start_line, len(tokens))
        # nothing is dropped: the windows' bodies are the chunk's text, in order
        if len(windows) == 1:
            assert windows[0] == c.embed_text
        else:
            prefix = c.heading + "\n"
            bodies = [w[len(prefix):] if w.startswith(prefix) else w for w in windows]
            assert "".join("".join(b.split()) for b in bodies) == "".join(c.text.split()), (c.file, c.start_line)


def test_no_embedded_window_exceeds_the_model_limit(model):
    chunks = chunk_note("notes", "Day26.md", _read(BUNDLED_NOTE))
    _windows_respect_limit(model, chunks)
    long = "# T\n\n" + "- " + "컨테이너 이미지를 복사하는 도구 " * 200 + "\n"
    long_chunks = chunk_note("s", "long.md", long)
    assert len(model.windows(long_chunks[0].embed_text)) > 1
    _windows_respect_limit(model, long_chunks)


@pytest.mark.skipif(not SHARED_CORPORA.is_dir(), reason="../shared/corpora is not on this machine")
def test_no_window_exceeds_the_limit_on_shared_corpora(model):
    for path in _shared_notes():
        _windows_respect_limit(model, chunk_note("s", path.name, _read(path)))


@pytest.mark.parametrize("depth", [10, 30])
def test_a_deeply_nested_outline_does_not_swallow_the_sections_after_it(depth):
    """markdown-it stops reading at its nesting limit (10 list levels by default): the
    list item then ran to the end of the note, and every later answer cited all of it."""
    outline = "".join("  " * i + f"- 단계 {i}\n" for i in range(depth))
    text = "# Outline\n\n" + outline + "\n## Skopeo\n\n- Skopeo : 이미지를 복사하는 도구\n"
    chunks = chunk_note("notes", "o.md", text)
    skopeo = [c for c in chunks if "Skopeo :" in c.text]
    assert [c.heading for c in skopeo] == ["Outline > Skopeo"]
    assert skopeo[0].start_line == skopeo[0].end_line == depth + 6
    assert all(c.end_line < depth + 4 for c in chunks if c.heading == "Outline")
