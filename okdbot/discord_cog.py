"""Asking on Discord: /ask, @mentions, replies and threads, as one discord.py Cog.

The Cog holds what a question goes through (which channels, the permissions
the bot checks there, the per-user cooldown, the conversation a follow-up is
read with, where the answer goes) and leaves the rest to the client
(okdbot.discord_bot): the model, the index, the worker pools.

With discord.threads, a question asked in a channel is answered in a thread
the bot opens (under the /ask answer, or from the asking message), and every
message in the bot's threads is a follow-up, read with the conversation so
far without a mention (the client then asks for the Message Content intent).
"""

from __future__ import annotations

import logging
import math
import re
import time

import discord
from discord import app_commands
from discord.app_commands import locale_str
from discord.ext import commands

from . import invite
from .answer import answer_log_line, discord_reply, strings, thread_name
from .errors import BadQuestion
from .question import clean_text
from .redact import scrub
from .retrieve import MAX_QUESTION_CHARS, Result, is_korean
from .discord_ui import answer_id_of, message_kwargs, tell_privately

log = logging.getLogger("okdbot")

QUESTION_MAX = 300  # /ask option length; the Discord client enforces it
_EN = strings(False)
_EVERYONE = re.compile(r"(?<!\S)@(?:everyone|here)\b")  # typed without the permission to ping: still for people


class NotAllowedHere(app_commands.CheckFailure):
    """/ask used outside the configured channel allowlist."""


