"""The Korean analyser (Kiwi) as okdbot uses it, and its child process.

Loading Kiwi costs about a second of CPU and holds Python's GIL, so a cold
Korean question runs it in a forked child process that writes the question's
tokens back through a pipe. This module imports only the standard library and
okdbot's word list, so `okdbot query` can start that child first thing, before
it reads its configuration (start_early); lexical.Analyzer takes it over.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import threading

from .lexicon import NOUNS

KEEP_TAGS = {"NNG", "NNP", "NNB", "NR", "SH", "XR", "VV", "VA"}
STOP = {
    # function-like nouns, light verbs and question words: they carry no topic
    "것", "수", "거", "등", "때", "중", "데", "개", "번", "뿐", "통하", "위하", "대하", "관하",
    "하", "되", "있", "없", "이", "알", "알리", "주", "말하", "뭐", "무엇", "어떻", "어떠",
    "어떤", "무슨", "왜", "언제", "어디", "누구", "쓰", "사용", "좀", "제일", "가장", "뜻", "의미",
    "설명", "이름", "궁금", "질문", "방법", "방식", "법", "같", "싶",
}
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_early: list[tuple[int, int, frozenset[str]]] = []  # children started by start_early: (pid, pipe, texts)
EARLY_TEXTS, EARLY_CHARS = 4, 4000  # what start_early sends at most: their tokens fit a pipe's buffer


def has_hangul(text: str) -> bool:
    return bool(_HANGUL.search(text))


def new_kiwi():
    """Kiwi as the index uses it: no typo, multi-word or default user dictionary (they
    cost memory and start-up time and, measured on eval/*.yaml, no answer quality),
    plus okdbot's IT loanwords."""
    from kiwipiepy import Kiwi

    kiwi = Kiwi(load_typo_dict=False, load_multi_dict=False, load_default_dict=False)
    for word in NOUNS:
        kiwi.add_user_word(word, "NNG", 0)
    return kiwi


def content_forms(morphs) -> list[str]:
    """Content morphemes of a Kiwi analysis (particles, endings, stopwords dropped)."""
    return [m.form for m in morphs if m.tag.split("-")[0] in KEEP_TAGS and m.form not in STOP]


def start_early(texts: list[str]) -> None:
    """Start analysing the Hangul `texts` in a child process now, at a program's very
    start: a cold Korean question waits for the analyser's load, not for the rest. An
    Analyzer asked to prefetch the same texts later takes the child over (take_early);
    stop_early ends a child nobody took. A handful of texts at most (their answer must
    fit the pipe: a child never blocks writing it)."""
    texts = [t for t in dict.fromkeys(texts) if has_hangul(t)][:EARLY_TEXTS]
    if not texts or sum(map(len, texts)) > EARLY_CHARS:
        return
    child = fork_analysis(texts)
    if child:
        _early.append((*child, frozenset(texts)))


def stop_early() -> None:
    """End and reap the early children no Analyzer took over (their texts were not the
    question, or the program stopped before asking it)."""
    while _early:
        pid, read_end, _ = _early.pop()
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.close(read_end)
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, 0)


def take_early(texts: list[str]) -> tuple[int, int] | None:
    """(pid, pipe) of an early child that analyses all of `texts`, no longer listed."""
    for i, (pid, read_end, analysed) in enumerate(_early):
        if analysed.issuperset(texts):
            del _early[i]
            return pid, read_end
    return None


def fork_analysis(texts: list[str]) -> tuple[int, int] | None:
    """(pid, read end of its pipe) of a forked child that writes `texts`' tokens as JSON;
    None where forking is unsafe (a process with threads) or impossible."""
    if not hasattr(os, "fork") or threading.active_count() > 1:
        return None
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return None
    if pid == 0:  # the child: analyse, write JSON, leave without any cleanup of the parent's state
        status = 1
        try:
            os.close(read_end)
            _detach_streams()  # a pipe reading the program's output must not wait for this child
            kiwi = new_kiwi()
            payload = {t: content_forms(kiwi.tokenize(t)) for t in texts}
            with os.fdopen(write_end, "wb") as out:
                out.write(json.dumps(payload, ensure_ascii=False).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    return pid, read_end


def _detach_streams() -> None:
    """Point the child's stdin, stdout and stderr at /dev/null (it prints nothing)."""
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
