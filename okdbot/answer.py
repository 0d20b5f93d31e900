"""Pure: a retrieval Result → what people read (terminal text, a Discord
message) or scripts parse (JSON).

Answers are quotes: every line shown is a line of the source file, except a
"…" line standing for lines left out (long passages are trimmed to the lines
holding the question's terms; image-only lines are never quoted) and, on
Discord, a closing "more in the notes" link when a quote had to be cut.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from .chunk import is_image_only
from .redact import scrub
from .messages import STRINGS, strings  # noqa: F401 (importable from here too)
from .retrieve import Passage, Result

ELLIPSIS = "…"
TERMINAL_LINES = 12
JSON_LINES = 40

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


_UNSAFE_IN_TERMINAL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def to_text(result: Result, max_lines: int = TERMINAL_LINES) -> str:
    """A terminal answer: each passage quoted with its heading path and link."""
    ui = strings(result.korean)
    if not result.answered:
        out = [ui["not_found"]]
        if result.suggestions:
            out.append(ui["suggest"])
            out += [f"  - {terminal_safe(s.heading)}\n    {s.url}" for s in result.suggestions]
        return "\n".join(out)
    blocks = []
    for p in result.passages:
        quoted = "\n".join(f"  │ {terminal_safe(line)}" for line in quote_lines(p, max_lines))
        blocks.append(f"[{p.rank}] {terminal_safe(p.heading)}\n{quoted}\n  {p.url}")
    return "\n\n".join(blocks)


def terminal_safe(text: str) -> str:
    """Note text as a terminal shows it harmlessly: control characters (escape sequences
    that set the title, clear the screen or write the clipboard) and bidirectional
    overrides written out as `\\x1b`, `\\u202e`, never sent as they are."""
    return _UNSAFE_IN_TERMINAL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


# ---------------------------------------------------------------- Discord
# Discord's documented message limits, in characters. Sizes are measured in
# UTF-16 code units, never fewer than Python's len(), so what fits here fits there.
CONTENT_MAX = 2000
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
EMBED_TOTAL_MAX = 6000
EMBEDS_MAX = 10
THREAD_NAME_MAX = 100
DISCORD_LINES = JSON_LINES  # lines per passage before the character budget applies
PASSAGE_CHARS = 1500  # a quote, not a wall of text: the rest is one click away
MIN_QUOTE_CHARS = 300  # below this share a lower-ranked passage is left out
FENCE = "```"
ANSWERED_COLOUR = 0x3BA55D
NOT_FOUND_COLOUR = 0x99AAB5
_URL = re.compile(r"https?://[^\s<>\[\]]+")
_HEADING = re.compile(r"(?:#{1,3}|-#)\s")
# Brackets in a link's label let Discord end it early, at a "](" of the label's own
# (escapes do not stop that): a heading made a link shows them as full-width brackets.
_LABEL_SAFE = str.maketrans("[]", "［］")
_MASKED = (r"(?P<bang>!?)\[(?P<label>[^\[\]]*)\]\(\s*<?(?P<url>(?i:https?)://(?:[^\s()<>]|\([^\s()<>]*\))+)>?"
           r"(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
_BRACKET = re.compile(r"\\.|\[")
_LINK_AT = re.compile(_MASKED)
_TICKS = re.compile(r"`+")
_SPECIAL = re.compile(r"[\\`\[]")  # where Discord's reading of a note line can change
_TICK_OR_ESCAPE = re.compile(r"[\\`]")


@dataclass
class EmbedSpec:
    """One Discord embed as plain data; the bot turns it into a discord.Embed."""

    title: str
    description: str = ""
    url: str = ""
    footer: str = ""
    colour: int = ANSWERED_COLOUR
    fields: list[tuple[str, str]] = field(default_factory=list)

    def size(self) -> int:
        """What Discord counts towards the 6000-character total of a message's embeds."""
        return (size(self.title) + size(self.description) + size(self.footer)
                + sum(size(name) + size(value) for name, value in self.fields))


@dataclass
class DiscordReply:
    """A whole Discord answer: message content plus embeds, within Discord's limits."""

    content: str
    embeds: list[EmbedSpec]


