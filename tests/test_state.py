"""One state folder: okdbot writes only there (index, feedback database,
heartbeat), so a deployment needs exactly one writable folder.

Here the whole bot starts as `okdbot discord` makes it (model, index,
slash-command sync, warm-up), against simcord's in-memory Discord instead of
the network, as a user who may write nothing but the state folder; it answers
/ask, records the answer and beats its heartbeat there. tests/test_docker.py
does the same in the replayed image, up to the network."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import textwrap

from .conftest import ROOT, as_user, bot_may_write, read_only, run_cli

SKOPEO_KO = "Skopeo가 뭐야?"

BOT = textwrap.dedent("""
    import asyncio, json, sys
    import simcord
    from okdbot.config import load_settings
    from okdbot.discord_bot import make_bot
    from okdbot.feedback import FeedbackStore, feedback_path

    settings = load_settings()  # $OKDBOT_CONFIG and $OKDBOT_DATA, as in the image
    bot = make_bot(settings, feedback=FeedbackStore(feedback_path(settings)))  # what `okdbot discord` runs

    async def main():
        async with simcord.run(bot) as env:
            guild = env.create_guild("okd")
            channel = guild.create_text_channel("okd-study")
            alice = guild.add_member(env.create_user("alice"))
            result = await alice.slash(channel, "ask", question=sys.argv[1])
            print(json.dumps({"answer": result.response.embeds[0].description}, ensure_ascii=False), flush=True)
            await bot.close()

    asyncio.run(main())
""")


def test_the_bot_starts_answers_and_records_with_only_the_state_folder_writable(shared_tmp):
    app, data = shared_tmp / "app", shared_tmp / "data"
    app.mkdir()
    data.mkdir()
    shutil.copy(ROOT / "okdbot.yaml", app / "okdbot.yaml")
    shutil.copytree(ROOT / "corpus", app / "corpus")
    (app / "bot.py").write_text(BOT, encoding="utf-8")
    read_only(shared_tmp)
    bot_may_write(data)
    env = {"OKDBOT_CONFIG": str(app / "okdbot.yaml"), "OKDBOT_DATA": str(data), "HOME": str(app),
           "PYTHONDONTWRITEBYTECODE": "1"}

    built = run_cli("index", "--quiet", cwd=app, env=env, preexec_fn=as_user())
    assert built.returncode == 0, built.stderr
    bot = subprocess.run([sys.executable, str(app / "bot.py"), SKOPEO_KO], cwd=app, capture_output=True, text=True,
                         timeout=600, env={**run_cli_env(), **env}, preexec_fn=as_user())
    assert bot.returncode == 0, bot.stderr[-3000:]
    assert "Skopeo" in json.loads(bot.stdout.splitlines()[-1])["answer"]
    with sqlite3.connect(data / "feedback.sqlite") as db:
        assert [q for (q,) in db.execute("SELECT question FROM answers")] == [SKOPEO_KO]
    assert json.loads((data / "heartbeat.json").read_text())["connected"] is False  # its last beat, at close
    assert {p.name for p in data.iterdir()} <= {"index", "feedback.sqlite", "feedback.sqlite-wal",
                                                 "feedback.sqlite-shm", "heartbeat.json"}
    health = run_cli("health", cwd=app, env=env, preexec_fn=as_user())
    assert health.returncode == 1 and "not connected" in health.stdout


def run_cli_env() -> dict:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("OKDBOT_")}
    return {**env, "HF_HUB_OFFLINE": "1"}
