"""A small pure-Python GGUF reader: header, metadata and tensor infos, never the weights themselves."""

from __future__ import annotations

import mmap
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from vibelocal.errors import ModelLoadError
from vibelocal.files import regular_size

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32

# ggml tensor types: id -> (name, elements per block, bytes per block). Mirrors ggml.h.
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 40),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2),
    34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17),
    40: ("NVFP4", 64, 36),
    41: ("Q1_0", 128, 18),
}

# general.file_type (llama_ftype) -> the quant name used in file names and manifests.
FILE_TYPES: dict[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4_MOE",
    39: "NVFP4",
    40: "Q1_0",
}

# GGUF metadata value types -> struct format (scalars); 8 = string, 9 = array.
_SCALARS: dict[int, str] = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9
# Arrays longer than this are skipped (vocabularies, merges); only their length is kept.
_MAX_KEPT_ARRAY = 64
_MIN_BYTES = {**{t: struct.calcsize(f) for t, f in _SCALARS.items()}, _STRING: 8, _ARRAY: 12}
"""The fewest bytes one array element of each type takes: a count above remaining/this is a lie."""

MAX_KEY_BYTES = 65_535
"""The GGUF spec's limit on a key's length."""
MAX_STRING_BYTES = 16 * 1024 * 1024
"""A metadata string (a chat template is the longest, tens of kB) longer than this is refused."""
MAX_ARRAY_DEPTH = 3
"""Arrays of arrays deeper than this are refused (no model uses nesting; recursion would)."""
MAX_TENSOR_NAME = 64
"""ggml's GGML_MAX_NAME."""

HEADER_BOUNDS: dict[str, tuple[int, int]] = {
    "block_count": (1, 512),  # llama.cpp's LLAMA_MAX_LAYERS
    "context_length": (1, 16 * 1024 * 1024),
    "embedding_length": (1, 1 << 17),
    "feed_forward_length": (0, 1 << 20),
    "attention.head_count": (1, 4096),
    "attention.head_count_kv": (0, 4096),
    "attention.key_length": (1, 1 << 14),
    "attention.value_length": (1, 1 << 14),
}
"""`{arch}.KEY` -> (least, most): a header outside these bounds is refused before llama.cpp sees it."""
_LAYER_TENSOR = re.compile(r"^blk\.(\d+)\.")


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as the header declares it."""

    name: str
    shape: tuple[int, ...]
    type_id: int
    offset: int
    """Relative to the start of the tensor data section."""
    n_bytes: int

    @property
    def type_name(self) -> str:
        return GGML_TYPES[self.type_id][0]


@dataclass(frozen=True)
class GgufInfo:
    """What the planner and the engine need to know about a GGUF file, read from its header alone."""

    path: Path
    version: int
    file_size: int
    architecture: str
    name: str | None
    n_layers: int
    n_ctx_train: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim_k: int
    head_dim_v: int
    vocab_size: int
    file_type: int | None
    quant: str
    """Quant name from general.file_type (e.g. Q4_K_M), else guessed from the commonest tensor type."""
    chat_template: str | None
    tensor_count: int
    data_offset: int
    tensor_data_bytes: int
    """Bytes of all tensors (what llama.cpp loads as weights), padding excluded."""
    layer_weight_bytes: tuple[int, ...]
    """Weight bytes of each repeating block `blk.N`, in layer order."""
    other_weight_bytes: int
    """Weight bytes outside the blocks: token embeddings, output norm and head."""
    output_weight_bytes: int
    """Bytes of the output head (`output.weight`); 0 when it is tied to the token embeddings."""
    n_ff: int = 0
    """Feed-forward width (`{arch}.feed_forward_length`); 0 when absent."""
    tensors: tuple[TensorInfo, ...] = ()
    tensor_types: dict[str, int] = field(default_factory=dict)
    """Tensor type name -> bytes of tensors of that type."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Every scalar key, strings included; long arrays appear as their length only."""

    @property
    def n_embd_k_gqa(self) -> int:
        return self.head_dim_k * self.n_head_kv

    @property
    def n_embd_v_gqa(self) -> int:
        return self.head_dim_v * self.n_head_kv