class AskCog(commands.Cog):
    """/ask, mentions, replies to the bot's answers, and follow-ups in its threads."""

    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot
        self.settings = bot.settings.discord
        rate, per = self.settings.cooldown_rate, self.settings.cooldown_seconds
        self.cooldown = commands.CooldownMapping.from_cooldown(rate, per, lambda user_id: user_id) if rate > 0 else None
        self.told_to_wait: dict[int, float] = {}  # user → until when a mention's cooldown note covers them

    # ------------------------------------------------------------ /ask

    @app_commands.command(name="ask", description=locale_str(_EN["command"], key="command"))
    @app_commands.describe(question=locale_str(_EN["command_question"], key="command_question"))
    async def ask(self, interaction: discord.Interaction,
                  question: app_commands.Range[str, 1, QUESTION_MAX]) -> None:
        await interaction.response.defer(thinking=True)
        channel = interaction.channel
        ours = self.in_our_thread(channel)  # there, /ask is read with the thread's conversation, as a message is
        result, answer_id = await self.answer(question, asker=interaction.user.id, channel=interaction.channel_id,
                                              via="/ask", context=await self.context_for(channel, None) if ours else "",
                                              thread=channel.id if ours else None)
        sent = await interaction.followup.send(**message_kwargs(discord_reply(result, echo_question=True), answer_id),
                                               wait=True)
        threadable = not invite.missing(interaction.app_permissions, invite.needed_in(False, True))
        if self.opens_thread(channel) and threadable:
            thread = await self.open_thread(channel, sent, result.question)
            if thread is not None:
                await self.remember_thread(answer_id, thread.id)

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """/ask check: allowed channel, then the per-user cooldown."""
        if not self.allowed_channel(interaction.channel):
            raise NotAllowedHere(self.settings.channels)
        limited = self.rate_limited(interaction.user.id)
        if limited:
            raise app_commands.CommandOnCooldown(*limited)
        return True

    async def cog_app_command_error(self, interaction: discord.Interaction,
                                    error: app_commands.AppCommandError) -> None:
        """Every /ask failure becomes a private message to the asker."""
        question = clean_text(str(getattr(interaction.namespace, "question", "") or ""))
        ui = strings(is_korean(question))
        original = getattr(error, "original", error)
        if isinstance(error, app_commands.CommandOnCooldown):
            text = ui["cooldown"].format(seconds=math.ceil(error.retry_after))
        elif isinstance(error, NotAllowedHere):
            text = ui["not_here"].format(channels=", ".join(f"<#{c}>" for c in error.args[0]))
        elif isinstance(original, BadQuestion):
            text = ui["too_long"].format(limit=MAX_QUESTION_CHARS) if question else ui["empty_ask"]
        else:
            name = interaction.command.name if interaction.command else "?"
            log.error("/%s failed", name, exc_info=(type(original), original, original.__traceback__))
            text = ui["error"]
        try:
            await tell_privately(interaction, text)
        except discord.HTTPException:
            log.warning("could not tell the user about the error", exc_info=True)

    # ------------------------------------------------- who may ask, how often

    @property
    def required_permissions(self) -> discord.Permissions:
        """All the permissions the bot checks before it posts (okdbot invite asks for these)."""
        return discord.Permissions(**dict.fromkeys(invite.needed(self.settings.threads), True))

    def cannot_post(self, channel, opens_thread: bool = False) -> list[str]:
        """The permissions the bot lacks to answer in `channel` (none in DMs)."""
        guild = getattr(channel, "guild", None)
        if guild is None:
            return []
        return invite.missing(channel.permissions_for(guild.me),
                              invite.needed_in(isinstance(channel, discord.Thread), opens_thread))

    async def hint_privately(self, message: discord.Message, missing: list[str], ui: dict[str, str]) -> None:
        """Tell the asker, by direct message, why no answer comes and what to do."""
        log.warning("cannot answer in channel %s: the bot lacks %s there", message.channel.id, invite.labels(missing))
        text = ui["no_permission"].format(channel=message.channel.mention, permissions=invite.labels(missing))
        try:
            await message.author.send(text)
        except discord.HTTPException:
            log.warning("could not tell the asker either (direct messages closed?)")

    def allowed_channel(self, channel) -> bool:
        allowed = self.settings.channels
        return not allowed or getattr(channel, "id", None) in allowed or getattr(channel, "parent_id", None) in allowed

    def rate_limited(self, user_id: int) -> tuple[app_commands.Cooldown, float] | None:
        """(bucket, seconds to wait) when the user asked too often, else None."""
        if self.cooldown is None:
            return None
        bucket = self.cooldown.get_bucket(user_id)
        retry = bucket.update_rate_limit() if bucket else None
        return (bucket, retry) if retry else None

    # ------------------------------------------------------------ answering

    async def answer(self, question: str, *, asker: int, channel: int | None, via: str,
                     context: str = "", thread: int | None = None) -> tuple[Result, int]:
        """Retrieve in the worker pool and record the answer; (result, answer id).
        A follow-up passes the conversation it replies to as `context`; an answer
        in one of the bot's threads, that `thread`."""
        started = time.perf_counter()
        # masked before anything reads or stores them: a later cut (the follow-up context's
        # last CONTEXT_CHARS, a link wrapped in <…>) could leave part of the token unmasked
        question, context = scrub(question), scrub(context)
        log.debug("question via %s: %r (context %r)", via, question, context)
        result, answer_id = await self.bot.in_pool(self._answer_blocking, question, asker, channel, context, thread)
        log.info("%s via=%s", answer_log_line(result, (time.perf_counter() - started) * 1000), via.lstrip("/"))
        return result, answer_id

    def _answer_blocking(self, question: str, asker: int, channel: int | None, context: str,
                         thread: int | None) -> tuple[Result, int]:
        result = self.bot.retriever.search(question, context=context)
        return result, self.bot.feedback.record_answer(result, asker, channel, thread)

    # ------------------------------------------------- mentions, replies, threads

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        asked = await self.asked(message)
        if asked is None:
            return
        earlier, via = asked
        question = clean_text(re.sub(rf"<@!?{self.bot.user.id}>", " ", message.content))
        if via == "thread" and not question:
            return  # an image or a sticker in our thread: nothing was asked
        ui = strings(is_korean(question))
        try:
            if not question and earlier is not None:  # a reply without its text: the language of the answer
                ui = strings(is_korean(await self.conversation(earlier)))
            await self.answer_message(message, question, ui, earlier, via)
        except Exception:
            log.exception("answering a message failed")
            try:
                await message.reply(ui["error"])
            except discord.HTTPException:
                log.warning("could not tell the user about the error", exc_info=True)

    async def asked(self, message: discord.Message) -> tuple[discord.Message | None, str] | None:
        """Whether `message` asks the bot something: (the answer of ours it replies
        to, how it asks: "reply", "mention" or "thread"), else None."""
        me = self.bot.user
        if me is None or message.author.bot or message.webhook_id is not None:
            return None
        if message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return None
        if message.reference is not None and message.reference.type == discord.MessageReferenceType.forward:
            return None  # a forward shares a message; it asks nothing
        if not self.allowed_channel(message.channel):
            return None
        to_me = any(user.id == me.id for user in message.mentions)  # a reply's ping counts too
        roles = [r for r in message.role_mentions if not (r.tags and r.tags.bot_id == me.id)]  # not the bot's own
        dm = isinstance(message.channel, discord.DMChannel)  # no one else there: "@here" is only words
        to_others = bool(any(user.id != me.id for user in message.mentions) or roles
                         or (not dm and (message.mention_everyone or _EVERYONE.search(message.content))))
        earlier = await self.replied_answer(message)
        if earlier is not None:  # a reply to our answer that names others is for them, unless it names us too
            named_me = re.search(rf"<@!?{me.id}>", message.content)
            return (earlier, "reply") if not to_others or named_me else None
        if to_me or (dm and not to_others):
            return None, "mention"  # in a direct message there is no one else to talk to
        if self.in_our_thread(message.channel) and not to_others and message.reference is None:
            return None, "thread"  # in our thread, a message addressed to no one else is a follow-up
        return None

    async def answer_message(self, message: discord.Message, question: str, ui: dict[str, str],
                             earlier: discord.Message | None, via: str) -> None:
        channel = message.channel
        opens = self.opens_thread(channel)
        missing = self.cannot_post(channel, opens)
        if opens and missing and not self.cannot_post(channel):
            log.warning("not opening threads in channel %s: the bot lacks %s there", channel.id,
                        invite.labels(missing))
            opens, missing = False, []
        if missing:
            if not self.rate_limited(message.author.id):  # a hint counts against the budget too
                await self.hint_privately(message, missing, ui)
            return
        if await self.refused(message, question, ui):
            return
        context = await self.context_for(channel, earlier)
        try:
            result, answer_id = await self.answer(question, asker=message.author.id, channel=channel.id, via=via,
                                                  context=context,
                                                  thread=channel.id if self.in_our_thread(channel) else None)
        except BadQuestion:
            await message.reply(ui["too_long"].format(limit=MAX_QUESTION_CHARS))
            return
        kwargs = message_kwargs(discord_reply(result), answer_id)
        thread = await self.open_thread(channel, message, result.question) if opens else None
        if thread is None:
            await message.reply(**kwargs)
            return
        await thread.send(**kwargs)
        await self.remember_thread(answer_id, thread.id)

    async def refused(self, message: discord.Message, question: str, ui: dict[str, str]) -> bool:
        """Say at once what needs no search (asked too often, no text, nothing asked); True if said."""
        limited = self.rate_limited(message.author.id)
        if limited:
            if not self.first_wait_note(message.author.id, limited[1]):
                return True  # told once for this wait: more notes would only add to the spam
            text = ui["cooldown"].format(seconds=math.ceil(limited[1]))
        elif not message.content:  # a reply that does not ping us arrives without its text
            text = ui["no_content"]
        elif not question:
            text = ui["empty"]
        else:
            return False
        await message.reply(text)
        return True

    def first_wait_note(self, user_id: int, retry_after: float) -> bool:
        """Whether a user over the budget by mention is told to wait now: once per wait."""
        now = time.monotonic()
        if self.told_to_wait.get(user_id, 0.0) > now:
            return False
        if len(self.told_to_wait) > 1000:  # forget waits that are over
            self.told_to_wait = {u: t for u, t in self.told_to_wait.items() if t > now}
        self.told_to_wait[user_id] = now + retry_after
        return True

    # ------------------------------------------------------------ threads

    def opens_thread(self, channel) -> bool:
        """discord.threads: a question in a text channel is answered in a new thread."""
        return self.settings.threads and isinstance(channel, discord.TextChannel)

    def in_our_thread(self, channel) -> bool:
        """A thread the bot opened, where follow-ups need no mention (discord.threads)."""
        me = self.bot.user
        return (self.settings.threads and isinstance(channel, discord.Thread) and me is not None
                and channel.owner_id == me.id)

    async def open_thread(self, channel: discord.TextChannel, starter: discord.Message,
                          question: str) -> discord.Thread | None:
        """A thread under `starter`, named after the question (None if Discord refuses)."""
        try:
            return await channel.create_thread(name=scrub(thread_name(question)), message=starter)
        except discord.HTTPException as exc:
            log.warning("could not open a thread in channel %s (%s); answering in place", channel.id, exc)
            return None

    async def remember_thread(self, answer_id: int, thread_id: int) -> None:
        """Record the thread an answer opened (so follow-ups there are read with it). Best
        effort: the answer is already posted, and a database error must not take it back."""
        try:
            await self.bot.in_db(self.bot.feedback.set_thread, answer_id, thread_id)
        except Exception:
            log.warning("could not record thread %s of answer %s", thread_id, answer_id, exc_info=True)

    async def context_for(self, channel, earlier: discord.Message | None) -> str:
        """The conversation a follow-up is read with: that of the answer it replies
        to, else that of the bot's thread it is asked in ("" for a new question)."""
        if earlier is not None:
            return await self.conversation(earlier)
        if self.in_our_thread(channel):
            return await self.bot.in_db(self.bot.feedback.thread_conversation, channel.id) or ""
        return ""

    async def replied_answer(self, message: discord.Message) -> discord.Message | None:
        """The bot's message that `message` replies to, if it replies to one."""
        ref = message.reference
        if ref is None or ref.message_id is None or self.bot.user is None:
            return None
        target = ref.resolved if isinstance(ref.resolved, discord.Message) else ref.cached_message
        if target is None:
            try:
                target = await message.channel.fetch_message(ref.message_id)
            except discord.HTTPException:
                return None
        return target if target.author.id == self.bot.user.id else None

    async def conversation(self, answer: discord.Message) -> str:
        """The question(s) behind one of our answers, read from its vote buttons'
        answer id ("" for a message that is not an answer, or an unknown one)."""
        answer_id = answer_id_of(answer)
        if answer_id is None:
            return ""
        return await self.bot.in_db(self.bot.feedback.conversation, answer_id) or ""
