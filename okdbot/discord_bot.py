"""The Discord bot: `/ask`, @mentions and replies answered with quotes from the notes.

The only module that imports discord. It reuses the CLI's retrieval
(runtime.load_retriever) and the pure Discord layout of answer.py, and adds
only what belongs to Discord: commands, events, cooldowns, vote buttons.

- It never blocks the event loop. `/ask` defers first; retrieval runs in a
  bounded thread pool and database writes in another. The model and index
  load once, in setup_hook, before the bot connects to the gateway.
- It never pings. The client's AllowedMentions.none() means @everyone, @here,
  roles and users quoted from notes or questions are shown but notify nobody.
- It follows new index generations. Retriever.search switches to the newest
  published generation before each question, so no restart is needed after
  `okdbot index`.
- It needs no privileged intent. Discord delivers the text of messages that
  mention the bot (replies that ping it included) without message-content.
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
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import discord
from discord import app_commands
from discord.app_commands import locale_str
from discord.ext import commands, tasks

from .answer import DiscordReply, EmbedSpec, answer_log_line, discord_reply, strings
from .config import Settings, heartbeat_path
from .health import write_heartbeat
from .errors import BadQuestion, DiscordError
from .feedback import FeedbackStore, feedback_path
from .retrieve import MAX_QUESTION_CHARS, Result, is_korean

log = logging.getLogger("okdbot")

QUESTION_MAX = 300  # /ask option length; the Discord client enforces it
RETRIEVAL_WORKERS = 2
WARM_UP = ("컨테이너 이미지를 복사하는 도구", "container image tool")
VOTE_ID = r"okdbot:vote:(?P<vote>up|down):(?P<answer>[0-9]+)"


class NotAllowedHere(app_commands.CheckFailure):
    """/ask used outside the configured channel allowlist."""


class KoreanTranslator(app_commands.Translator):
    """Korean descriptions for /ask, taken from answer.STRINGS["ko"]."""

    async def translate(self, string: locale_str, locale: discord.Locale,
                        context: app_commands.TranslationContextTypes) -> str | None:
        key = string.extras.get("key")
        return strings(True).get(key) if key and locale is discord.Locale.korean else None


class VoteButton(discord.ui.DynamicItem[discord.ui.Button], template=VOTE_ID):
    """👍 or 👎 under an answer. The custom id carries the answer id, so the
    buttons keep working across restarts without any per-message state."""

    def __init__(self, answer_id: int, vote: str) -> None:
        super().__init__(discord.ui.Button(emoji="👍" if vote == "up" else "👎", style=discord.ButtonStyle.secondary,
                                           custom_id=f"okdbot:vote:{vote}:{answer_id}"))
        self.answer_id = answer_id
        self.vote = vote

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: re.Match[str], /) -> "VoteButton":
        return cls(int(match["answer"]), match["vote"])

    async def callback(self, interaction: discord.Interaction) -> None:
        bot = interaction.client
        assert isinstance(bot, OkdBot)
        korean = interaction.locale is discord.Locale.korean
        try:
            question = await bot.in_db(bot.feedback.vote, self.answer_id, interaction.user.id, self.vote)
        except Exception:
            log.exception("storing a vote failed")
            await tell_privately(interaction, strings(korean)["error"])
            return
        if question is None:
            log.warning("vote on unknown answer %d (was the feedback database replaced?)", self.answer_id)
        log.info("vote %s on answer %d", self.vote, self.answer_id)
        await interaction.response.send_message(strings(korean or is_korean(question or ""))["thanks"], ephemeral=True)


def vote_view(answer_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(VoteButton(answer_id, "up"))
    view.add_item(VoteButton(answer_id, "down"))
    return view


def to_embed(spec: EmbedSpec) -> discord.Embed:
    embed = discord.Embed(title=spec.title, description=spec.description or None, url=spec.url or None,
                          colour=spec.colour)
    for name, value in spec.fields:
        embed.add_field(name=name, value=value, inline=False)
    if spec.footer:
        embed.set_footer(text=spec.footer)
    return embed


def message_kwargs(reply: DiscordReply, answer_id: int) -> dict:
    """Keyword arguments for send()/reply(): the answer plus its vote buttons."""
    kwargs: dict = {"embeds": [to_embed(e) for e in reply.embeds], "view": vote_view(answer_id)}
    if reply.content:
        kwargs["content"] = reply.content
    return kwargs


class AnswerTree(app_commands.CommandTree):
    """Turns every /ask failure into a private message to the asker."""

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        question = str(getattr(interaction.namespace, "question", "") or "")
        ui = strings(is_korean(question))
        original = getattr(error, "original", error)
        if isinstance(error, app_commands.CommandOnCooldown):
            text = ui["cooldown"].format(seconds=math.ceil(error.retry_after))
        elif isinstance(error, NotAllowedHere):
            text = ui["not_here"].format(channels=", ".join(f"<#{c}>" for c in error.args[0]))
        elif isinstance(original, BadQuestion):
            text = ui["too_long"].format(limit=MAX_QUESTION_CHARS) if question.strip() else ui["empty_ask"]
        else:
            name = interaction.command.name if interaction.command else "?"
            log.error("/%s failed", name, exc_info=(type(original), original, original.__traceback__))
            text = ui["error"]
        try:
            await tell_privately(interaction, text)
        except discord.HTTPException:
            log.warning("could not tell the user about the error", exc_info=True)


async def tell_privately(interaction: discord.Interaction, text: str) -> None:
    """An ephemeral message to the user who asked, also after a public defer:
    the "thinking…" message cannot become ephemeral, so it is completed, the
    text is sent privately, and the public message is removed."""
    if not interaction.response.is_done():
        await interaction.response.send_message(text, ephemeral=True)
        return
    if interaction.response.type is discord.InteractionResponseType.deferred_channel_message:
        await interaction.edit_original_response(content=text, embeds=[], view=None)
        await interaction.followup.send(text, ephemeral=True)
        await interaction.delete_original_response()
    else:
        await interaction.followup.send(text, ephemeral=True)


def ask_command(bot: "OkdBot") -> app_commands.Command:
    """/ask, built per bot (a module-level command would share state between bots)."""
    en = strings(False)

    @app_commands.command(name="ask", description=locale_str(en["command"], key="command"))
    @app_commands.describe(question=locale_str(en["command_question"], key="command_question"))
    @app_commands.check(bot.may_ask)
    async def ask(interaction: discord.Interaction, question: app_commands.Range[str, 1, QUESTION_MAX]) -> None:
        await interaction.response.defer(thinking=True)
        result, answer_id = await bot.answer(question, asker=interaction.user.id,
                                             channel=interaction.channel_id, via="/ask")
        await interaction.followup.send(**message_kwargs(discord_reply(result, echo_question=True), answer_id))

    return ask


class OkdBot(commands.Bot):
    """okdbot on Discord. `retriever` may be given (tests, or a shared one);
    otherwise setup_hook loads it once from `settings`."""

    def __init__(self, settings: Settings, *, feedback: FeedbackStore, retriever=None, sync: bool = False,
                 workers: int = RETRIEVAL_WORKERS, watch: bool = False, **options) -> None:
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False  # no voice: no warning about it
        intents = discord.Intents.default()
        intents.message_content = False
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, help_command=None,
                         allowed_mentions=discord.AllowedMentions.none(), tree_cls=AnswerTree, **options)
        self.settings = settings
        self.watch = watch
        self.connected = False
        self._watch_stop: threading.Event | None = None
        self._watch_thread: threading.Thread | None = None
        self.feedback = feedback
        self.retriever = retriever
        self.force_sync = sync
        self.workers = workers
        rate, per = settings.discord.cooldown_rate, settings.discord.cooldown_seconds
        self.cooldown = commands.CooldownMapping.from_cooldown(rate, per, lambda user_id: user_id) if rate > 0 else None
        self._retrieval: ThreadPoolExecutor | None = None
        self._db: ThreadPoolExecutor | None = None
        self.add_dynamic_items(VoteButton)
        self.tree.add_command(ask_command(self))

    async def setup_hook(self) -> None:
        self._retrieval = ThreadPoolExecutor(self.workers, thread_name_prefix="okdbot-retrieve")
        self._db = ThreadPoolExecutor(1, thread_name_prefix="okdbot-db")
        if self.retriever is None:
            await asyncio.get_running_loop().run_in_executor(self._retrieval, self._load)
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
                    "on_rebuilt": lambda _report: self.retriever.refresh()})
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

    async def on_ready(self) -> None:
        self.connected = True
        self.beat()
        log.info("connected as %s to %d server(s)", self.user, len(self.guilds))

    async def in_db(self, fn, *args):
        """Run a FeedbackStore call off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._db, fn, *args)

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
                               "'bot applications.commands' scopes (see README, Discord)") from None
        await self.in_db(self.feedback.set_state, key, digest)
        log.info("synced %d slash command(s) to %s", len(payload), where)

    def allowed_channel(self, channel) -> bool:
        allowed = self.settings.discord.channels
        return not allowed or getattr(channel, "id", None) in allowed or getattr(channel, "parent_id", None) in allowed

    def rate_limited(self, user_id: int) -> tuple[app_commands.Cooldown, float] | None:
        """(bucket, seconds to wait) when the user asked too often, else None."""
        if self.cooldown is None:
            return None
        bucket = self.cooldown.get_bucket(user_id)
        retry = bucket.update_rate_limit() if bucket else None
        return (bucket, retry) if retry else None

    def may_ask(self, interaction: discord.Interaction) -> bool:
        """/ask check: allowed channel, then the per-user cooldown."""
        if not self.allowed_channel(interaction.channel):
            raise NotAllowedHere(self.settings.discord.channels)
        limited = self.rate_limited(interaction.user.id)
        if limited:
            raise app_commands.CommandOnCooldown(*limited)
        return True

    async def answer(self, question: str, *, asker: int, channel: int | None, via: str,
                     context: str = "") -> tuple[Result, int]:
        """Retrieve in the worker pool and record the answer; (result, answer id).
        A follow-up passes the conversation it replies to as `context`."""
        started = time.perf_counter()
        log.debug("question via %s: %r (context %r)", via, question, context)
        result, answer_id = await asyncio.get_running_loop().run_in_executor(
            self._retrieval, self._answer_blocking, question, asker, channel, context)
        log.info("%s via=%s", answer_log_line(result, (time.perf_counter() - started) * 1000), via.lstrip("/"))
        return result, answer_id

    def _answer_blocking(self, question: str, asker: int, channel: int | None, context: str) -> tuple[Result, int]:
        result = self.retriever.search(question, context=context)
        return result, self.feedback.record_answer(result, asker, channel)

    async def on_message(self, message: discord.Message) -> None:
        if self.user is None or message.author.bot or message.webhook_id is not None:
            return
        if not self.allowed_channel(message.channel):
            return
        earlier = await self.replied_answer(message)
        mentioned = any(user.id == self.user.id for user in message.mentions)
        if not (earlier or mentioned):
            return
        question = re.sub(rf"<@!?{self.user.id}>", " ", message.content).strip()
        ui = strings(is_korean(question))
        try:
            await self.answer_message(message, question, ui, earlier)
        except Exception:
            log.exception("answering a message failed")
            try:
                await message.reply(ui["error"])
            except discord.HTTPException:
                log.warning("could not tell the user about the error", exc_info=True)

    async def answer_message(self, message: discord.Message, question: str, ui: dict[str, str],
                             earlier: discord.Message | None) -> None:
        limited = self.rate_limited(message.author.id)
        if limited:
            await message.reply(ui["cooldown"].format(seconds=math.ceil(limited[1])))
            return
        if not message.content:  # a reply that does not ping us arrives without its text
            await message.reply(ui["no_content"])
            return
        if not question:
            await message.reply(ui["empty"])
            return
        context = await self.conversation(earlier) if earlier else ""
        try:
            result, answer_id = await self.answer(question, asker=message.author.id, channel=message.channel.id,
                                                  via="reply" if earlier else "mention", context=context)
        except BadQuestion:
            await message.reply(ui["too_long"].format(limit=MAX_QUESTION_CHARS))
            return
        await message.reply(**message_kwargs(discord_reply(result), answer_id))

    async def replied_answer(self, message: discord.Message) -> discord.Message | None:
        """The bot's message that `message` replies to, if it replies to one."""
        ref = message.reference
        if ref is None or ref.message_id is None or self.user is None:
            return None
        target = ref.resolved if isinstance(ref.resolved, discord.Message) else ref.cached_message
        if target is None:
            try:
                target = await message.channel.fetch_message(ref.message_id)
            except discord.HTTPException:
                return None
        return target if target.author.id == self.user.id else None

    async def conversation(self, answer: discord.Message) -> str:
        """The question(s) behind one of our answers, read from its vote buttons'
        answer id ("" for a message that is not an answer, or an unknown one)."""
        for row in answer.components:
            for item in getattr(row, "children", []):
                match = re.fullmatch(VOTE_ID, getattr(item, "custom_id", None) or "")
                if match:
                    return await self.in_db(self.feedback.conversation, int(match["answer"])) or ""
        return ""


