"""What the bot echoes and relays is shown as written: invisible characters
cannot hide a term, and neither a question nor a note can post a link whose
destination is hidden. Real discord.py on simcord, judged on the recorded
payloads; real index and model (the fixtures of test_discord)."""

from __future__ import annotations

import json
import re

import pytest
import simcord

from okdbot.results import Result, Suggestion
from okdbot.retrieve import Retriever

from .conftest import indexed_copy
from .discord_limits import assert_within_limits
from .test_discord import (RELEASE_LINK, World, bot_settings, make_bot, notes, retriever, settings,  # noqa: F401
                           simcord_bot, world)

SIMCORD_TOKEN = "simcord.fake.token"  # what simcord logs the bot in with

MASKED_LINK = re.compile(r"(?<!\\)\[[^\]]*(?<!\\)\]\(")  # what Discord renders as [label](url)


def sent_bodies(world: World) -> list[dict]:
    """The bodies of the answers the bot posted: /ask follow-ups and channel messages."""
    return [r.json for r in world.env.http_requests
            if r.method == "POST" and (r.path.startswith("/webhooks/") or r.path.endswith("/messages")) and r.json]


async def test_zero_width_characters_do_not_hide_a_term(world):
    result = await world.alice.slash(world.channel, "ask", question="Sko\u200bpeo가 뭐야?")
    (body,) = sent_bodies(world)
    assert body["content"] == "> Skopeo가 뭐야?"
    assert body["embeds"][0]["description"].startswith("- Skopeo : 컨테이너 이미지")
    assert result.response.embeds[0].title.endswith("OKD4 구성 오픈소스")


async def test_control_and_invisible_characters_are_neither_searched_nor_echoed(world):
    await world.bob.send(world.channel, f"{world.env.bot.user.mention} Pod\u2060man\x00\u200d이 뭐야?\u202e")
    reply = world.channel.last_message
    assert "- Podman : 컨테이너를 관리하는 도구로" in reply.embeds[0].description
    result = await world.alice.slash(world.channel, "ask", question="What\x07 is\u200b \ufeffTekton?")
    assert result.response.content == "> What is Tekton?"


async def test_a_masked_link_in_a_question_is_not_rendered_as_a_link(world):
    question = "[free nitro](https://evil.example/gift) Skopeo가 뭐야? (see https://docs.okd.io/latest)"
    await world.alice.slash(world.channel, "ask", question=question)
    (body,) = sent_bodies(world)
    assert body["content"] == ("> \\[free nitro\\](<https://evil.example/gift>) Skopeo가 뭐야? "
                               "(see <https://docs.okd.io/latest>)")  # both destinations visible, ")" kept out
    assert not MASKED_LINK.search(body["content"])
    assert_within_limits(body)


async def test_a_masked_link_in_a_note_shows_its_destination(world, notes):
    result = await world.alice.slash(world.channel, "ask", question="Where are the OKD release notes published?")
    (body,) = sent_bodies(world)
    description = body["embeds"][0]["description"]
    source = (notes.sources[0].path / "team.md").read_text(encoding="utf-8").split("\n")
    line = next(n for n, text in enumerate(source, 1) if RELEASE_LINK in text)
    assert result.response.embeds[0].url.endswith(f"team.md?plain=1#L{line}-L{line}")
    assert description == ("- Release notes of every OKD version are published on "
                           "\\[the release page\\](<https://evil.example/okd-releases>)")
    assert not MASKED_LINK.search(description)


# Discord's own reading of a link (simple-markdown's rules, tried left to right at each
# position): an escape, an inline code span, else a `[label](url)` rendered as a link.
_DISCORD_ESCAPE = re.compile(r"\\[^0-9A-Za-z\s]")
_DISCORD_CODE = re.compile(r"(`+)[\s\S]*?[^`]\1(?!`)")
_DISCORD_LINK = re.compile(r"\[((?:\[[^\]]*\]|[^\[\]]|\](?=[^\[]*\]))*)\]\(\s*<?((?:\([^)]*\)|[^\s\\])*?)>?"
                           r"(?:\s+['\"][\s\S]*?['\"])?\s*\)")


def rendered_links(text: str) -> list[str]:
    """The `[label](url)` links Discord renders in `text` (outside code blocks)."""
    found, i = [], 0
    while i < len(text):
        for rule in (_DISCORD_ESCAPE, _DISCORD_CODE, _DISCORD_LINK):
            match = rule.match(text, i)
            if match:
                if rule is _DISCORD_LINK and re.match(r"(?i)https?://", match.group(2)):
                    found.append(match.group(0))
                i = match.end()
                break
        else:
            i += 1
    return found


