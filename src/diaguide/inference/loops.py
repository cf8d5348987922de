"""Stop a reply that has started to loop: a line written a second time.

A small model at the end of a long medication list sometimes writes the list again, and again, until the
token limit: seconds of decoding for nothing, and an answer cut off anyway. In our format every line is one
fact (`prompts/target.py`), so a whole line repeated word for word is never new information: the engines stop
there, drop the repeated line, and return the reply as not finished (it has no `END`), which the shared path
treats like any cut-off reply (strict retry, then `partial`, never passed off as whole).

`LineLoops` works on token ids, so the llama.cpp engine can check each new line as it is written, the
transformers engine as a stopping criterion, and either one can cut a finished reply afterwards.
"""

from __future__ import annotations

from typing import Any


class LineLoops:
    """Finds the first line of a reply that repeats an earlier line of it.

    Args:
        tokenizer: the HF tokenizer that decodes the reply's token ids.
    """

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self._newline: dict[int, bool] = {}  # token id -> its text holds a line break

    def ends_line(self, token: int) -> bool:
        known = self._newline.get(token)
        if known is None:
            known = self._newline[token] = "\n" in self.tokenizer.decode([token])
        return known

    def check(self, tokens: list[int]) -> int | None:
        """When the last token ends a line that the reply already wrote: the index of the first token of that
        line (the reply is `tokens[:index]` without it); else None. Cheap unless the last token ends a line."""
        if not tokens or not self.ends_line(tokens[-1]):
            return None
        lines = self.tokenizer.decode(tokens, skip_special_tokens=True).split("\n")[:-1]
        last = lines[-1].strip() if lines else ""
        if not last or last not in {line.strip() for line in lines[:-1]}:
            return None
        for i in range(len(tokens) - 2, -1, -1):  # the line began after the previous line break
            if self.ends_line(tokens[i]):
                return i + 1
        return 0

    def first(self, tokens: list[int]) -> int | None:
        """`check` over a whole reply: where its first repeated line begins, or None."""
        for end in range(1, len(tokens) + 1):
            if self.ends_line(tokens[end - 1]):
                cut = self.check(tokens[:end])
                if cut is not None:
                    return cut
        return None
