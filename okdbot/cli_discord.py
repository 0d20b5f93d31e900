"""Command line, the commands around the Discord bot: `okdbot discord`, `feedback`, `gaps`, `invite`.

Part of okdbot/cli.py (which dispatches them and turns errors into messages).
"""

from __future__ import annotations

import argparse
import json
import logging

log = logging.getLogger("okdbot")


def discord_commands(sub, common: argparse.ArgumentParser) -> None:
    """`okdbot discord` and the commands around it: feedback, gaps, invite."""
    p = sub.add_parser("discord", parents=[common], help="run the Discord bot (token from $DISCORD_TOKEN)",
                       description="Run the Discord bot: /ask, @mentions and replies. The token is read from "
                                   "the DISCORD_TOKEN environment variable only.")
    p.add_argument("--sync", action="store_true",
                   help="register the slash commands now, even if unchanged since the last sync")
    p.add_argument("--watch", action="store_true",
                   help="re-index when notes change, so answers follow edits without a restart")
    p.set_defaults(func=cmd_discord)

    p = sub.add_parser("feedback", parents=[common], help="list the 👍/👎 votes on the bot's answers",
                       description="List votes on the Discord bot's answers, newest first, with the question, "
                                   "the cited passages, the index generation and what a 👎 said was wrong.")
    p.add_argument("--bad", action="store_true", help="only 👎 votes")
    p.add_argument("--json", action="store_true", help="one JSON object per vote per line")
    p.set_defaults(func=cmd_feedback)

    p = sub.add_parser("gaps", parents=[common], help="questions the notes answer badly, by nearest section",
                       description="List the questions the bot declined (not in the notes) or that got a 👎, "
                                   "grouped by their nearest section and counted, newest first: the notes to write.")
    p.add_argument("--since", type=_days, metavar="DAYS", help="only questions asked in the last DAYS days")
    p.add_argument("--json", action="store_true", help="one JSON object per section per line")
    p.set_defaults(func=cmd_gaps)

    p = sub.add_parser("invite", parents=[common], help="print the URL that adds the bot to a server",
                       description="Print the invite URL with the scopes and exactly the permissions the bot "
                                   "needs (with discord.threads: also Create Public Threads).")
    p.add_argument("--client-id", type=_discord_id, metavar="ID", help="the application id (default: read from "
                                                                "$DISCORD_TOKEN, which starts with it)")
    p.add_argument("--guild", type=_discord_id, metavar="ID", help="preselect this server (default: discord.guild_id)")
    p.set_defaults(func=cmd_invite)


def _bot_reload(started, args):
    """The edited config for the bot's watcher. Its model and index folder are the ones the
    running bot answers with: a change of either needs a restart (ConfigError says so)."""
    from .errors import ConfigError

    new = _settings(args)
    if (new.model, new.index_dir) != (started.model, started.index_dir):
        raise ConfigError("the model or the index folder changed: restart the bot (okdbot discord) to use them")
    return new


def cmd_discord(args) -> int:
    from .config import discord_token
    from .errors import ConfigError

    token = discord_token()
    if token is None:
        raise ConfigError("DISCORD_TOKEN is not set; export the bot token from the Discord developer portal "
                          "(see docs/discord.md) and run again")
    settings = _settings(args)
    from .discord_bot import run

    run(settings, token, sync=args.sync, watch=args.watch, reload=lambda: _bot_reload(settings, args))
    return 0


def cmd_feedback(args) -> int:
    from .feedback import REASONS, feedback_path

    store = _existing_store(feedback_path(_settings(args)), "no feedback yet")
    if store is None:
        return 0
    for vote in store.votes(bad_only=args.bad):
        if args.json:
            print(json.dumps(vote.to_json(), ensure_ascii=False), flush=True)
            continue
        mark = "👍" if vote.vote == "up" else "👎"
        status = "" if vote.answered else "  (not in the notes)"
        print(f"{vote.time}  {mark}  #{vote.answer_id}  {vote.question}{status}  [{vote.generation}]")
        if vote.context:
            print(f"    (a follow-up to: {vote.context})")
        if vote.reason:
            print(f"    wrong: {REASONS.get(vote.reason, vote.reason)}" + (f": {vote.comment}" if vote.comment else ""))
        for c in vote.citations:
            print(f"    {c['heading']}\n      {c['url']}")


def _existing_store(path, nothing: str):
    """The bot's feedback database at `path`, or None (said on stderr) when the bot has not made it yet."""
    from .errors import OkdbotError
    from .feedback import FeedbackStore

    if path.is_dir():
        raise OkdbotError(f"the feedback database {path} is a folder; move it aside or set discord.feedback_db "
                          "in okdbot.yaml to a file")
    if not path.is_file():
        log.info("%s: %s does not exist (the bot creates it with its first answer)", nothing, path)
        return None
    return FeedbackStore(path)


def _discord_id(text: str) -> int:
    """A Discord id (a snowflake): a whole number above 0 that fits in 64 bits."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 0 < value < 2**64:
        raise argparse.ArgumentTypeError(f"{text!r} is not a Discord id (a number such as 123456789012345678)")
    return value


def _days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        days = -1.0
    if not days > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days above 0, e.g. --since 30")
    return days


def cmd_gaps(args) -> int:
    from datetime import datetime, timedelta, timezone

    from .feedback import REASONS, feedback_path

    store = _existing_store(feedback_path(_settings(args)), "no questions yet")
    if store is None:
        return 0
    try:
        since = datetime.now(timezone.utc) - timedelta(days=args.since) if args.since else None
    except OverflowError:  # more days than the calendar holds: every question
        since = None
    for gap in store.gaps(since):
        if args.json:
            print(json.dumps(gap.to_json(), ensure_ascii=False), flush=True)
            continue
        counts = gap.to_json()
        print(f"{counts['count']:>3}  {gap.heading or '(no section recorded)'}  "
              f"({counts['declined']} not in the notes, {counts['down']} 👎)")
        if gap.url:
            print(f"     {gap.url}")
        for q in gap.questions:
            why = "; ".join([REASONS.get(r, r) for r in q.reasons] + q.comments)
            mark = " + ".join(["not in the notes"] * q.declined + ["👎"] * (q.down > 0))
            print(f"     {q.time}  {mark}  {q.question}" + (f"  [{why}]" if why else ""))
    return 0


def cmd_invite(args) -> int:
    from .config import discord_token
    from .errors import ConfigError
    from .invite import client_id_from_token, invite_url, labels, needed, permissions_value

    settings = _settings(args)
    client_id = args.client_id or client_id_from_token(discord_token())
    if client_id is None:
        where = "(Developer Portal → your application → General Information → Application ID)"
        if discord_token():
            raise ConfigError("DISCORD_TOKEN is set but is not shaped like a bot token (which starts with the "
                              f"application id): check it, or pass --client-id ID {where}")
        raise ConfigError(f"no application id: pass --client-id ID {where} or set DISCORD_TOKEN")
    threads = settings.discord.threads
    log.info("permissions: %s (%d)", labels(needed(threads)), permissions_value(threads))
    print(invite_url(client_id, threads, args.guild or settings.discord.guild_id))
    return 0


def _settings(args):
    from .config import load_settings

    return load_settings(args.config, index=args.index)