class _Redact(logging.Filter):
    """Defence in depth: the token never reaches a log line, even inside a traceback."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.secret in message:
            record.msg, record.args = message.replace(self.secret, "<token>"), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and self.secret in record.exc_text:
            record.exc_text = record.exc_text.replace(self.secret, "<token>")
        return True


def _route_logs(token: str) -> None:
    """discord.py's log records go through okdbot's handlers, all redacting the token."""
    ours = logging.getLogger("okdbot")
    handlers = ours.handlers or [logging.StreamHandler()]
    for handler in handlers:
        handler.addFilter(_Redact(token))
    theirs = logging.getLogger("discord")
    theirs.handlers[:] = handlers
    theirs.setLevel(logging.INFO if ours.getEffectiveLevel() <= logging.DEBUG else logging.WARNING)
    theirs.propagate = False


class ShardedOkdBot(OkdBot, commands.AutoShardedBot):
    """okdbot for deployments in many servers: discord.py's AutoShardedBot, with
    the shard count from config (discord.shards)."""


def make_bot(settings: Settings, **kwargs) -> OkdBot:
    """A plain bot, or an auto-sharded one when discord.shards is set."""
    shards = settings.discord.shards
    if shards:
        return ShardedOkdBot(settings, shard_count=shards, **kwargs)
    return OkdBot(settings, **kwargs)


def run(settings: Settings, token: str, *, sync: bool = False, watch: bool = False) -> None:
    """Run the bot until interrupted; Discord's refusals become one-line DiscordErrors."""
    _route_logs(token)
    bot = make_bot(settings, feedback=FeedbackStore(feedback_path(settings)), sync=sync, watch=watch)

    async def main() -> None:
        async with bot:
            await bot.start(token)

    try:
        asyncio.run(main())
    except discord.LoginFailure:
        raise DiscordError("Discord rejected the token in DISCORD_TOKEN; copy it again from the developer "
                           "portal (Applications → your bot → Bot → Reset Token)") from None
    except discord.PrivilegedIntentsRequired:
        raise DiscordError("Discord refused an intent this bot asked for; enable it in the developer portal") from None
    except (aiohttp.ClientError, discord.GatewayNotFound, discord.ConnectionClosed) as exc:
        raise DiscordError(f"cannot reach Discord ({type(exc).__name__}); check the network and try again") from None
    except discord.HTTPException as exc:
        raise DiscordError(f"Discord refused a request (HTTP {exc.status}); try again later") from None
