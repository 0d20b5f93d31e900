"""Discord's documented message limits, checked on what the bot would send."""

from __future__ import annotations

CONTENT_MAX = 2000
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELD_VALUE_MAX = 1024
EMBED_TOTAL_MAX = 6000
EMBEDS_MAX = 10


def discord_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def assert_within_limits(payload: dict) -> None:
    """`payload`: a message body as sent to Discord (content, embeds as dicts)."""
    assert discord_len(payload.get("content") or "") <= CONTENT_MAX
    embeds = payload.get("embeds") or []
    assert len(embeds) <= EMBEDS_MAX
    total = 0
    for embed in embeds:
        title, description = embed.get("title", ""), embed.get("description", "")
        footer = (embed.get("footer") or {}).get("text", "")
        assert discord_len(title) <= TITLE_MAX
        assert discord_len(description) <= DESCRIPTION_MAX
        for f in embed.get("fields", []):
            assert discord_len(f["value"]) <= FIELD_VALUE_MAX
            total += discord_len(f["name"]) + discord_len(f["value"])
        total += discord_len(title) + discord_len(description) + discord_len(footer)
    assert total <= EMBED_TOTAL_MAX


def reply_payload(reply) -> dict:
    """An answer.DiscordReply as the JSON body discord.py would send."""
    return {"content": reply.content, "embeds": [
        {"title": e.title, "description": e.description, "footer": {"text": e.footer},
         "fields": [{"name": n, "value": v} for n, v in e.fields]} for e in reply.embeds]}
