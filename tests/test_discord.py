"""The Discord bot end to end: the real discord.py client against simcord's
in-memory Discord, answering from a real index built with the real model.

simcord records every request the bot makes (env.http_requests); it does not
enforce allowed_mentions, so "never pings" is asserted on those payloads.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sqlite3
import threading
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import discord
import pytest
import simcord
from discord import app_commands
from simcord import interactions as sim_interactions

from okdbot.build import build_index
from okdbot.discord_bot import OkdBot
from okdbot.errors import IndexMissing
from okdbot.feedback import FeedbackStore
from okdbot.retrieve import Retriever

from .conftest import NOTE_URL, RELEASE_LINK, ROLE, settings_for, write_config  # noqa: F401
from .discord_limits import assert_within_limits

GUILD_ID = 1_100_000_000_000_000_000  # pinned: setup_hook syncs /ask to this guild
SKOPEO_KO = "컨테이너 이미지를 저장소 간에 복사하는 도구는?"
UNANSWERABLE = "오늘 점심 메뉴 추천해줘"
VOTE = re.compile(r"okdbot:vote:(up|down):(\d+)")


@pytest.fixture
def notes(discord_notes):
    """The bundled note plus the team note (conftest's team_note), indexed once per session."""
    return discord_notes


@pytest.fixture
def retriever(discord_retriever):
    return discord_retriever


def bot_settings(settings, folder: Path, **discord_options):
    options = {"guild_id": GUILD_ID, "feedback_db": folder / "feedback.sqlite", **discord_options}
    return replace(settings, discord=replace(settings.discord, **options))


def make_bot(settings, retriever, **options) -> OkdBot:
    return OkdBot(settings, feedback=FeedbackStore(settings.discord.feedback_db), retriever=retriever, **options)


@pytest.fixture
def settings(notes, tmp_path):
    return bot_settings(notes, tmp_path)


@pytest.fixture
def simcord_bot(settings, retriever):  # used by simcord's `simcord_env` fixture
    return make_bot(settings, retriever)


class World:
    def __init__(self, env: simcord.Env):
        self.env = env
        self.guild = env.create_guild("okd", id=GUILD_ID)
        self.channel = self.guild.create_text_channel("okd-study")
        self.alice = self.guild.add_member(env.create_user("alice"))
        self.bob = self.guild.add_member(env.create_user("bob"))

    def requests(self, method: str, pattern: str) -> list:
        return [r for r in self.env.http_requests if r.method == method and re.search(pattern, r.path)]

    def bot_messages(self) -> list[discord.Message]:
        return [m for m in self.channel.history() if m.author.id == self.env.bot.user.id]


@pytest.fixture
def world(simcord_env) -> World:
    return World(simcord_env)


def stored_answers(settings) -> list[tuple[str, str]]:
    """(question, index generation) of every answer the bot recorded."""
    with closing(sqlite3.connect(settings.discord.feedback_db)) as db:
        return db.execute("SELECT question, generation FROM answers ORDER BY id").fetchall()


def vote_ids(message) -> list[str]:
    rows = message.components
    return [c["custom_id"] if isinstance(c, dict) else c.custom_id
            for row in rows for c in (row["components"] if isinstance(row, dict) else row.children)]


def assert_quotes_the_notes(embed: discord.Embed, notes_folder: Path) -> None:
    """Every shown line is a line of the linked note within the linked range."""
    m = re.search(r"docs/(.+?)\?plain=1#L(\d+)-L(\d+)$", embed.url)
    assert m, embed.url
    lines = (notes_folder / m.group(1)).read_text(encoding="utf-8").split("\n")[int(m.group(2)) - 1:int(m.group(3))]
    for line in embed.description.split("\n"):
        assert line in lines or line == "…" or line.startswith("… ["), line


# ---------------------------------------------------------------- /ask


async def test_ask_in_korean_quotes_the_line_with_a_link_to_it(world, notes):
    result = await world.alice.slash(world.channel, "ask", question=SKOPEO_KO)

    callbacks = world.requests("POST", r"^/interactions/.*/callback$")
    followups = world.requests("POST", r"^/webhooks/")
    assert [c.json for c in callbacks] == [{"type": 5}]  # deferred ("thinking…") first
    assert world.env.http_requests.index(callbacks[0]) < world.env.http_requests.index(followups[0])
    message = result.response
    assert message.content == f"> {SKOPEO_KO}"
    top = message.embeds[0]
    assert top.title.endswith("OKD4 구성 오픈소스")
    end = int(top.url.rsplit("-L", 1)[1])
    assert top.url == f"{NOTE_URL}Day26.md?plain=1#L29-L{end}" and end - 29 < 3
    assert top.description.startswith("- Skopeo : 컨테이너 이미지 간에 이미지를 복사하고 검사하며 여러 저장소 간에 이미지를 전송하는 데 사용되는 명령줄 도구")
    assert top.footer.text == f"출처: Day26.md · L29-L{end}"
    for embed in message.embeds:
        assert_quotes_the_notes(embed, notes.sources[0].path)
    assert [v.split(":")[2] for v in vote_ids(message)] == ["up", "down"]
    (body,) = [f.json for f in followups]
    assert body["allowed_mentions"] == {"parse": []}
    assert_within_limits(body)


async def test_ask_in_english_gets_english_ui(world, notes):
    result = await world.bob.slash(world.channel, "ask", question="What does Tekton do?")
    top = result.response.embeds[0]
    assert "- Tekton : Kubernetes환경에서 사용되는 오픈 소스의 CI/CD 프레임워크" in top.description
    assert top.footer.text.startswith("Source: Day26.md")
    assert_quotes_the_notes(top, notes.sources[0].path)


async def test_a_question_the_notes_cannot_answer_says_so_and_suggests_sections(world):
    result = await world.alice.slash(world.channel, "ask", question=UNANSWERABLE)
    (embed,) = result.response.embeds
    assert embed.title == "노트에서 이 내용을 찾지 못했습니다."
    assert not embed.description
    (field,) = embed.fields
    assert field.name == "가까운 섹션:"
    links = re.findall(r"\]\((https://\S+)\)", field.value)
    assert 1 <= len(links) <= 3 and all(re.search(r"\.md\?plain=1#L\d+-L\d+$", u) for u in links)
    assert len(vote_ids(result.response)) == 2  # a 👎 here tells maintainers what the notes lack


async def test_a_4000_character_answer_is_trimmed_within_discord_limits(world, notes):
    result = await world.alice.slash(world.channel, "ask", question="What is the upgrade checklist?")

    top = result.response.embeds[0]
    start, end = map(int, re.search(r"#L(\d+)-L(\d+)$", top.url).groups())
    source = (notes.sources[0].path / "team.md").read_text(encoding="utf-8").split("\n")[start - 1:end]
    assert len("\n".join(source)) >= 4000 and "  ```sh" in source
    shown = top.description.split("\n")
    assert shown[-1] == f"… [More in the notes]({top.url})"
    assert shown[:-1] == source[:len(shown) - 1]  # whole lines from the top
    assert "```" not in top.description  # the fence did not fit, so the cut came before it
    (body,) = [f.json for f in world.requests("POST", r"^/webhooks/")]
    assert_within_limits(body)


async def test_everyone_in_a_quoted_note_is_shown_but_pings_nobody(world):
    result = await world.alice.slash(world.channel, "ask", question="How are maintenance windows announced? @everyone")
    assert "announced to @everyone and @here" in result.response.embeds[0].description
    assert "@everyone" in result.response.content
    (body,) = [f.json for f in world.requests("POST", r"^/webhooks/")]
    assert body["allowed_mentions"] == {"parse": []}

    await world.bob.send(world.channel, f"{world.env.bot.user.mention} 점검 공지는 어떻게 알려?")
    reply = world.channel.last_message
    assert f"점검 공지는 @everyone 멘션과 {ROLE} 역할 멘션으로 알린다" in reply.embeds[0].description
    (post,) = world.requests("POST", rf"^/channels/{world.channel.id}/messages$")
    assert post.json["allowed_mentions"]["parse"] == []
    assert not post.json["allowed_mentions"].get("replied_user")


# ------------------------------------------------------- mentions, replies


async def test_a_mention_is_answered_in_a_reply_without_the_message_content_intent(world):
    assert world.env.bot.intents.message_content is False
    not_commands = []

    async def on_command_error(ctx, error):
        not_commands.append(error)

    world.env.bot.add_listener(on_command_error)
    sent = await world.alice.send(world.channel, f"{world.env.bot.user.mention} 데몬 없이 루트 권한 없이도 컨테이너를 다루는 도구가 뭐야?")
    reply = world.channel.last_message
    assert reply.author.id == world.env.bot.user.id and reply.reference.message_id == sent.id
    assert "- Podman : 컨테이너를 관리하는 도구로" in reply.embeds[0].description
    assert reply.embeds[0].footer.text.startswith("출처")
    assert len(vote_ids(reply)) == 2
    assert not_commands == []  # a mention is a question, never looked up as a prefix command


async def test_a_reply_to_an_answer_asks_a_follow_up(world):
    await world.alice.send(world.channel, f"{world.env.bot.user.mention} Skopeo가 뭐야?")
    first = world.channel.last_message
    follow = await world.alice.send(world.channel, "이미지를 빌드하는 명령줄 도구는?", reply_to=first)
    answer = world.channel.last_message
    assert answer.author.id == world.env.bot.user.id and answer.reference.message_id == follow.id
    assert "- Buildah : 컨테이너 이미지를 빌드하기 위한 명령줄 도구" in answer.embeds[0].description


async def test_a_follow_up_is_read_with_the_questions_it_replies_to(world, settings):
    await world.alice.send(world.channel, f"{world.env.bot.user.mention} Prometheus가 뭐야?")
    first = world.channel.last_message
    await world.alice.send(world.channel, "그거 관리하는 Operator는?", reply_to=first)
    second = world.channel.last_message
    assert "- Prometheus Operator :" in second.embeds[0].description
    assert second.content.endswith(":\n> Prometheus가 뭐야?")  # says what it was read with
    asked = await world.bob.send(world.channel, "그럼 지표는 어디로 노출해?", reply_to=second)
    third = world.channel.last_message
    assert third.reference.message_id == asked.id and third.author.id == world.env.bot.user.id
    assert third.content == "앞선 질문에 이어서 찾았습니다:\n> Prometheus가 뭐야? 그거 관리하는 Operator는?"
    assert "- Prometheus Adapter :" in third.embeds[0].description, third.embeds[0].description
    with closing(sqlite3.connect(settings.discord.feedback_db)) as db:
        asked = db.execute("SELECT context, question FROM answers ORDER BY id").fetchall()
    assert asked == [("", "Prometheus가 뭐야?"), ("Prometheus가 뭐야?", "그거 관리하는 Operator는?"),
                     ("Prometheus가 뭐야? 그거 관리하는 Operator는?", "그럼 지표는 어디로 노출해?")]


async def test_a_reply_arriving_without_its_text_gets_a_hint(world):
    """Discord withholds the text of some replies from bots without the privileged
    intent (simcord: replies to slash-command answers); the bot says how to ask."""
    result = await world.alice.slash(world.channel, "ask", question="Skopeo가 뭐야?")
    await world.alice.send(world.channel, "Podman은?", reply_to=result.response)
    assert "/ask" in world.channel.last_message.content
    assert world.channel.last_message.embeds == []


async def test_plain_messages_and_replies_to_others_are_ignored(world):
    first = await world.bob.send(world.channel, "Skopeo가 뭐야?")
    await world.alice.send(world.channel, "@okdbot 몰라", reply_to=first)
    assert world.bot_messages() == []


async def test_messages_from_bots_webhooks_and_itself_are_ignored(world, settings):
    env = world.env
    mention = env.bot.user.mention
    other = world.guild.add_member(env.create_user("otherbot", bot=True))
    await other.send(world.channel, f"{mention} Skopeo가 뭐야?")
    await world.guild.create_webhook(world.channel, "ci").send(f"{mention} Skopeo가 뭐야?")
    with env.time_context():
        await env.bot.get_channel(world.channel.id).send(f"{mention} Skopeo가 뭐야?")
    await env.settle()

    assert [m.content for m in world.bot_messages()] == [f"{mention} Skopeo가 뭐야?"]  # only its own post
    assert stored_answers(settings) == []


# --------------------------------------------------------------- cooldown


async def test_cooldown_is_per_user_and_answered_privately(world, settings):
    assert settings.discord.cooldown_rate == 3
    for _ in range(3):
        assert (await world.alice.slash(world.channel, "ask", question="Skopeo")).response.embeds
    limited = await world.alice.slash(world.channel, "ask", question=SKOPEO_KO)

    assert limited.ephemeral and limited.response.flags.ephemeral
    assert re.fullmatch(r"\d+초 후에 다시 질문해 주세요\.", limited.response.content)
    assert any("초 후에" in m.content for m in world.channel.history(viewer=world.alice))
    assert not any("초 후에" in m.content for m in world.channel.history(viewer=world.bob))
    assert (await world.bob.slash(world.channel, "ask", question="Skopeo")).response.embeds
    # the same per-user budget covers mentions
    await world.alice.send(world.channel, f"{world.env.bot.user.mention} What is Skopeo?")
    assert re.fullmatch(r"Please wait \d+s before asking again\.", world.channel.last_message.content)
    (error,) = world.env.errors  # handled in the tree's on_error; reading acknowledges it
    assert isinstance(error, app_commands.CommandOnCooldown)


# ------------------------------------------------------ channels, errors


async def test_outside_the_channel_allowlist_the_bot_stays_quiet(notes, retriever, tmp_path):
    bot = make_bot(bot_settings(notes, tmp_path, channels=(42,)), retriever)
    async with simcord.run(bot) as env:
        w = World(env)
        result = await w.alice.slash(w.channel, "ask", question=SKOPEO_KO)
        assert result.ephemeral and result.response.content == "<#42> 채널에서만 질문에 답합니다."
        await w.alice.send(w.channel, f"{env.bot.user.mention} Skopeo가 뭐야?")
        assert w.bot_messages() == []
        assert len(env.errors) == 1


class Broken:
    """A retriever that fails, to exercise error handling."""

    def search(self, question, k=None, context=""):
        raise RuntimeError("index exploded")


async def test_an_error_becomes_a_private_message_and_a_logged_traceback(settings, caplog):
    caplog.set_level(logging.DEBUG, logger="okdbot")
    async with simcord.run(make_bot(settings, Broken())) as env:
        w = World(env)
        result = await w.alice.slash(w.channel, "ask", question=SKOPEO_KO)
        private = [m for m in w.channel.history(viewer=w.alice) if m.flags.ephemeral]
        assert [m.content for m in private] == ["답변 중 문제가 생겼습니다. 관리자에게 알렸습니다."]
        assert w.bot_messages() == []  # the public "thinking…" message was removed
        assert result.acknowledged
        (error,) = env.errors
        assert isinstance(error.original, RuntimeError)

        await w.bob.send(w.channel, f"{env.bot.user.mention} What is Skopeo?")
        assert w.channel.last_message.content.startswith("Something went wrong")
    tracebacks = [r for r in caplog.records if r.exc_info and "index exploded" in str(r.exc_info[1])]
    assert len(tracebacks) == 2
    assert all("Skopeo" not in r.getMessage() and "이미지" not in r.getMessage()
               for r in caplog.records if r.levelno > logging.DEBUG)  # question text only at DEBUG
    assert any(SKOPEO_KO in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)


# ----------------------------------------------------------- fresh index


async def test_answers_are_logged_without_the_question_above_debug(world, caplog):
    caplog.set_level(logging.INFO, logger="okdbot")
    await world.alice.slash(world.channel, "ask", question=SKOPEO_KO)
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("answer ")]
    assert "via=ask" in line and "answered=yes" in line and "lang=ko" in line and "hits=" in line
    assert SKOPEO_KO not in line and "이미지" not in line