def size(text: str) -> int:
    """Length as Discord counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def discord_reply(result: Result, *, echo_question: bool = False,
                  passage_chars: int = PASSAGE_CHARS) -> DiscordReply:
    """The Discord message for a Result: one embed per passage (heading path as
    title, linked to the exact lines; the quoted lines; file and lines in the
    footer), or a "not in the notes" embed listing the nearest sections.
    `echo_question` repeats the question in the content (for /ask, whose
    question is not otherwise visible); a follow-up says what it was read with."""
    ui = strings(result.korean)
    content = quote_question(result.question) if echo_question else ""
    if result.context:
        content = "\n".join(filter(None, [ui["follow_up"], quote_question(result.context), content]))
    if result.changed and result.answered:
        files = cut_words(", ".join(result.changed), 200).translate(_LABEL_SAFE)
        content = "\n".join(filter(None, [content, ui["changed"].format(files=plain_markdown(files))]))
    if not result.answered:
        return DiscordReply(content, [_not_found_embed(result, ui)])
    return DiscordReply(content, _passage_embeds(result.passages[:EMBEDS_MAX], ui, passage_chars))


def quote_question(question: str, limit: int = CONTENT_MAX // 2) -> str:
    """The question as one quoted line of at most `limit` characters, shown as
    typed: no masked link, no heading, links wrapped in <…> (no preview). The token is
    masked first: wrapping a link could split it from a character of its own."""
    text = " ".join(scrub(question).split())
    quoted = "> " + plain_markdown(text)
    while size(quoted) > limit:  # cut the words, not the escapes made for them
        text = cut_words(text, max(0, size(text) - (size(quoted) - limit)))
        quoted = "> " + plain_markdown(text)
    return quoted


def plain_markdown(text: str) -> str:
    """`text` that Discord shows as written: brackets (and backslashes) escaped so
    no `[label](url)` can hide where it leads, a leading heading marker escaped,
    bare links wrapped in <…>, ending before closing punctuation or an unmatched ")"."""
    out, last = [], 0
    for match in _URL.finditer(text):
        url = _url_only(match.group(0))
        out.append(_escape(text[last:match.start()]) + f"<{url}>")
        last = match.start() + len(url)
    out.append(_escape(text[last:]))
    plain = "".join(out)
    return "\\" + plain if _HEADING.match(plain) else plain


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")


def _url_only(url: str) -> str:
    """A link found in running text, without the punctuation that follows it."""
    while url:
        if url[-1] in ".,;:!?'\"*_~":
            url = url[:-1]
        elif url[-1] == ")" and url.count(")") > url.count("("):
            url = url[:-1]
        else:
            break
    return url


def show_link_targets(lines: list[str]) -> list[str]:
    """Quoted note lines with every `[label](https://…)` turned into
    `\\[label\\](<https://…>)`: Discord then shows the line as written, the
    destination visible, instead of a link whose target is hidden. Code (blocks
    and inline spans) is shown literally by Discord and left alone. The lines are
    read as one text, left to right as Discord reads them, so three backticks
    inside an inline span or after an escaped backtick open no block."""
    return _links_outside_code("\n".join(lines)).split("\n")


def _links_outside_code(text: str) -> str:
    """The text with no `[` Discord could open a link with: masked links shown with their
    destination, every other unescaped `[` escaped (Discord shows `\\[` as `[`). Read in
    Discord's order, left to right: an escape, a code block (to the next ```, left as
    written), an inline code span (literal), a masked link. One pass (a regex for code
    spans took minutes on a line of a few thousand backticks)."""
    out, i, absent = [], 0, {}
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i:i + 2])
            i += 2
        elif text.startswith(FENCE, i) and (close := text.find(FENCE, i + len(FENCE) + 1)) >= 0:
            out.append(text[i:close + len(FENCE)])
            i = close + len(FENCE)
        elif ch == "`":
            run = _TICKS.match(text, i).end()
            end = _code_end(text, run, run - i, absent)
            code = text[i:end or run]
            out.append(_BRACKET.sub(lambda m: "\\[" if m.group(0) == "[" else m.group(0), code)
                       if end and "\n" in code else code)  # a cut between its lines would end it early
            i = end or run
        elif ch == "[":
            link = _LINK_AT.match(text, i)
            out.append(f"\\[{link['label']}\\](<{link['url']}>)" if link else "\\[")
            i = link.end() if link else i + 1
        else:  # plain text up to the next special character (a lone "\\" at the very end is plain too)
            nxt = _SPECIAL.search(text, i + 1)
            j = nxt.start() if nxt else len(text)
            out.append(text[i:j])
            i = j
    return "".join(out)


def _code_end(text: str, start: int, ticks: int, absent: dict[int, int]) -> int | None:
    """Where an inline code span opened by `ticks` backticks ending at `start` ends (after
    a run of exactly as many), or None when none follows (the backticks are then text).
    `absent` remembers, per length, from where on no such run exists."""
    if absent.get(ticks, len(text) + 1) <= start:
        return None
    closer = _closer(ticks).search(text, start)
    if closer is None:
        absent[ticks] = start
        return None
    return closer.end()


@functools.lru_cache(maxsize=64)
def _closer(ticks: int) -> re.Pattern[str]:
    return re.compile(rf"(?<!`)`{{{ticks}}}(?!`)")


def fit_lines(lines: list[str], limit: int, more: str) -> str:
    """`lines` joined, in at most `limit` characters, code fences balanced.

    When they do not all fit: the most whole lines from the top that do not end
    inside a code fence, then `more` on a line of its own. If every prefix that
    fits ends inside a fence opened at the top, the fence is closed instead. A
    first line longer than the limit is cut at a space, never mid-word."""
    text = _close_fence("\n".join(lines))
    if size(text) <= limit:
        return text
    room = limit - size(more) - 1
    if room <= len(FENCE) + 1:  # no room for the link to the rest: as much of the first line as fits
        return _close_fence(_links_outside_code(cut_words(lines[0], limit - 1 - len(FENCE)))) if lines else ""
    kept: list[str] = []
    used = best = 0
    for line in lines:
        cost = size(line) + (1 if kept else 0)
        if used + cost > room:
            break
        kept.append(line)
        used += cost
        if not _open_block("\n".join(kept)):
            best = len(kept)
    if best:
        body = "\n".join(lines[:best])
    else:
        while kept and used + 1 + len(FENCE) > room:
            used -= size(kept.pop()) + (1 if kept else 0)
        body = "\n".join(kept + [FENCE]) if kept else ""
    if not body and lines:  # a cut can drop the backtick that kept a link in code: read the cut line again
        body = _close_fence(_links_outside_code(cut_words(lines[0], room - 1 - len(FENCE))))
    return f"{body}\n{more}" if body else more


def thread_name(question: str) -> str:
    """The name of a thread the bot opens for a question: the question, cut between words."""
    return cut_words(question, THREAD_NAME_MAX) or "okdbot"


def cut_words(text: str, limit: int) -> str:
    """At most `limit` characters of `text`, cut at a space when there is one. The token is
    masked first: a cut through it would leave most of it for the masking to miss."""
    text = scrub(text)
    if size(text) <= limit:
        return text
    if limit <= 0:
        return ""
    head = text[:limit]
    while size(head) > limit:
        head = head[:-1]
    if not text[len(head)].isspace():
        space = max(head.rfind(" "), head.rfind("\t"))
        if space > 0:
            head = head[:space]
    return head.rstrip()


def _close_fence(text: str) -> str:
    return f"{text}\n{FENCE}" if _open_block(text) else text


def _open_block(text: str) -> bool:
    """Whether `text` ends inside a code block, read as Discord reads it (and as
    _links_outside_code does): escapes and inline code spans first, so three backticks
    in an inline span open nothing."""
    i, absent = 0, {}
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text.startswith(FENCE, i):
            close = text.find(FENCE, i + len(FENCE) + 1)
            if close < 0:
                return True
            i = close + len(FENCE)
        elif text[i] == "`":
            run = _TICKS.match(text, i).end()
            i = _code_end(text, run, run - i, absent) or run
        else:
            nxt = _TICK_OR_ESCAPE.search(text, i + 1)
            i = nxt.start() if nxt else len(text)
    return False


def _passage_embeds(passages: list[Passage], ui: dict[str, str], passage_chars: int) -> list[EmbedSpec]:
    cap = min(passage_chars, DESCRIPTION_MAX)
    all_embeds = [EmbedSpec(title=short_heading(p.heading, TITLE_MAX), url=_web(p.url),
                            footer=cut_words(f"{ui['source']}: {p.file} · L{p.start_line}-L{p.end_line}", FOOTER_MAX))
                  for p in passages]
    all_quotes = [show_link_targets(quote_lines(p, DISCORD_LINES)) for p in passages]  # once: it reads every line
    all_wanted = [size(_close_fence("\n".join(q))) for q in all_quotes]
    while True:
        n = len(passages)
        embeds, quotes, wanted = all_embeds[:n], all_quotes[:n], all_wanted[:n]
        room = EMBED_TOTAL_MAX - sum(e.size() for e in embeds)
        budgets = _share(wanted, room, cap)
        # each quote fits whole, or its share holds MIN_QUOTE_CHARS besides the link to the rest
        if len(passages) == 1 or all(b >= w or b >= MIN_QUOTE_CHARS + size(_more(ui, p)) + 1
                                     for b, w, p in zip(budgets, wanted, passages)):
            break
        passages = passages[:-1]
    for embed, passage, quote, budget in zip(embeds, passages, quotes, budgets):
        embed.description = fit_lines(quote, budget, _more(ui, passage))
    return embeds


def _more(ui: dict[str, str], passage: Passage) -> str:
    """The line that ends a cut quote: a link to the rest of the passage (words only
    when the notes have no web address)."""
    return f"{ELLIPSIS} [{ui['more']}]({passage.url})" if _web(passage.url) else f"{ELLIPSIS} {ui['more']}"


def _web(url: str) -> str:
    """`url` if Discord can link it (http or https), else "": a source without `url:` links
    its notes as file:// addresses, which Discord refuses and which name the server's folders."""
    return url if url[:8].lower().startswith(("http://", "https://")) else ""


