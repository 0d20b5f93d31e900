"""The Discord permissions the bot needs, in one place.

The bot checks `needed_in` before it posts in a channel; `needed` is the union
of those checks over every place the bot may post, and is what `okdbot invite`
asks for, what `okdbot doctor` lists and what the README's invite carries. So
the invite can ask neither for less than the bot checks nor for more.
discord is imported only to build the URL.
"""

from __future__ import annotations

import base64
import binascii

SCOPES = ("bot", "applications.commands")
# discord.Permissions flag → its name in Discord's settings, in the order Discord lists them
LABELS = {
    "view_channel": "View Channels",
    "send_messages": "Send Messages",
    "send_messages_in_threads": "Send Messages in Threads",
    "create_public_threads": "Create Public Threads",
    "embed_links": "Embed Links",
    "read_message_history": "Read Message History",
}


def needed_in(thread: bool, opens_thread: bool = False) -> tuple[str, ...]:
    """What answering in one channel takes: seeing it, posting there (in a thread:
    Send Messages in Threads), embeds, and replying to a message (Read Message
    History); opening a thread from a message adds Create Public Threads and
    posting in that thread."""
    names = ["view_channel", "send_messages_in_threads" if thread else "send_messages",
             "embed_links", "read_message_history"]
    if opens_thread:
        names += ["create_public_threads", "send_messages_in_threads"]
    return _ordered(names)


def needed(threads: bool) -> tuple[str, ...]:
    """Everything the bot checks, wherever it may post: channels and threads,
    and with discord.threads on, opening threads."""
    places = [(False, False), (True, False)] + ([(False, True)] if threads else [])
    return _ordered([name for thread, opens in places for name in needed_in(thread, opens)])


def missing(permissions, names: tuple[str, ...]) -> list[str]:
    """Of `names`, those a discord.Permissions does not grant."""
    return [name for name in names if not getattr(permissions, name)]


def labels(names) -> str:
    return ", ".join(LABELS[name] for name in names)


def permissions_value(threads: bool) -> int:
    """The `permissions=` number of the invite."""
    import discord

    return discord.Permissions(**dict.fromkeys(needed(threads), True)).value


def invite_url(client_id: int, threads: bool, guild_id: int | None = None) -> str:
    """The OAuth2 URL that adds the bot to a server with exactly what it needs."""
    import discord

    extra = {"guild": discord.Object(guild_id)} if guild_id else {}
    return discord.utils.oauth_url(client_id, permissions=discord.Permissions(permissions_value(threads)),
                                   scopes=SCOPES, **extra)


def client_id_from_token(token: str | None) -> int | None:
    """The bot's id, which a bot token starts with (base64): for bots the
    application id. None when the token is not shaped like one."""
    head = (token or "").split(".")[0].replace("-", "+").replace("_", "/")
    try:
        text = base64.b64decode(head + "=" * (-len(head) % 4), validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return int(text) if text.isdigit() and 15 <= len(text) <= 21 else None


def _ordered(names) -> tuple[str, ...]:
    return tuple(name for name in LABELS if name in set(names))