async def test_a_rebuilt_index_answers_the_next_question_without_a_restart(tmp_path, model, analyzer):
    (tmp_path / "notes").mkdir()
    note = tmp_path / "notes" / "backup.md"
    note.write_text("# Runbook\n\n## Backups\n- The etcd backup runs every night at 02:00 UTC\n", encoding="utf-8")
    write_config(tmp_path)
    base = settings_for(tmp_path)
    build_index(base, lambda: model, analyzer=analyzer)
    retriever = Retriever(base.index_dir, base.retrieval, model, analyzer)
    settings = bot_settings(base, tmp_path)

    async with simcord.run(make_bot(settings, retriever)) as env:
        w = World(env)
        before = await w.alice.slash(w.channel, "ask", question="When does the etcd backup run?")
        assert "02:00 UTC" in before.response.embeds[0].description
        note.write_text("# Runbook\n\n## Backups\n- The etcd backup runs every night at 03:30 UTC\n", encoding="utf-8")
        build_index(base, lambda: model, analyzer=analyzer)
        after = await w.bob.slash(w.channel, "ask", question="When does the etcd backup run?")
        assert "03:30 UTC" in after.response.embeds[0].description
        assert "02:00" not in after.response.embeds[0].description
    (_, first_generation), (_, second_generation) = stored_answers(settings)
    assert first_generation != second_generation == retriever.reader.name  # the same bot switched to the new generation


