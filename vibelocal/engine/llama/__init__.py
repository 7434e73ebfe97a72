"""The llama.cpp engine (the only package that imports llama_cpp): load a GGUF from a plan, stream turns.

Generation drives `Llama.eval` with token lists and one persistent sampler chain per turn, never
`create_completion` (which re-detokenizes the whole output every step). Text is decoded incrementally
from cached token pieces; think tags are found in that text (turn.py), never by token id. llama.cpp's
logging is captured into a ring buffer, never printed; its last error line explains a failed load. Every
llama.cpp call of a model's life runs on one engine thread that owns the model (owner.py).

- loading.py: `load(model, plan, spec)` with the output probe and safer retries, on a new engine thread;
- runtime.py: `LlamaEngine`, the ChatEngine implementation, and its concurrency contract;
- owner.py: the engine thread and the batched event hand-over to consumers;
- logs.py: llama.cpp's log capture.
"""

from vibelocal.engine.llama.loading import load
from vibelocal.engine.llama.logs import llama_log_lines
from vibelocal.engine.llama.runtime import EngineClosedError, LlamaEngine, LogitsProcessor

__all__ = ["EngineClosedError", "LlamaEngine", "LogitsProcessor", "llama_log_lines", "load"]
