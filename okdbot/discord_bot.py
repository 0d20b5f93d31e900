"""The Discord bot: `/ask`, @mentions and replies answered with quotes from the notes.

This module is the client (discord.py's `commands.Bot`, as in its examples):
it loads the model and index once, runs retrieval and database work in
bounded thread pools, writes the heartbeat, follows note edits with --watch,
and registers /ask. What a question goes through lives in the AskCog
(okdbot.discord_cog); buttons and embeds in okdbot.discord_ui.

- It never blocks the event loop. `/ask` defers first; retrieval runs in a
  bounded thread pool and database writes in another. The model and index
  load once, in setup_hook, before the bot connects to the gateway.
- It never pings. The client's AllowedMentions.none() means @everyone, @here,
  roles and users quoted from notes or questions are shown but notify nobody.
- It follows new index generations. Retriever.search switches to the newest
  published generation before each question, so no restart is needed after
  `okdbot index`.
- It needs no privileged intent, unless discord.threads is on. Discord delivers
  the text of messages that mention the bot (replies that ping it included)
  without message-content; follow-ups in its threads come without a mention.
- A reply to one of its answers is a follow-up, read with the question(s)
  behind that answer: the vote buttons carry the answer id, and the feedback
  database remembers what was asked.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import discord
from discord.ext import commands, tasks

from .config import Settings, heartbeat_path
from .discord_cog import AskCog
from .discord_ui import KoreanTranslator, VoteButton, submit_why
from .errors import DiscordError
from .feedback import FeedbackStore, feedback_path
from .health import write_heartbeat
from .redact import add_secret, redact_handler

log = logging.getLogger("okdbot")

RETRIEVAL_WORKERS = 2
WARM_UP = ("컨테이너 이미지를 복사하는 도구", "container image tool")


class OkdBot(commands.Bot):
    """okdbot on Discord. `retriever` may be given (tests, or a shared one);
    otherwise setup_hook loads it once from `settings`."""

    def __init__(self, settings: Settings, *, feedback: FeedbackStore, retriever=None, sync: bool = False,
                 workers: int = RETRIEVAL_WORKERS, watch: bool = False, reload=None, **options) -> None:
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False  # no voice: no warning about it
        intents = discord.Intents.default()
        intents.message_content = settings.discord.threads  # follow-ups in its threads come without a mention
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, help_command=None,
                         allowed_mentions=discord.AllowedMentions.none(), **options)
        self.settings = settings
        self.watch = watch
        self.reload = reload  # re-reads the config file for the watcher (None: it warns instead)
        self.connected = False
        self._watch_stop: threading.Event | None = None
        self._watch_thread: threading.Thread | None = None
        self.feedback = feedback
        self.retriever = retriever
        self.force_sync = sync
        self.workers = workers
        self._retrieval: ThreadPoolExecutor | None = None
        self._db: ThreadPoolExecutor | None = None

    async def login(self, token: str) -> None:
        """Log in; from now on the token is masked in everything the bot writes or posts."""
        add_secret(token)
        await super().login(token)

    async def setup_hook(self) -> None:
        self._retrieval = ThreadPoolExecutor(self.workers, thread_name_prefix="okdbot-retrieve")
        self._db = ThreadPoolExecutor(1, thread_name_prefix="okdbot-db")
        if self.retriever is None:
            await self.in_pool(self._load)
        self.add_dynamic_items(VoteButton)
        await self.add_cog(AskCog(self))
        await self.tree.set_translator(KoreanTranslator())
        await self.sync_commands()
        self.heartbeat.start()
        if self.watch:
            self._start_watch()

    def _start_watch(self) -> None:
        """Re-index when notes change (okdbot discord --watch). The watcher runs
        in its own thread, off the event loop; after each rebuild it loads the
        new generation, so the next answer comes from it without a restart."""
        from .watch import watch

        self._watch_stop = threading.Event()
        self._watch_thread = threading.Thread(
            target=watch, name="okdbot-watch", daemon=True,
            kwargs={"settings": self.settings, "stop_event": self._watch_stop,
                    "on_rebuilt": lambda _report: self.retriever.refresh(), "reload": self.reload})
        self._watch_thread.start()

    @tasks.loop(seconds=30)
    async def heartbeat(self) -> None:
        """Liveness for `okdbot health` (Docker HEALTHCHECK): a hung loop stops beating."""
        self.beat()

    def beat(self) -> None:
        latency = self.latency
        reader = getattr(self.retriever, "reader", None)
        state = {"connected": self.connected and not self.is_closed(), "guilds": len(self.guilds),
                 "latency_ms": None if math.isnan(latency) or math.isinf(latency) else round(latency * 1000),
                 "generation": getattr(reader, "name", None)}
        try:
            write_heartbeat(heartbeat_path(self.settings), state)
        except OSError as exc:
            log.warning("cannot write the heartbeat (%s)", exc)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        await submit_why(interaction)  # a 👎 form: read from the submission, not from an object in memory

    async def on_resumed(self) -> None:
        self.connected = True
        self.beat()

    async def on_disconnect(self) -> None:
        self.connected = False
        self.beat()

    def _load(self) -> None:
        """Load the model and index, then ask once in each language: the first
        Korean analysis and the first encoding are slow, and no user should wait for them."""
        from .runtime import load_retriever

        started = time.perf_counter()
        self.retriever = load_retriever(self.settings)
        loaded = time.perf_counter()
        for question in WARM_UP:
            self.retriever.search(question)
        log.info("model and index loaded in %.1f s, warmed up in %.1f s",
                 loaded - started, time.perf_counter() - loaded)

    async def close(self) -> None:
        if self._watch_stop is not None:
            self._watch_stop.set()
        self.heartbeat.cancel()
        self.connected = False
        self.beat()
        await super().close()
        for pool in (self._retrieval, self._db):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    async def on_message(self, message: discord.Message) -> None:
        """Nothing here: the AskCog listens to messages, and there are no prefix
        commands to look for (commands.Bot would log every mention as an unknown one)."""

    async def on_ready(self) -> None:
        self.connected = True
        self.beat()
        log.info("connected as %s to %d server(s)", self.user, len(self.guilds))

    async def in_db(self, fn, *args):
        """Run a FeedbackStore call off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._db, fn, *args)

    async def in_pool(self, fn, *args):
        """Run retrieval (or the loading of the model and index) in the bounded worker pool."""
        return await asyncio.get_running_loop().run_in_executor(self._retrieval, fn, *args)

    async def sync_commands(self) -> None:
        """Register /ask with Discord, to the configured guild (instantly visible)
        or globally, but only when the commands changed since the last sync
        (a hash kept in the feedback database) or when forced with --sync."""
        guild_id = self.settings.discord.guild_id
        guild = discord.Object(guild_id) if guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        translator = self.tree.translator
        payload = [await c.get_translated_payload(self.tree, translator) for c in self.tree.get_commands(guild=guild)]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
        key = f"commands:{self.application_id}:{guild_id or 'global'}"
        where = f"server {guild_id}" if guild else "all servers (global)"
        if not self.force_sync and await self.in_db(self.feedback.get_state, key) == digest:
            log.info("slash commands unchanged since the last sync to %s (okdbot discord --sync forces one)", where)
            return
        try:
            await self.tree.sync(guild=guild)
        except discord.Forbidden:
            raise DiscordError(f"Discord refused to register /ask in {where}; invite the bot with the "
                               "'bot applications.commands' scopes (see docs/discord.md)") from None
        await self.in_db(self.feedback.set_state, key, digest)
        log.info("synced %d slash command(s) to %s", len(payload), where)