async def test_the_model_and_index_load_once_in_setup_hook(settings, retriever, monkeypatch):
    loads = []

    def load_retriever(s):
        loads.append(threading.current_thread().name)
        return retriever

    monkeypatch.setattr("okdbot.runtime.load_retriever", load_retriever)
    async with simcord.run(make_bot(settings, None)) as env:
        w = World(env)
        for member in (w.alice, w.bob):
            assert (await member.slash(w.channel, "ask", question="Skopeo가 뭐야?")).response.embeds
    assert len(loads) == 1 and loads[0].startswith("okdbot-retrieve")  # off the event loop


async def test_without_an_index_the_bot_stops_at_start_with_a_clear_error(settings, tmp_path):
    settings = settings.with_index(tmp_path / "no-index")
    with pytest.raises(IndexMissing, match="run `okdbot index` first"):
        async with simcord.run(make_bot(settings, None)):
            pass


# --------------------------------------------------------------- feedback


async def test_a_thumbs_down_is_stored_and_listed_by_okdbot_feedback(world, settings, notes, retriever, okdbot_cli):
    good = await world.alice.slash(world.channel, "ask", question=SKOPEO_KO)
    bad = await world.alice.slash(world.channel, "ask", question="What does Tekton do?")
    down = next(v for v in vote_ids(bad.response) if ":down:" in v)
    up = next(v for v in vote_ids(good.response) if ":up:" in v)

    click = await world.bob.click(bad.response, custom_id=down)
    assert click.modal["title"] == "What was wrong with the answer?"  # the 👎 counts even if the form is dismissed
    assert (await world.bob.click(good.response, custom_id=up)).response.content == "피드백 감사합니다!"

    folder = settings.discord.feedback_db.parent
    (folder / "okdbot.yaml").write_text(f"index: {notes.index_dir}\ndiscord:\n  feedback_db: feedback.sqlite\n",
                                        encoding="utf-8")
    proc = okdbot_cli("feedback", "--bad", "--json", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    (vote,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert vote["vote"] == "down" and vote["question"] == "What does Tekton do?"
    assert vote["generation"] == retriever.reader.name and vote["answered"] is True
    assert vote["citations"][0]["url"] == bad.response.embeds[0].url
    assert vote["answer_id"] == int(VOTE.fullmatch(down).group(2))
    everything = okdbot_cli("feedback", cwd=folder).stdout
    assert "👎" in everything and "👍" in everything and SKOPEO_KO in everything


async def test_vote_buttons_keep_working_after_a_restart(world, settings, retriever):
    answer = await world.alice.slash(world.channel, "ask", question=SKOPEO_KO)
    await world.env.restart_bot(make_bot(settings, retriever))
    down = next(v for v in vote_ids(answer.response) if ":down:" in v)
    click = await world.alice.click(answer.response, custom_id=down)
    assert click.modal["title"] == "답변에서 무엇이 잘못됐나요?"
    assert [v.question for v in FeedbackStore(settings.discord.feedback_db).votes(bad_only=True)] == [SKOPEO_KO]


# ---------------------------------------------------- sync, localisation


async def test_ask_is_synced_to_the_guild_with_a_korean_description(world):
    (put,) = world.requests("PUT", rf"/guilds/{GUILD_ID}/commands$")
    (command,) = put.json
    assert command["name"] == "ask"
    assert command["description_localizations"] == {"ko": "OKD 노트에 질문하기"}
    (option,) = command["options"]
    assert option["description_localizations"] == {"ko": "질문 내용 (한국어 또는 영어)"}
    assert (option["min_length"], option["max_length"]) == (1, 300) and option["required"]
    assert world.requests("PUT", r"^/applications/\d+/commands$") == []  # no global sync
    assert world.alice.available_commands(world.channel) == ("ask",)
    with pytest.raises(simcord.OptionError):
        await world.alice.slash(world.channel, "ask", question="x" * 301)


async def test_global_sync_happens_only_when_the_commands_changed_or_when_asked(notes, retriever, tmp_path):
    settings = bot_settings(notes, tmp_path, guild_id=None)

    def global_puts(env):
        return [r for r in env.http_requests if r.method == "PUT" and re.fullmatch(r"/applications/\d+/commands", r.path)]

    async with simcord.run(make_bot(settings, retriever)) as env:
        w = World(env)
        assert len(global_puts(env)) == 1
        assert (await w.alice.slash(w.channel, "ask", question="Skopeo가 뭐야?")).response.embeds
        await env.restart_bot(make_bot(settings, retriever))
        assert len(global_puts(env)) == 1  # unchanged since the last sync: not synced again
        assert (await w.bob.slash(w.channel, "ask", question="Skopeo가 뭐야?")).response.embeds
        await env.restart_bot(make_bot(settings, retriever, sync=True))
        assert len(global_puts(env)) == 2  # okdbot discord --sync


# ------------------------------------------------------------ concurrency


class Gated:
    """Holds every retrieval until the test opens the gate (then answers for real)."""

    def __init__(self, retriever):
        self.retriever = retriever
        self.gate = threading.Event()
        self.lock = threading.Lock()
        self.started = self.finished = 0

    def search(self, question, k=None, context=""):
        with self.lock:
            self.started += 1
        try:
            assert self.gate.wait(timeout=60), "gate never opened"
            return self.retriever.search(question, k)
        finally:
            with self.lock:
                self.finished += 1


def emit_slash(env, member, channel, name, **options) -> simcord.InteractionResult:
    """Fire one slash interaction without waiting for it to settle.

    simcord's public actor verbs settle before returning and cannot overlap, so
    this mirrors simcord.actors._slash with its (non-public) helpers."""
    root = env.backend.find_command(name, member.guild.id)
    leaf_options, _ = sim_interactions.build_options(member, name, root, options, channel_id=channel.id)
    data = {"id": root["id"], "name": root["name"], "type": 1, "options": leaf_options}
    if root.get("guild_id"):
        data["guild_id"] = root["guild_id"]
    record, payload = sim_interactions.base_payload(env.backend, type=2, channel_id=channel.id,
                                                    guild_id=member.guild.id, user_id=member.id, data=data)
    env.backend.emit("INTERACTION_CREATE", payload)
    return simcord.InteractionResult(env, record)


async def test_50_concurrent_asks_are_all_deferred_before_the_first_retrieval_finishes(settings, retriever):
    gated = Gated(retriever)
    async with simcord.run(make_bot(settings, gated)) as env:
        w = World(env)
        members = [w.guild.add_member(env.create_user(f"user{i}")) for i in range(50)]
        questions = ["Skopeo가 뭐야?", "What does Tekton do?", UNANSWERABLE]
        try:
            results = [emit_slash(env, m, w.channel, "ask", question=questions[i % 3]) for i, m in enumerate(members)]
            for _ in range(5000):
                if all(r.deferred for r in results):
                    break
                await asyncio.sleep(0.001)
            deferred = sum(r.deferred for r in results)
            started, finished = gated.started, gated.finished
        finally:
            gated.gate.set()
        assert deferred == 50 and finished == 0
        assert 1 <= started <= env.bot.workers  # a bounded pool: the rest wait their turn
        await env.settle(timeout=60)
        assert gated.finished == 50
        assert all(r.response is not None and r.response.embeds for r in results)


async def test_forwarding_an_answer_is_not_a_question(world):
    """A forward carries a reference to the message it forwards, and no text of its own."""
    await world.alice.send(world.channel, f"{world.env.bot.user.mention} Skopeo가 뭐야?")
    answer = world.channel.last_message
    posted = len(world.bot_messages())
    elsewhere = world.guild.create_text_channel("share")
    await world.bob.forward(answer, world.channel)
    await world.bob.forward(answer, elsewhere)
    assert len(world.bot_messages()) == posted
    assert all(m.author.id != world.env.bot.user.id for m in elsewhere.history())


async def test_a_reply_to_an_answer_meant_for_someone_else_is_left_alone(world):
    result = await world.alice.slash(world.channel, "ask", question="Skopeo가 뭐야?")
    await world.bob.send(world.channel, f"{world.alice.mention} 이거 다음 주 스터디에서 같이 봐요",
                         reply_to=result.response)
    assert world.channel.last_message.author.id == world.bob.id


async def test_the_hint_for_a_reply_without_its_text_speaks_the_language_of_the_answer(world):
    result = await world.alice.slash(world.channel, "ask", question="Skopeo가 뭐야?")
    await world.alice.send(world.channel, "Podman은?", reply_to=result.response)
    hint = world.channel.last_message.content
    assert "/ask" in hint and any("\uac00" <= ch <= "\ud7a3" for ch in hint)


async def test_a_user_asking_too_fast_by_mention_is_told_once_per_cooldown(world):
    for i in range(8):
        await world.alice.send(world.channel, f"{world.env.bot.user.mention} Skopeo {i}?")
    answers = [m for m in world.bot_messages() if m.embeds]
    notes = [m for m in world.bot_messages() if not m.embeds]
    assert len(answers) == 3 and len(notes) == 1


async def test_notes_without_a_web_address_are_quoted_without_links_discord_would_refuse(tmp_path, model, analyzer):
    """A source without `url:` links its lines as file:// addresses. Discord accepts only
    http(s) in an embed's url (400 otherwise), and a file path is the server's business:
    the bot quotes the lines, names file and lines in the footer, and links nothing."""
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "backup.md").write_text(
        "# Runbook\n\n## Backups\n" + "".join(f"- The etcd backup step {i} runs every night at 02:00 UTC\n"
                                              for i in range(60)), encoding="utf-8")
    (tmp_path / "okdbot.yaml").write_text("sources:\n  - name: notes\n    path: notes\nindex: index\n", encoding="utf-8")
    base = settings_for(tmp_path)
    build_index(base, lambda: model, analyzer=analyzer)
    retriever = Retriever(base.index_dir, base.retrieval, model, analyzer)
    async with simcord.run(make_bot(bot_settings(base, tmp_path), retriever)) as env:
        w = World(env)
        await w.alice.slash(w.channel, "ask", question="When does the etcd backup run?")
        await w.alice.slash(w.channel, "ask", question="zzqx wvvk plorf?")  # declined: sections are suggested
        bodies = [json.dumps(r.json) for r in env.http_requests if r.method == "POST" and r.path.startswith("/webhooks/")]
    assert len(bodies) == 2 and "etcd backup step" in bodies[0] and "backup.md" in bodies[0]
    assert not [b for b in bodies if "file:" in b or str(tmp_path) in b]


async def test_a_direct_message_is_a_question_without_a_mention(world):
    """In a DM there is no one else to talk to: every message asks the bot."""
    await world.alice.user.send_dm("Skopeo가 뭐야?")
    replies = [m for m in world.alice.user.dm_channel.history() if m.author.id == world.env.bot.user.id]
    assert len(replies) == 1 and "Skopeo" in replies[0].embeds[0].description


async def test_a_direct_message_naming_here_is_still_a_question(world):
    await world.alice.user.send_dm("alert 보낼 때 @here 는 언제 써? Skopeo가 뭐야?")
    replies = [m for m in world.alice.user.dm_channel.history() if m.author.id == world.env.bot.user.id]
    assert len(replies) == 1