HIDDEN_LINKS = {  # a note line → the destination that must stay visible
    "- zebra code that opens on one line `oc get": "",
    "- and closes on the next` [a](https://evil.example/h) `here`": "https://evil.example/h",
    "- zebra code label [`oc`](https://evil.example/a) here": "https://evil.example/a",
    "- zebra nested [a [b] c](https://evil.example/b) here": "https://evil.example/b",
    "- zebra escaped \\[a\\](https://evil.example/c) here": "https://evil.example/c",
    "- zebra upper case [a](HTTPS://evil.example/d) here": "HTTPS://evil.example/d",
    "- zebra escaped tick \\`[x](https://evil.example/e)` here": "https://evil.example/e",
    "- zebra spaced [a]( https://evil.example/f ) and angled [a](<https://evil.example/g>)": "https://evil.example/g",
}


@pytest.fixture(scope="module")
def zebra_notes(tmp_path_factory, bundled_index, model, analyzer):
    """The bundled note plus one section of masked links in every form, and the bot's token."""
    note = "\n".join(["# Zebra", "", "## Zebra hostile links", *HIDDEN_LINKS, "",
                      "## Zebra secrets", f"- the zebra bot logs in with {SIMCORD_TOKEN} here", ""])
    settings = indexed_copy(bundled_index, tmp_path_factory.mktemp("zebra"), model, analyzer, {"zebra.md": note})
    return settings, Retriever(settings.index_dir, settings.retrieval, model, analyzer)


async def test_no_form_of_masked_link_in_a_note_hides_its_destination(zebra_notes, tmp_path):
    settings, retriever = zebra_notes
    async with simcord.run(make_bot(bot_settings(settings, tmp_path), retriever)) as env:
        w = World(env)
        result = await w.alice.slash(w.channel, "ask", question="zebra hostile links")
        description = result.response.embeds[0].description
    assert result.response.embeds[0].title == "Zebra > Zebra hostile links"
    assert rendered_links(description) == [], description
    for shown, (line, url) in zip(description.split("\n"), HIDDEN_LINKS.items(), strict=True):
        assert url in shown, (line, shown)
    assert rendered_links(f"[a](<{SIMCORD_TOKEN}>) \\\\[a](https://x.example)") == ["[a](https://x.example)"]


async def test_the_bot_token_is_never_posted_from_a_note_or_a_question(zebra_notes, tmp_path, quiet_loggers):
    settings, retriever = zebra_notes
    async with simcord.run(make_bot(bot_settings(settings, tmp_path, threads=True), retriever)) as env:
        w = World(env)
        result = await w.alice.slash(w.channel, "ask", question=f"what does the zebra bot log in with? {SIMCORD_TOKEN}")
        await w.bob.send(w.channel, f"{env.bot.user.mention} zebra bot log in {SIMCORD_TOKEN}")
        sent = [json.dumps(r.json, ensure_ascii=False) for r in env.http_requests if r.json]
    assert result.response.content == "> what does the zebra bot log in with? <token>"
    assert result.response.embeds[0].description == "- the zebra bot logs in with <token> here"
    assert any('"name": "what does the zebra bot log in with? <token>"' in body for body in sent)  # the thread
    assert not [body for body in sent if SIMCORD_TOKEN in body]


class Declining:
    """Declines every question, suggesting sections whose headings hold link syntax."""

    HEADINGS = ["Zebra > x](https://evil.example/s) [y", "Zebra > [a](https://evil.example/t) b", "Zebra > c\\"]

    def search(self, question, k=None, context=""):
        return Result(question, False, [], [Suggestion(h, f"https://notes.example/zebra.md#L{n}")
                                            for n, h in enumerate(self.HEADINGS, 1)])


async def test_a_suggested_heading_cannot_turn_into_a_link_elsewhere(settings):
    async with simcord.run(make_bot(settings, Declining())) as env:
        w = World(env)
        result = await w.alice.slash(w.channel, "ask", question="zebra?")
    (field,) = result.response.embeds[0].fields
    links = rendered_links(field.value)
    assert len(links) == 3 and all("](https://notes.example/zebra.md#L" in link for link in links), field.value


def test_a_line_of_thousands_of_backticks_is_shown_as_text_and_its_links_visible():
    """Code spans were found with a regex whose time grew with the cube of a backtick run:
    one note line of 2000 backticks held the bot (and its event loop) for about 30 s; this
    line would hold it for hours. The backticks pair with nothing, so they are shown as text."""
    from okdbot.answer import show_link_targets

    assert show_link_targets(["see " + "`" * 20000 + " [x](https://e.example)"]) == \
        ["see " + "`" * 20000 + " \\[x\\](<https://e.example>)"]


