"""A scripted 'model' for the tiny qwen2 GGUF: a logits processor that greedy-decodes a script."""

from __future__ import annotations

import numpy as np

from vibelocal.engine.llama import LlamaEngine


class ScriptedModel:
    """Greedy-decodes a script: phases `think` (the start), `answer` (after an injected `</think>`),
    `boxed` (after an injected `\\boxed{`) and `wait` (after an injected `Wait`); end of a phase: `<|im_end|>`."""

    def __init__(self, *, special: bool = False) -> None:
        self.engine: LlamaEngine | None = None
        self.special = special
        """Tokenize scripts with special tokens parsed (a `<think>` added token is emitted as its id) and read
        injections with llama.cpp's own special-aware detokenizer."""
        self.vocab_sizes: set[int] = set()
        self.set()

    def set(self, think: str = "", answer: str = "", boxed: str = "", wait: str = "") -> None:
        self.texts = {"think": think, "answer": answer, "boxed": boxed, "wait": wait}
        self.tokens: dict[str, list[int]] | None = None
        self.phase = "think"
        self.pos = 0
        self.last: int | None = None

    def __call__(self, input_ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        assert self.engine is not None
        if self.tokens is None:
            self.tokens = {k: self.tokenize(v) for k, v in self.texts.items()}
        self.vocab_sizes.add(len(logits))
        if self.last is not None and len(input_ids) and input_ids[-1] != self.last:  # something was injected
            tail = self.detokenize(input_ids[-12:].tolist())
            phase = None
            if "</think>" in tail:
                phase = "answer"
            elif tail.rstrip().endswith("\\boxed{"):
                phase = "boxed"
            elif "Wait" in tail:
                phase = "wait"
            if phase and phase != self.phase:
                self.phase, self.pos = phase, 0
        script = self.tokens[self.phase]
        if self.pos < len(script):
            token = script[self.pos]
            self.pos += 1
        else:
            token = 151645  # <|im_end|>
        self.last = token
        out = np.full_like(logits, -np.inf)
        out[token] = 0.0
        return out

    def tokenize(self, text: str) -> list[int]:
        assert self.engine is not None
        if not self.special:
            return self.engine.tokenize(text)
        return self.engine._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def detokenize(self, tokens: list[int]) -> str:
        assert self.engine is not None
        if not self.special:
            return self.engine.detokenize(tokens)
        return self.engine._llm.detokenize(tokens, special=True).decode("utf-8", "replace")
