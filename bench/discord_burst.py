"""How the Discord bot copes with a burst of /ask: time until every interaction is
deferred (Discord wants that within 3 s) and until every answer is sent.

Runs the real bot (real model, real index of the bundled note, loaded and
warmed up by setup_hook as in production) on simcord's in-memory Discord. Usage:

    HF_HUB_OFFLINE=1 .venv/bin/python bench/discord_burst.py [N] [WORKERS] [INDEX_DIR]

INDEX_DIR (default: a temporary folder) is built or updated from okdbot.yaml's
sources first; keep one to make repeated runs fast.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import simcord  # noqa: E402
from simcord import interactions as sim_interactions  # noqa: E402

from okdbot.config import load_settings  # noqa: E402
from okdbot.discord_bot import OkdBot  # noqa: E402
from okdbot.feedback import FeedbackStore  # noqa: E402
from okdbot.runtime import build  # noqa: E402

GUILD_ID = 1_100_000_000_000_000_000
QUESTIONS = ["컨테이너 이미지를 저장소 간에 복사하는 도구는?", "What does Tekton do?", "OKD 모니터링 구성요소는?",
             "Azure 가상 네트워크 피어링은 어떻게 설정해?", "FCOS 주요기능"]


def emit_slash(env, member, channel, question):
    """One /ask without waiting for it (mirrors simcord.actors._slash; simcord internals)."""
    root = env.backend.find_command("ask", member.guild.id)
    options, _ = sim_interactions.build_options(member, "ask", root, {"question": question}, channel_id=channel.id)
    data = {"id": root["id"], "name": "ask", "type": 1, "options": options, "guild_id": root["guild_id"]}
    record, payload = sim_interactions.base_payload(env.backend, type=2, channel_id=channel.id,
                                                    guild_id=member.guild.id, user_id=member.id, data=data)
    env.backend.emit("INTERACTION_CREATE", payload)
    return simcord.InteractionResult(env, record)


async def main(n: int, workers: int, index: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        index_dir = Path(index).resolve() if index else Path(tmp) / "index"
        settings = load_settings(ROOT / "okdbot.yaml", env={}).with_index(index_dir)
        settings = replace(settings, discord=replace(settings.discord, guild_id=GUILD_ID,
                                                     feedback_db=Path(tmp) / "feedback.sqlite"))
        build(settings, progress=False)
        bot = OkdBot(settings, feedback=FeedbackStore(settings.discord.feedback_db), workers=workers)
        async with simcord.run(bot, settle_timeout=600) as env:
            guild = env.create_guild("bench", id=GUILD_ID)
            channel = guild.create_text_channel("okd")
            members = [guild.add_member(env.create_user(f"user{i}")) for i in range(n)]
            started = time.perf_counter()
            results = [emit_slash(env, m, channel, QUESTIONS[i % len(QUESTIONS)]) for i, m in enumerate(members)]
            emitted = time.perf_counter() - started
            deferred_at: list[float] = []
            answered_at: list[float] = []
            seen = 0
            while len(answered_at) < n:  # read simcord's request log: cheap, unlike building result objects
                log = env.http_requests
                now = time.perf_counter() - started
                for entry in log[seen:]:
                    if entry.method == "POST" and entry.path.endswith("/callback"):
                        deferred_at.append(now)
                    elif entry.method == "POST" and entry.path.startswith("/webhooks/"):
                        answered_at.append(now)
                seen = len(log)
                await asyncio.sleep(0.002)
            await env.settle(timeout=60)
            assert all(r.response.embeds for r in results)
    answers = sorted(answered_at)
    assert len(deferred_at) == n
    print(f"burst of {n} /ask, {workers} retrieval worker(s), bundled note, switch interval "
          f"{sys.getswitchinterval() * 1000:.1f} ms")
    print(f"  simcord emitted all in  {emitted * 1000:8.1f} ms (the in-memory Discord's own cost)")
    print(f"  all deferred after      {max(deferred_at) * 1000:8.1f} ms (Discord allows 3000)")
    print(f"  first answer after      {answers[0] * 1000:8.1f} ms")
    print(f"  median answer after     {statistics.median(answers) * 1000:8.1f} ms")
    print(f"  last answer after       {answers[-1] * 1000:8.1f} ms")
    print(f"  answers per second      {n / answers[-1]:8.1f}")


if __name__ == "__main__":
    args = sys.argv[1:] + [None] * 3
    asyncio.run(main(int(args[0] or 50), int(args[1] or 2), args[2]))