def test_no_cut_or_closing_fence_lets_a_masked_link_out_of_code():
    from okdbot.answer import fit_lines, show_link_targets

    # a first line too long for the quote is cut: its closing backtick (what kept the link code) goes
    line = "`[click here](https://evil.example/x) " + "word " * 900 + "end`"
    cut = fit_lines(show_link_targets([line]), 4000, "… more")
    assert "[click here](https://evil.example" not in cut and "](<https://evil.example/x>)" in cut
    # after a closing fence, the rest of its line is Markdown again
    closing = show_link_targets(["```", "code", "``` see [docs](https://evil.example)"])[-1]
    assert closing == "``` see \\[docs\\](<https://evil.example>)"


def test_a_token_cut_in_two_is_still_masked():
    """The token was masked after cutting: a thread name or quote cut inside it posted most of it."""
    from okdbot.answer import fit_lines, thread_name
    from okdbot.redact import add_secret, forget_secrets

    token = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789A"
    add_secret(token)
    try:
        name = thread_name("https://paste.example/view?key=" + token)
        quote = fit_lines(["x" * 1440 + token], 1500, "… more")
        assert all(token[:20] not in text and "<token>" in text for text in (name, quote))
    finally:
        forget_secrets()


async def test_a_token_cut_by_the_follow_up_context_is_never_echoed(world, quiet_loggers):
    """The 300 characters of conversation a follow-up is read with can start inside the
    token: the rest of it must not be echoed ("Read as a follow-up to: > …")."""
    first = f"{SIMCORD_TOKEN} " + "a" * 275 + " Skopeo?"  # 302 characters: the last 300 cut into the token
    await world.bob.send(world.channel, f"{world.env.bot.user.mention} {first}")
    earlier = world.channel.last_message
    await world.bob.send(world.channel, f"{world.env.bot.user.mention} Podman은?", reply_to=earlier)
    sent = [json.dumps(r.json, ensure_ascii=False) for r in world.env.http_requests if r.json]
    assert not [body for body in sent if "fake.token" in body]
    follow_up = world.channel.last_message.content
    assert "\n> aaaa" in follow_up or "<token>" in follow_up  # starts between words, not mid-token


async def test_a_token_ending_in_an_underscore_inside_a_link_is_masked(world, quiet_loggers):
    """A token may end in "_": the echo must mask it before it separates the link from
    the underscore that follows it."""
    from okdbot.redact import add_secret

    token = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.abcdefghijklmnopqrstuvwxyz012345678_"
    add_secret(token)  # as the bot does with its own token at login
    await world.alice.slash(world.channel, "ask", question=f"is this safe? https://paste.example/{token}")
    sent = [json.dumps(r.json, ensure_ascii=False) for r in world.env.http_requests if r.json]
    assert not [body for body in sent if token[:-1] in body]


@pytest.mark.parametrize("lines", [
    ["- the fence marker is written `a ``` b` in inline code", "- [release notes](https://evil.example/x) here"],
    ["- an escaped \\``` is no fence", "- [release notes](https://evil.example/y) here"],
    ["```", "code [kept](https://code.example) as written", "```", "- [release notes](https://evil.example/z)"],
])
def test_a_fence_marker_is_read_as_discord_reads_it(lines):
    """Three backticks inside inline code, or after an escaped backtick, open no code block:
    a masked link on the next line must still show its destination."""
    from okdbot.answer import show_link_targets

    shown = "\n".join(show_link_targets(lines))
    assert rendered_links(shown) == [], shown
    assert "evil.example" in shown and len(shown.split("\n")) == len(lines)
    if "code.example" in lines[1]:
        assert shown.split("\n")[1] == lines[1]  # inside a real code block, nothing is changed


def test_a_cut_through_a_code_block_opened_after_inline_backticks_closes_it():
    """The layout counted ``` per line while the reading of links follows Discord: a line
    holding an inline ``` and then a real opener looked balanced, so a cut left the block
    open and the link inside it (kept as written, being code) rendered as a hidden link."""
    from okdbot.answer import discord_reply
    from okdbot.results import Line, Passage, Result

    lines = ["To show a fence inline write `` ``` ``; a block opens with ```",
             "[docs](https://evil.example/steal)"] + ["line of the block %d " % i + "x" * 60 for i in range(30)] + ["```"]
    p = Passage(1, 1.0, "s", "a.md", "Fences", 1, len(lines), "https://example.org/a.md#L1-L33",
                [Line(i + 1, t, True) for i, t in enumerate(lines)])
    description = discord_reply(Result("how do I write a fence?", True, [p])).embeds[0].description
    assert [link for link in rendered_links(description) if "evil.example" in link] == [], description
    inline_only = discord_reply(Result("q", True, [Passage(1, 1.0, "s", "a.md", "F", 1, 1, "https://example.org/a.md",
                                                           [Line(1, "written `` ``` `` inline", True)])]))
    assert inline_only.embeds[0].description == "written `` ``` `` inline"  # no stray fence
