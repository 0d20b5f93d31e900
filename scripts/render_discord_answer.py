"""Render docs/discord-answer.png: the real bot answering /ask on simcord's in-memory Discord.

Not needed to run or test okdbot. Needs `pip install "simcord[screenshot]"` and a Chromium
(e.g. Debian's chromium-headless-shell; set CHROMIUM_PATH if it is elsewhere):

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/render_discord_answer.py [QUESTION]
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import simcord  # noqa: E402
from PIL import Image  # noqa: E402
from playwright.async_api import BrowserType  # noqa: E402

from okdbot.config import load_settings  # noqa: E402
from okdbot.discord_bot import OkdBot  # noqa: E402
from okdbot.feedback import FeedbackStore  # noqa: E402
from okdbot.runtime import build, load_retriever  # noqa: E402

GUILD_ID = 1_100_000_000_000_000_000
QUESTION = "OKD 모니터링 구성요소는?"
OUT = ROOT / "docs" / "discord-answer.png"


def use_system_chromium() -> None:
    """simcord launches Playwright's Chromium with no arguments; point it at the system one."""
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium-headless-shell") or shutil.which("chromium")
    if path is None:
        sys.exit("no Chromium found; install chromium-headless-shell or set CHROMIUM_PATH")
    launch = BrowserType.launch

    async def launch_system(self, *args, **kwargs):
        kwargs.setdefault("executable_path", path)
        return await launch(self, *args, **kwargs)

    BrowserType.launch = launch_system


async def main(question: str) -> None:
    use_system_chromium()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(ROOT / "okdbot.yaml", env={}).with_index(Path(tmp) / "index")
        settings = replace(settings, discord=replace(settings.discord, guild_id=GUILD_ID,
                                                     feedback_db=Path(tmp) / "feedback.sqlite"))
        build(settings, progress=False)
        bot = OkdBot(settings, feedback=FeedbackStore(settings.discord.feedback_db),
                     retriever=load_retriever(settings))
        env = simcord.Env(bot)
        env.backend.bot_user.name = "okdbot"
        await env.start()
        try:
            with env.time_context():
                guild = env.create_guild("OKD study", id=GUILD_ID)
                channel = guild.create_text_channel("okd-질문")
                member = guild.add_member(env.create_user("eunsae"))
                result = await member.slash(channel, "ask", question=question)
                async with env.preview(channel, viewers=[member], width=760, height=900) as preview:
                    capture = await preview.screenshot(OUT, target=result)
        finally:
            await env.shutdown()
    Image.open(OUT).convert("RGB").quantize(colors=128).save(OUT, optimize=True)  # a third of the size
    print(f"{OUT} {capture.output_width}x{capture.output_height} complete={capture.complete}")


if __name__ == "__main__":
    asyncio.run(main(" ".join(sys.argv[1:]) or QUESTION))
