"""Pure: a retrieval Result → what people read (terminal text) or scripts parse (JSON).

Answers are quotes: every line shown is a line of the source file, except a
"…" line standing for lines left out (long passages are trimmed to the lines
holding the question's terms; image-only lines are never quoted).
"""

from __future__ import annotations

from .chunk import is_image_only
from .retrieve import Passage, Result

ELLIPSIS = "…"
TERMINAL_LINES = 12
JSON_LINES = 40

STRINGS = {
    "en": {
        "not_found": "I couldn't find this in the notes.",
        "suggest": "Nearest sections:",
        "source": "Source",
        "more": "More in the notes",
        "cooldown": "Please wait {seconds:.0f}s before asking again.",
        "error": "Something went wrong while answering. The maintainers have been told.",
        "empty": "Ask a question after the mention, e.g. “What is Skopeo?”",
        "thanks": "Thanks for the feedback!",
    },
    "ko": {
        "not_found": "노트에서 이 내용을 찾지 못했습니다.",
        "suggest": "가까운 섹션:",
        "source": "출처",
        "more": "노트에서 더 보기",
        "cooldown": "{seconds:.0f}초 후에 다시 질문해 주세요.",
        "error": "답변 중 문제가 생겼습니다. 관리자에게 알렸습니다.",
        "empty": "멘션 뒤에 질문을 적어 주세요. 예: “Skopeo가 뭐야?”",
        "thanks": "피드백 감사합니다!",
    },
}


def strings(korean: bool) -> dict[str, str]:
    return STRINGS["ko" if korean else "en"]


def quote_lines(passage: Passage, max_lines: int) -> list[str]:
    """The passage's source lines, trimmed to at most `max_lines` shown lines
    (plus "…" markers): whole when short, else the lines with question terms."""
    lines = passage.lines
    clean = not any(is_image_only(l.text) for l in lines)
    if len(lines) <= max_lines and clean:
        return [l.text for l in lines]
    keep = [i for i, l in enumerate(lines) if l.relevant and not is_image_only(l.text)]
    if not keep or len(lines) <= max_lines:
        keep = [i for i, l in enumerate(lines) if not is_image_only(l.text)]
    keep = keep[:max_lines]
    out: list[str] = []
    previous = -1
    for i in keep:
        if i > previous + 1:
            out.append(ELLIPSIS)
        out.append(lines[i].text)
        previous = i
    if keep and keep[-1] < len(lines) - 1:
        out.append(ELLIPSIS)
    return out


def to_json(result: Result, max_lines: int = JSON_LINES) -> dict:
    """The documented `okdbot query --json` object."""
    data = {
        "question": result.question,
        "answered": result.answered,
        "passages": [
            {"rank": p.rank, "score": p.score, "file": p.file, "heading": p.heading,
             "start_line": p.start_line, "end_line": p.end_line, "url": p.url,
             "text": "\n".join(quote_lines(p, max_lines))}
            for p in result.passages
        ],
    }
    if not result.answered:
        data["suggestions"] = [{"heading": s.heading, "url": s.url} for s in result.suggestions]
    return data


def to_text(result: Result, max_lines: int = TERMINAL_LINES) -> str:
    """A terminal answer: each passage quoted with its heading path and link."""
    ui = strings(result.korean)
    if not result.answered:
        out = [ui["not_found"]]
        if result.suggestions:
            out.append(ui["suggest"])
            out += [f"  - {s.heading}\n    {s.url}" for s in result.suggestions]
        return "\n".join(out)
    blocks = []
    for p in result.passages:
        quoted = "\n".join(f"  │ {line}" for line in quote_lines(p, max_lines))
        blocks.append(f"[{p.rank}] {p.heading}\n{quoted}\n  {p.url}")
    return "\n\n".join(blocks)


def answer_log_line(result: Result, latency_ms: float) -> str:
    """The one INFO line an operator sees per answer. Never the question's text
    (log that separately at DEBUG): its length, language, how long it took,
    how many passages, the best fused score and the index generation."""
    return (f"answer q_chars={len(result.question)} lang={'ko' if result.korean else 'en'} "
            f"latency_ms={latency_ms:.0f} hits={len(result.passages)} "
            f"answered={'yes' if result.answered else 'no'} top_score={result.top_score:.3f} "
            f"generation={result.generation or '-'}")