def _route_logs(token: str) -> None:
    """Every line the bot writes goes through okdbot's handlers, each of which masks
    the token in the finished text (message, arguments, tracebacks, chained
    exceptions): okdbot's own records, discord.py's, and asyncio's (a failed task)."""
    add_secret(token)
    ours = logging.getLogger("okdbot")
    if not ours.handlers:
        ours.addHandler(logging.StreamHandler())
    handlers = [redact_handler(handler) for handler in ours.handlers]
    for name in ("discord", "asyncio"):
        theirs = logging.getLogger(name)
        theirs.handlers[:] = handlers
        theirs.propagate = False
    logging.getLogger("discord").setLevel(logging.INFO if ours.getEffectiveLevel() <= logging.DEBUG
                                          else logging.WARNING)


class ShardedOkdBot(OkdBot, commands.AutoShardedBot):
    """okdbot for deployments in many servers: discord.py's AutoShardedBot, with
    the shard count from config (discord.shards)."""


def make_bot(settings: Settings, **kwargs) -> OkdBot:
    """A plain bot, or an auto-sharded one when discord.shards is set."""
    shards = settings.discord.shards
    if shards:
        return ShardedOkdBot(settings, shard_count=shards, **kwargs)
    return OkdBot(settings, **kwargs)


def run(settings: Settings, token: str, *, sync: bool = False, watch: bool = False, reload=None) -> None:
    """Run the bot until interrupted; Discord's refusals become one-line DiscordErrors.
    `reload` re-reads the config for the watcher (the index settings; Discord's need a restart)."""
    _route_logs(token)
    bot = make_bot(settings, feedback=FeedbackStore(feedback_path(settings)), sync=sync, watch=watch,
                   reload=reload)

    async def main() -> None:
        async with bot:
            await bot.start(token)

    try:
        asyncio.run(main())
    except discord.LoginFailure:
        raise DiscordError("Discord rejected the token in DISCORD_TOKEN; copy it again from the developer "
                           "portal (Applications → your bot → Bot → Reset Token)") from None
    except discord.PrivilegedIntentsRequired:
        raise DiscordError("Discord refused the Message Content intent, which discord.threads needs; enable it in the "
                           "developer portal (your application → Bot → Privileged Gateway Intents) or set "
                           "discord.threads: false") from None
    except (aiohttp.ClientError, discord.GatewayNotFound, discord.ConnectionClosed) as exc:
        raise DiscordError(f"cannot reach Discord ({type(exc).__name__}); check the network and try again") from None
    except discord.HTTPException as exc:
        raise DiscordError(f"Discord refused a request (HTTP {exc.status}); try again later") from None
