"""What the bot shows on Discord besides the answer text: the embeds built from
answer.py's plain layout, the 👍/👎 buttons and the form a 👎 opens, private
notes to one user, and the Korean descriptions of /ask."""

from __future__ import annotations

import logging
import re

import discord
from discord import app_commands
from discord.app_commands import locale_str

from .answer import DiscordReply, EmbedSpec, strings
from .feedback import COMMENT_MAX, REASONS
from .question import clean_text
from .redact import scrub
from .retrieve import is_korean

log = logging.getLogger("okdbot")

VOTE_ID = r"okdbot:vote:(?P<vote>up|down):(?P<answer>[0-9]+)"
WHY_ID = r"okdbot:why:(?:(?P<lang>ko|en):)?(?P<answer>[0-9]+)"  # the language the form was shown in


class KoreanTranslator(app_commands.Translator):
    """Korean descriptions for /ask, taken from messages.STRINGS["ko"]."""

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
        """Record the vote at once (a 👎 whose form is dismissed still counts), then
        thank the voter, or for a 👎 ask what was wrong."""
        bot = interaction.client
        korean = interaction.locale is discord.Locale.korean
        try:
            question = await bot.in_db(bot.feedback.vote, self.answer_id, interaction.user.id, self.vote)
        except Exception:
            log.exception("storing a vote failed")
            await tell_privately(interaction, strings(korean)["error"])
            return
        log.info("vote %s on answer %d", self.vote, self.answer_id)
        korean = korean or is_korean(question or "")
        ui = strings(korean)
        if question is None:
            log.warning("vote on unknown answer %d (was the feedback database replaced?)", self.answer_id)
        elif self.vote == "down":
            form = WhyModal(self.answer_id, korean)
            await interaction.response.send_modal(form)
            form.stop()  # its answers are read from the submission itself (submit_why), whenever it comes
            return
        await interaction.response.send_message(ui["thanks"], ephemeral=True)


class WhyModal(discord.ui.Modal):
    """What a 👎 says was wrong: one of feedback.REASONS and, optionally, a few words.
    Only the form: its submission is handled by submit_why, from what Discord sends, so a
    form filled in after a restart of the bot, or after any length of time, still counts."""

    def __init__(self, answer_id: int, korean: bool) -> None:
        ui = strings(korean)
        super().__init__(title=ui["why_title"], custom_id=f"okdbot:why:{'ko' if korean else 'en'}:{answer_id}")
        self.reason = discord.ui.Select(custom_id="reason", options=[
            discord.SelectOption(label=ui[f"reason_{key}"], value=key) for key in REASONS])
        self.comment = discord.ui.TextInput(custom_id="comment", style=discord.TextStyle.paragraph,
                                            required=False, max_length=COMMENT_MAX)
        self.add_item(discord.ui.Label(text=ui["why_reason"], component=self.reason))
        self.add_item(discord.ui.Label(text=ui["why_comment"], component=self.comment))


async def submit_why(interaction: discord.Interaction) -> None:
    """Store what a submitted 👎 form says (feedback.explain) and thank the user; any other
    modal submission is left alone. The answer comes from the form's id, the reason must
    be one of REASONS, the comment is cleaned and cut to COMMENT_MAX."""
    data = interaction.data or {}
    match = re.fullmatch(WHY_ID, str(data.get("custom_id", "")))
    if interaction.type is not discord.InteractionType.modal_submit or not match:
        return
    values = _form_values(data.get("components"))
    ui = strings(match["lang"] == "ko" if match["lang"] else interaction.locale is discord.Locale.korean)
    chosen, written = values.get("reason"), values.get("comment")
    reason = chosen[0] if isinstance(chosen, list) and chosen and isinstance(chosen[0], str) else ""
    comment = clean_text(written)[:COMMENT_MAX] if isinstance(written, str) else ""
    if reason not in REASONS:
        log.warning("a 👎 form for answer %s came back without a known reason: refused", match["answer"])
        await tell_privately(interaction, ui["error"])
        return
    bot = interaction.client
    try:
        await bot.in_db(bot.feedback.explain, int(match["answer"]), interaction.user.id, reason, comment)
    except Exception:
        log.exception("storing why an answer was wrong failed")
        await tell_privately(interaction, ui["error"])
        return
    log.info("reason %s for the 👎 on answer %s", reason, match["answer"])
    await interaction.response.send_message(ui["thanks"], ephemeral=True)


def _form_values(components, depth: int = 0) -> dict:
    """custom_id → value(s) of every input in a submitted form (inputs sit in labels or rows);
    anything not shaped as Discord sends it is skipped."""
    found: dict = {}
    if not isinstance(components, list) or depth > 3:
        return found
    for component in components:
        if not isinstance(component, dict):
            continue
        if isinstance(component.get("custom_id"), str) and ("values" in component or "value" in component):
            found[component["custom_id"]] = component.get("values", component.get("value"))
        inner = component.get("components") if "components" in component else [component.get("component")]
        found.update(_form_values(inner, depth + 1))
    return found


def vote_view(answer_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(VoteButton(answer_id, "up"))
    view.add_item(VoteButton(answer_id, "down"))
    return view


def answer_id_of(message: discord.Message) -> int | None:
    """The answer id a message of ours carries in its vote buttons (None for other messages)."""
    for row in message.components:
        for item in getattr(row, "children", []):
            match = re.fullmatch(VOTE_ID, getattr(item, "custom_id", None) or "")
            if match:
                return int(match["answer"])
    return None


def to_embed(spec: EmbedSpec) -> discord.Embed:
    """The embed, with the bot's token masked wherever a note or a question put it."""
    embed = discord.Embed(title=scrub(spec.title), description=scrub(spec.description) or None,
                          url=spec.url or None, colour=spec.colour)
    for name, value in spec.fields:
        embed.add_field(name=scrub(name), value=scrub(value), inline=False)
    if spec.footer:
        embed.set_footer(text=scrub(spec.footer))
    return embed


def message_kwargs(reply: DiscordReply, answer_id: int) -> dict:
    """Keyword arguments for send()/reply(): the answer plus its vote buttons."""
    kwargs: dict = {"embeds": [to_embed(e) for e in reply.embeds], "view": vote_view(answer_id)}
    if reply.content:
        kwargs["content"] = scrub(reply.content)
    return kwargs


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
