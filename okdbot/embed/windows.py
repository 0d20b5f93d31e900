"""Windows: a long text cut into pieces that each fit a model's token limit."""

from __future__ import annotations


class WindowSplitter:
    """Splits text into windows of at most `max_tokens` model tokens (special
    tokens and the document prompt included). The first line (the heading
    path) is repeated at the top of every window; body lines are packed whole,
    and a single line longer than a window is cut at token boundaries."""

    def __init__(self, tokenizer, max_tokens: int, prompt: str = ""):
        self.tokenizer = tokenizer
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.special = len(tokenizer.encode("", add_special_tokens=True).ids)
        self.budget = max_tokens - self.special - (self.count(prompt) if prompt else 0)
        self.max_tokens = max_tokens

    def count(self, text: str) -> int:
        """Model tokens of `text`, without special tokens."""
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def split(self, text: str) -> list[str]:
        if self.count(text) <= self.budget:
            return [text]
        head, _, body = text.partition("\n")
        prefix = head + "\n" if self.count(head) <= self.budget // 2 else ""
        room = self.budget - self.count(prefix) - 1
        windows: list[str] = []
        current: list[str] = []
        used = 0
        for line in body.split("\n") if prefix else text.split("\n"):
            for piece in self._cut(line, room):
                size = self.count(piece) + 1  # +1: the joining newline may count
                if current and used + size > room:
                    windows.append(prefix + "\n".join(current))
                    current, used = [], 0
                current.append(piece)
                used += size
        if current:
            windows.append(prefix + "\n".join(current))
        return [w for window in windows for w in self._verify(window)]

    def _cut(self, line: str, room: int) -> list[str]:
        """A line that fits, or its pieces of at most `room` tokens, cut between words where possible."""
        encoding = self.tokenizer.encode(line, add_special_tokens=False)
        offsets = encoding.offsets
        if len(offsets) <= room:
            return [line]
        pieces, i = [], 0
        while i < len(offsets):
            j = min(i + room, len(offsets))
            if j < len(offsets):
                for t in range(j, i + room // 2, -1):
                    if offsets[t][0] > 0 and line[offsets[t][0] - 1].isspace():
                        j = t
                        break
            end = offsets[j][0] if j < len(offsets) else len(line)
            pieces.append(line[offsets[i][0]:end].rstrip())
            i = j
        return pieces

    def _verify(self, window: str) -> list[str]:
        """Guard against tokenizers whose counts are not additive across lines."""
        if self.count(window) <= self.budget:
            return [window]
        half = max(1, len(window) // 2)
        return self._verify(window[:half]) + self._verify(window[half:])