class _Cursor:
    """Reads little-endian GGUF values from a buffer, raising on truncation."""

    def __init__(self, buf: Any, path: Path):
        self.buf, self.pos, self.path, self.size = buf, 0, path, len(buf)

    def _need(self, n: int) -> None:
        if n < 0 or self.pos + n > self.size:
            raise ModelLoadError(
                f"{self.path.name} is truncated: its GGUF header ends early (at byte {self.size})",
                hint="download it again",
            )

    def scalar(self, fmt: str) -> Any:
        n = struct.calcsize(fmt)
        self._need(n)
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += n
        return value

    def _length(self, limit: int, what: str) -> int:
        n = self.scalar("<Q")
        if n > limit:
            self.invalid(f"{what} of {n:,} bytes (the limit is {limit:,})")
        self._need(n)
        return n

    def invalid(self, why: str) -> NoReturn:
        raise ModelLoadError(f"{self.path.name} is not a valid GGUF file: {why} in its header")

    def key(self) -> str:
        n = self._length(MAX_KEY_BYTES, "a key")
        raw = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def string(self) -> str:
        n = self._length(MAX_STRING_BYTES, "a string")
        raw = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        n = self._length(MAX_STRING_BYTES, "a string")
        self.pos += n

    def array_header(self, depth: int) -> tuple[int, int]:
        """(element type, count) of an array, checked: known type, nesting, a count the file can hold."""
        if depth > MAX_ARRAY_DEPTH:
            self.invalid(f"arrays nested more than {MAX_ARRAY_DEPTH} deep")
        etype, count = self.scalar("<I"), self.scalar("<Q")
        if etype not in _MIN_BYTES:
            self.invalid(f"unknown array type {etype}")
        if count * _MIN_BYTES[etype] > self.size - self.pos:
            raise ModelLoadError(
                f"{self.path.name} is truncated or damaged: its header declares an array of {count:,} "
                f"elements, more than the {self.size - self.pos:,} bytes left can hold"
            )
        return etype, count

    def value(self, vtype: int, depth: int = 0) -> Any:
        if vtype in _SCALARS:
            return self.scalar(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            etype, count = self.array_header(depth + 1)
            if count <= _MAX_KEPT_ARRAY:
                return [self.value(etype, depth + 1) for _ in range(count)]
            self.skip_array(etype, count, depth + 1)
            return _ArrayLength(count)
        raise ModelLoadError(f"{self.path.name} is not a valid GGUF file: unknown metadata type {vtype}")

    def skip_array(self, etype: int, count: int, depth: int) -> None:
        if etype in _SCALARS:
            n = struct.calcsize(_SCALARS[etype]) * count
            self._need(n)
            self.pos += n
        elif etype == _STRING:
            for _ in range(count):
                self.skip_string()
        else:  # arrays of arrays (array_header admits no other type)
            for _ in range(count):
                inner, inner_count = self.array_header(depth + 1)
                self.skip_array(inner, inner_count, depth + 1)


class _ArrayLength(int):
    """A long array's length, kept in place of its elements."""


def _tensor_bytes(shape: tuple[int, ...], type_id: int, name: str, path: Path) -> int:
    if type_id not in GGML_TYPES:
        raise ModelLoadError(
            f"{path.name}: tensor {name!r} has tensor type {type_id}, unknown to this reader",
            hint="the file may need a newer llama.cpp",
        )
    _, block, size = GGML_TYPES[type_id]
    n = 1
    for d in shape:
        n *= d
    return n // block * size


def _open_buffer(path: Path) -> tuple[Any, int, Any]:
    regular_size(path, "GGUF model file", ModelLoadError)  # a FIFO would block open(), /dev/zero never ends
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise ModelLoadError(f"cannot open {path}: {exc.strerror or exc}") from exc
    size = path.stat().st_size
    if size < 24:
        fh.close()
        what = "empty" if size == 0 else f"only {size} bytes"
        raise ModelLoadError(f"{path.name} is not a GGUF model file ({what})", hint="download it again")
    try:
        buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as exc:
        fh.close()
        raise ModelLoadError(f"cannot read {path}: {exc}") from exc
    return fh, size, buf


def read_gguf_info(path: Path | str) -> GgufInfo:
    """Read a GGUF file's header. Raises ModelLoadError (exit 5) for bad magic, versions, or truncation."""
    path = Path(path)
    fh, file_size, buf = _open_buffer(path)
    try:
        return _parse(path, buf, file_size)
    finally:
        buf.close()
        fh.close()


def _parse(path: Path, buf: Any, file_size: int) -> GgufInfo:
    cur = _Cursor(buf, path)
    if bytes(buf[:4]) != GGUF_MAGIC:
        raise ModelLoadError(
            f"{path.name} is not a GGUF model file (bad magic bytes)", hint="download it again"
        )
    cur.pos = 4
    version = cur.scalar("<I")
    if version not in SUPPORTED_VERSIONS:
        raise ModelLoadError(f"{path.name} uses GGUF version {version}; only versions 2 and 3 are supported")
    tensor_count, kv_count = cur.scalar("<Q"), cur.scalar("<Q")
    if tensor_count > file_size or kv_count > file_size:
        raise ModelLoadError(f"{path.name} is not a valid GGUF file (impossible counts in its header)")
    meta: dict[str, Any] = {}
    for _ in range(kv_count):
        key = cur.key()
        meta[key] = cur.value(cur.scalar("<I"))
    tensors: list[TensorInfo] = []
    for _ in range(tensor_count):
        name = cur.string()
        if len(name.encode()) > MAX_TENSOR_NAME:
            cur.invalid(f"a tensor name of {len(name.encode())} bytes (ggml allows {MAX_TENSOR_NAME})")
        n_dims = cur.scalar("<I")
        if n_dims > 8:
            raise ModelLoadError(f"{path.name} is not a valid GGUF file (tensor {name!r} has {n_dims} dims)")
        shape = tuple(cur.scalar("<Q") for _ in range(n_dims))
        type_id, offset = cur.scalar("<I"), cur.scalar("<Q")
        tensors.append(TensorInfo(name, shape, type_id, offset, _tensor_bytes(shape, type_id, name, path)))
    alignment = _alignment(meta, cur)
    check_header_bounds(meta, path)
    data_offset = -(-cur.pos // alignment) * alignment
    data_end = max((t.offset + t.n_bytes for t in tensors), default=0)
    if data_end and data_offset + data_end > file_size:
        raise ModelLoadError(
            f"{path.name} is truncated: {file_size:,} bytes on disk, {data_offset + data_end:,} declared",
            hint="download it again",
        )
    return _summarise(path, version, file_size, meta, tensors, data_offset)


def _alignment(meta: dict[str, Any], cur: _Cursor) -> int:
    """general.alignment: a power of two (ggml's rule), 32 when absent."""
    value = meta.get("general.alignment", DEFAULT_ALIGNMENT)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value & (value - 1):
        cur.invalid(f"general.alignment {_shown(value)} (must be a power of two)")
    return int(value)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "…"


def check_header_bounds(meta: dict[str, Any], path: Path) -> None:
    """ModelLoadError (exit 5) when a hyperparameter is absurd: llama.cpp would abort, or build huge tables."""
    arch = str(meta.get("general.architecture", "unknown"))
    for suffix, (least, most) in HEADER_BOUNDS.items():
        key = f"{arch}.{suffix}"
        if key not in meta:
            continue
        raw = meta[key]
        values = raw if isinstance(raw, list) else [raw]
        if isinstance(raw, _ArrayLength):  # a long per-layer list, not kept: llama.cpp checks its entries
            continue
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise ModelLoadError(
                f"{path.name}: {key} is {_shown(raw)}, not a number or a short list of numbers"
            )
        bad = next((v for v in values if not least <= v <= most), None)
        if bad is not None:
            raise ModelLoadError(
                f"{path.name} has an impossible header: {key} = {bad:,} (expected {least:,} to {most:,})",
                hint="the file is damaged or was crafted; llama.cpp would abort on it",
            )


def _meta_int(meta: dict[str, Any], key: str, default: int = 0) -> int:
    value = meta.get(key)
    if isinstance(value, list):  # per-layer arrays (e.g. head_count_kv): take the largest
        value = max(value) if value else None
    return int(value) if isinstance(value, (int, float)) else default


def _summarise(
    path: Path,
    version: int,
    file_size: int,
    meta: dict[str, Any],
    tensors: list[TensorInfo],
    data_offset: int,
) -> GgufInfo:
    arch = str(meta.get("general.architecture", "unknown"))
    layers: dict[int, int] = {}
    other = output = 0
    by_type: dict[str, int] = {}
    for t in tensors:
        by_type[t.type_name] = by_type.get(t.type_name, 0) + t.n_bytes
        if m := _LAYER_TENSOR.match(t.name):
            layers[int(m[1])] = layers.get(int(m[1]), 0) + t.n_bytes
        else:
            other += t.n_bytes
            if t.name == "output.weight":
                output = t.n_bytes
    n_layers = _meta_int(meta, f"{arch}.block_count", len(layers))
    n_embd = _meta_int(meta, f"{arch}.embedding_length")
    n_head = _meta_int(meta, f"{arch}.attention.head_count")
    n_head_kv = _meta_int(meta, f"{arch}.attention.head_count_kv", n_head)
    default_dim = n_embd // n_head if n_head else 0
    head_k = _meta_int(meta, f"{arch}.attention.key_length", default_dim)
    head_v = _meta_int(meta, f"{arch}.attention.value_length", head_k)
    tokens = meta.get("tokenizer.ggml.tokens")
    vocab = len(tokens) if isinstance(tokens, list) else int(tokens) if isinstance(tokens, int) else 0
    vocab = vocab or _meta_int(meta, f"{arch}.vocab_size")
    file_type = meta.get("general.file_type")
    file_type = int(file_type) if isinstance(file_type, int) else None
    quant = FILE_TYPES.get(file_type) if file_type is not None else None
    if quant is None:  # no or unknown file_type: name the type holding most bytes among the 2-D weights
        quant = max(by_type, key=lambda k: by_type[k]) if by_type else "unknown"
    template = meta.get("tokenizer.chat_template")
    name = meta.get("general.name")
    return GgufInfo(
        path=path,
        version=version,
        file_size=file_size,
        architecture=arch,
        name=str(name) if name is not None else None,
        n_layers=n_layers,
        n_ctx_train=_meta_int(meta, f"{arch}.context_length"),
        n_embd=n_embd,
        n_head=n_head,
        n_head_kv=n_head_kv,
        head_dim_k=head_k,
        head_dim_v=head_v,
        vocab_size=vocab,
        file_type=file_type,
        quant=quant,
        chat_template=template if isinstance(template, str) else None,
        tensor_count=len(tensors),
        data_offset=data_offset,
        tensor_data_bytes=sum(t.n_bytes for t in tensors),
        layer_weight_bytes=tuple(layers.get(i, 0) for i in range(max(n_layers, len(layers)))),
        other_weight_bytes=other,
        output_weight_bytes=output,
        n_ff=_meta_int(meta, f"{arch}.feed_forward_length"),
        tensors=tuple(tensors),
        tensor_types=by_type,
        metadata={k: (int(v) if isinstance(v, _ArrayLength) else v) for k, v in meta.items()},
    )