def _share(wanted: list[int], total: int, cap: int) -> list[int]:
    """Split `total` characters between quotes: short ones take what they need,
    the others share the rest equally, none above `cap`."""
    out = [0] * len(wanted)
    left = total
    for n, i in enumerate(sorted(range(len(wanted)), key=lambda i: wanted[i])):
        out[i] = min(wanted[i], cap, left // (len(wanted) - n))
        left -= out[i]
    return out


def _not_found_embed(result: Result, ui: dict[str, str]) -> EmbedSpec:
    embed = EmbedSpec(title=ui["not_found"], colour=NOT_FOUND_COLOUR)
    value = ""
    for s in result.suggestions:
        label = short_heading(s.heading, 120).translate(_LABEL_SAFE)
        line = f"- [{label}]({s.url})" if _web(s.url) else f"- {label}"
        if size(value) + size(line) + 1 > FIELD_VALUE_MAX:
            break
        value = f"{value}\n{line}" if value else line
    if value:
        embed.fields.append((ui["suggest"], value))
    return embed


def short_heading(heading: str, limit: int) -> str:
    """A heading path in at most `limit` characters, keeping its most specific end."""
    if size(heading) <= limit:
        return heading
    parts = heading.split(" > ")
    for i in range(1, len(parts)):
        text = " > ".join([ELLIPSIS, *parts[i:]])
        if size(text) <= limit:
            return text
    return cut_words(parts[-1], limit)


def answer_log_line(result: Result, latency_ms: float) -> str:
    """The one INFO line an operator sees per answer. Never the question's text
    (log that separately at DEBUG): its length, language, how long it took,
    how many passages, the best fused score and the index generation."""
    return (f"answer q_chars={len(result.question)} lang={'ko' if result.korean else 'en'} "
            f"latency_ms={latency_ms:.0f} hits={len(result.passages)} "
            f"answered={'yes' if result.answered else 'no'} top_score={result.top_score:.3f} "
            f"generation={result.generation or '-'}")
