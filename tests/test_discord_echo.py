"""What the bot echoes and relays is shown as written: invisible characters
cannot hide a term, and neither a question nor a note can post a link whose
destination is hidden. Real discord.py on simcord, judged on the recorded
payloads; real index and model (the fixtures of test_discord)."""

from __future__ import annotations

import re

from .discord_limits import assert_within_limits
from .test_discord import (RELEASE_LINK, World, notes, retriever, settings, simcord_bot,  # noqa: F401 (fixtures)
                           world)

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
