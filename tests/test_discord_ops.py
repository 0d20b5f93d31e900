"""Operating the bot: heartbeat for the health check, sharding, and --watch
re-indexing inside the bot process. Real discord.py client on simcord, real model."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from contextlib import closing
from dataclasses import replace

import simcord
from discord.ext import commands

from okdbot.build import build_index
from okdbot.discord_bot import ShardedOkdBot, make_bot
from okdbot.feedback import FeedbackStore
from okdbot.retrieve import Retriever

from .conftest import settings_for, write_config
from .test_discord import SKOPEO_KO, World, bot_settings, notes, retriever, settings  # noqa: F401 (fixtures)


def _bot(settings, retriever, **kw):
    return make_bot(settings, feedback=FeedbackStore(settings.discord.feedback_db), retriever=retriever, **kw)


async def test_heartbeat_tells_okdbot_health_whether_the_bot_is_connected(settings, retriever, tmp_path, monkeypatch,
                                                                         okdbot_cli):
    beat = tmp_path / "heartbeat.json"
    monkeypatch.setenv("OKDBOT_HEARTBEAT", str(beat))
    bot = _bot(settings, retriever)
    async with simcord.run(bot) as env:
        w = World(env)
        await w.alice.slash(w.channel, "ask", question=SKOPEO_KO)
        state = json.loads(beat.read_text())
        assert state["connected"] is True and state["generation"] == retriever.reader.name
        healthy = okdbot_cli("health", "--heartbeat", str(beat), cwd=tmp_path)
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
        await bot.close()
    # closed: the last beat says disconnected, and the health check fails
    assert json.loads(beat.read_text())["connected"] is False
    assert okdbot_cli("health", "--heartbeat", str(beat), cwd=tmp_path).returncode == 1


def test_shards_in_config_make_an_auto_sharded_bot(settings, retriever):
    sharded = _bot(bot_settings(settings, settings.discord.feedback_db.parent, shards=2), retriever)
    assert isinstance(sharded, ShardedOkdBot) and isinstance(sharded, commands.AutoShardedBot)
    assert sharded.shard_count == 2
    assert sharded.allowed_mentions.to_dict() == {"parse": []}
    plain = _bot(settings, retriever)
    assert not isinstance(plain, commands.AutoShardedBot) and plain.shard_count is None


async def test_sharded_bot_answers_ask(settings, retriever):
    bot = _bot(replace(settings, discord=replace(settings.discord, shards=2)), retriever)
    async with simcord.run(bot, shard_count=2) as env:
        w = World(env)
        result = await w.alice.slash(w.channel, "ask", question=SKOPEO_KO)
        assert "Skopeo" in result.response.embeds[0].description


async def test_discord_watch_answers_from_an_edited_note_within_seconds(tmp_path, model, analyzer, monkeypatch):
    monkeypatch.setenv("OKDBOT_HEARTBEAT", str(tmp_path / "beat.json"))
    (tmp_path / "notes").mkdir()
    note = tmp_path / "notes" / "backup.md"
    note.write_text("# Runbook\n\n## Backups\n- The etcd backup runs every night at 02:00 UTC\n", encoding="utf-8")
    write_config(tmp_path, extra="watch:\n  debounce_ms: 200\n")
    base = settings_for(tmp_path)
    build_index(base, lambda: model, analyzer=analyzer)
    retriever = Retriever(base.index_dir, base.retrieval, model, analyzer)
    settings = bot_settings(base, tmp_path)
    async with simcord.run(_bot(settings, retriever, watch=True)) as env:
        w = World(env)
        before = await w.alice.slash(w.channel, "ask", question="When does the etcd backup run?")
        assert "02:00 UTC" in before.response.embeds[0].description
        first = retriever.reader.name
        await asyncio.sleep(1.0)  # the watcher is live
        note.write_text("# Runbook\n\n## Backups\n- The etcd backup runs every night at 03:30 UTC\n", encoding="utf-8")
        saved = time.monotonic()
        while retriever.reader.name == first and time.monotonic() - saved < 60:
            await asyncio.sleep(0.2)  # the bot's own watcher re-indexes and preloads the new generation
        waited = time.monotonic() - saved
        after = await w.bob.slash(w.channel, "ask", question="When does the etcd backup run?")
        assert "03:30 UTC" in after.response.embeds[0].description, waited
        assert waited < 30, f"the bot took {waited:.1f} s to follow the edit"


def test_a_feedback_database_from_before_follow_up_context_keeps_its_answers(tmp_path, retriever):
    """Upgrading the bot keeps the votes and answers already stored."""
    path = tmp_path / "feedback.sqlite"
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE answers (id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, "
                   "question TEXT NOT NULL, answered INTEGER NOT NULL, generation TEXT NOT NULL, "
                   "citations TEXT NOT NULL, asker TEXT NOT NULL, channel INTEGER)")
        db.execute("INSERT INTO answers VALUES (1, '2026-01-01', 'Skopeo가 뭐야?', 1, 'gen-old', '[]', 'x', 7)")
    store = FeedbackStore(path)
    assert store.conversation(1) == "Skopeo가 뭐야?"
    follow_up = retriever.search("그거 이미지 검사도 돼?", context=store.conversation(1))
    answer_id = store.record_answer(follow_up, 42, 7)
    assert store.conversation(answer_id) == "Skopeo가 뭐야? 그거 이미지 검사도 돼?"
    assert store.vote(1, 42, "down") == "Skopeo가 뭐야?"
    store.vote(answer_id, 42, "down")
    listed = {v.answer_id: v.to_json() for v in store.votes(bad_only=True)}
    assert listed[1]["question"] == "Skopeo가 뭐야?" and listed[1]["context"] == ""
    assert listed[answer_id]["question"] == "그거 이미지 검사도 돼?" and listed[answer_id]["context"] == "Skopeo가 뭐야?"
