"""Command line: `okdbot index`, `okdbot query`, …

Only this module (and the Discord bot) turns OkdbotError into messages: one
line on stderr, a non-zero exit, no traceback. Heavy libraries are imported
inside the commands that need them, so `okdbot --help` stays instant.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from . import __version__

log = logging.getLogger("okdbot")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose, args.quiet)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from .errors import OkdbotError

    try:
        return args.func(args) or 0
    except OkdbotError as exc:
        print(f"okdbot: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("okdbot: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: one line, the traceback only with --verbose
        log.debug("traceback", exc_info=True)
        print(f"okdbot: internal error: {type(exc).__name__}: {exc} (run with --verbose for details)", file=sys.stderr)
        return 70


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="okdbot", description="Answer questions about OKD from Markdown notes, with quotes and links.")
    parser.add_argument("--version", action="version", version=f"okdbot {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", help="okdbot.yaml to use (default: ./okdbot.yaml or $OKDBOT_CONFIG)")
    common.add_argument("--index", metavar="DIR", help="index folder (default: from the config, or ./index)")
    common.add_argument("-v", "--verbose", action="store_true", help="log more (DEBUG)")
    common.add_argument("-q", "--quiet", action="store_true", help="log only errors")
    sub = parser.add_subparsers(metavar="COMMAND")

    p = sub.add_parser("index", parents=[common], help="build or update the index (only changed notes are re-embedded)",
                       description="Build or update the index. Unchanged chunks are reused; only new or edited ones are embedded.")
    p.add_argument("--corpus", metavar="DIR", help="index this folder instead of the configured sources")
    p.add_argument("--source-url", metavar="BASE", help="link base for --corpus, e.g. https://github.com/o/r/blob/main/docs/")
    p.add_argument("--full", action="store_true", help="re-embed everything instead of reusing unchanged chunks")
    p.add_argument("--json", action="store_true", help="print one JSON object with the build's numbers")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("query", parents=[common], help="answer a question with quotes from the notes",
                       description="Answer QUESTION, or each line of stdin when QUESTION is omitted.")
    p.add_argument("question", nargs="?", metavar="QUESTION", help="the question (omit to read one per line from stdin)")
    p.add_argument("-k", type=int, metavar="N", help="at most N passages (default from config: 5)")
    p.add_argument("--json", action="store_true", help="one JSON object per question per line")
    p.set_defaults(func=cmd_query)
    return parser


def _setup_logging(verbose: bool, quiet: bool) -> None:
    level = logging.DEBUG if verbose else logging.ERROR if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("okdbot: %(levelname)s: %(message)s"))
    root = logging.getLogger("okdbot")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _settings(args, **overrides):
    from .config import load_settings

    return load_settings(args.config, index=args.index, **overrides)


def cmd_index(args) -> int:
    from .runtime import build

    settings = _settings(args, corpus=args.corpus, source_url=args.source_url)
    report = build(settings, full=args.full)
    if args.json:
        print(json.dumps(report.public(), ensure_ascii=False))
    else:
        log.info("indexed %d files: %d chunks (%d embedded, %d reused, %d removed) in %.1f s → %s",
                 report.files, report.chunks, report.embedded, report.reused, report.removed,
                 report.seconds, report.index)
    return 0


def cmd_query(args) -> int:
    from .errors import BadQuestion
    from .question import check_question
    from .runtime import load_retriever

    settings = _settings(args)
    if args.question is not None:
        checked = check_question(args.question)  # fail fast, before loading any model
    if args.k is not None and not 1 <= args.k <= 50:
        raise BadQuestion("-k must be between 1 and 50")
    retriever = load_retriever(settings, build_if_missing=True,
                               questions=[checked] if args.question is not None else None)
    from .answer import to_json, to_text  # after load_retriever: it starts the Korean analyser first
    questions = [args.question] if args.question is not None else (line.rstrip("\n") for line in sys.stdin)
    failed = 0
    for question in questions:
        if args.question is None and not question.strip():
            continue
        try:
            result = retriever.search(question, args.k)
        except BadQuestion as exc:
            if args.question is not None:
                raise
            failed += 1
            print(f"okdbot: error: {exc}", file=sys.stderr)
            if args.json:
                print(json.dumps({"question": question[:200], "answered": False, "passages": [],
                                  "error": str(exc)}, ensure_ascii=False), flush=True)
            continue
        if args.json:
            print(json.dumps(to_json(result), ensure_ascii=False), flush=True)
        else:
            print(to_text(result), flush=True)
            if args.question is None:
                print()
    return 1 if failed else 0
