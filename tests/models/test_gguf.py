"""The GGUF header reader: real files cross-checked against the gguf package, and corrupt inputs (exit 5)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from vibelocal.errors import ExitCode, ModelLoadError
from vibelocal.models.gguf import FILE_TYPES, GGML_TYPES, read_gguf_info


@pytest.fixture(scope="module")
def reference(smollm2_path):
    from gguf import GGUFReader

    return GGUFReader(str(smollm2_path))


def _field(reader, key):
    return reader.fields[key].contents()


def test_smollm2_matches_the_gguf_package(smollm2_path, reference):
    info = read_gguf_info(smollm2_path)
    assert info.version == 3
    assert info.architecture == _field(reference, "general.architecture") == "llama"
    assert info.name == _field(reference, "general.name")
    assert info.n_layers == _field(reference, "llama.block_count") == 30
    assert info.n_ctx_train == _field(reference, "llama.context_length") == 8192
    assert info.n_embd == _field(reference, "llama.embedding_length") == 576
    assert info.n_head == _field(reference, "llama.attention.head_count") == 9
    assert info.n_head_kv == _field(reference, "llama.attention.head_count_kv") == 3
    assert info.head_dim_k == info.head_dim_v == 576 // 9
    assert info.n_ff == _field(reference, "llama.feed_forward_length")
    assert info.vocab_size == len(reference.fields["tokenizer.ggml.tokens"].data) == 49152
    assert info.file_type == 3 and info.quant == "Q4_1"
    assert info.chat_template == _field(reference, "tokenizer.chat_template")
    assert info.tensor_count == len(reference.tensors)
    assert info.data_offset == reference.data_offset
    assert info.tensor_data_bytes == sum(int(t.n_bytes) for t in reference.tensors)
    ours = {t.name: (t.n_bytes, t.offset, t.type_id) for t in info.tensors}
    theirs = {
        t.name: (int(t.n_bytes), int(t.data_offset) - reference.data_offset, int(t.tensor_type))
        for t in reference.tensors
    }
    assert ours == theirs
    assert len(info.layer_weight_bytes) == 30 and all(b > 0 for b in info.layer_weight_bytes)
    assert sum(info.layer_weight_bytes) + info.other_weight_bytes == info.tensor_data_bytes
    assert info.output_weight_bytes == 0  # SmolLM2 ties its output head to the token embeddings
    assert info.data_offset + info.tensor_data_bytes <= info.file_size


def test_type_tables_agree_with_the_gguf_package():
    from gguf.constants import GGML_QUANT_SIZES, LlamaFileType

    for qtype, (block, size) in GGML_QUANT_SIZES.items():
        assert GGML_TYPES[qtype.value] == (qtype.name, block, size)
    for ftype in LlamaFileType:
        if ftype.name.startswith("MOSTLY_"):
            assert FILE_TYPES[ftype.value] == ftype.name.removeprefix("MOSTLY_")


def test_qwen2_vocab_only_file(qwen2_vocab_path):
    info = read_gguf_info(qwen2_vocab_path)
    assert info.architecture == "qwen2"
    assert info.vocab_size == 151936
    assert info.tensor_count == 0 and info.tensor_data_bytes == 0
    assert info.n_layers == 32 and info.n_head == 32 and info.head_dim_k == 128
    assert info.n_ctx_train == 32768
    assert "<|im_start|>" in (info.chat_template or "")


def _expect_load_error(path: Path, fragment: str) -> None:
    with pytest.raises(ModelLoadError) as err:
        read_gguf_info(path)
    assert err.value.exit_code == ExitCode.MODEL_LOAD == 5
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_empty_file(tmp_path):
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    _expect_load_error(empty, "empty")


def test_bad_magic(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"<!DOCTYPE html>" + b"\0" * 100)
    _expect_load_error(bad, "bad magic")


def test_unsupported_version(tmp_path):
    old = tmp_path / "old.gguf"
    old.write_bytes(b"GGUF" + struct.pack("<IQQ", 1, 0, 0) + b"\0" * 16)
    _expect_load_error(old, "version 1")


def test_truncated_header(tmp_path, smollm2_path):
    cut = tmp_path / "cut-header.gguf"
    cut.write_bytes(smollm2_path.read_bytes()[:50_000])
    _expect_load_error(cut, "truncated")


def test_truncated_tensor_data(tmp_path, smollm2_path):
    data = smollm2_path.read_bytes()
    cut = tmp_path / "cut-data.gguf"
    cut.write_bytes(data[: len(data) - 4096])
    _expect_load_error(cut, "truncated")


def test_missing_file(tmp_path):
    _expect_load_error(tmp_path / "nope.gguf", "not found")


# --------------------------------------------------------------------------- crafted headers (bounds)


def write_crafted(path: Path, *, arch: str = "llama", fields=None, raw_fields=None) -> Path:
    """A small, otherwise well-formed GGUF written by the gguf package, with hostile header values.

    `fields`: {arch-relative key: uint32} (None drops the key); `raw_fields`: {key: value} written as given.
    """
    import gguf
    import numpy as np

    sane = {
        "block_count": 1,
        "context_length": 2048,
        "embedding_length": 8,
        "feed_forward_length": 16,
        "attention.head_count": 2,
        "attention.head_count_kv": 2,
    }
    sane.update(fields or {})
    writer = gguf.GGUFWriter(str(path), arch)
    for key, value in sane.items():
        if value is not None:
            writer.add_uint64(f"{arch}.{key}", value) if value >= 2**32 else writer.add_uint32(
                f"{arch}.{key}", value
            )
    for key, value in (raw_fields or {}).items():
        if isinstance(value, list):
            writer.add_array(key, value)
        elif isinstance(value, str):
            writer.add_string(key, value)
        else:
            writer.add_uint32(key, value)
    writer.add_tensor("blk.0.attn_norm.weight", np.ones(8, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_a_sane_crafted_file_reads(tmp_path):
    info = read_gguf_info(write_crafted(tmp_path / "ok.gguf"))
    assert info.n_layers == 1 and info.n_ctx_train == 2048 and info.n_head == 2


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"block_count": 0}, "llama.block_count = 0 (expected 1 to 512)"),
        ({"block_count": 10**12}, "llama.block_count = 1,000,000,000,000 (expected 1 to 512)"),
        ({"context_length": 2**32 - 1}, "llama.context_length = 4,294,967,295 (expected 1 to 16,777,216)"),
        ({"embedding_length": 0}, "llama.embedding_length = 0"),
        ({"attention.head_count": 0}, "llama.attention.head_count = 0"),
        ({"attention.head_count_kv": 10**6}, "llama.attention.head_count_kv = 1,000,000"),
    ],
)
def test_absurd_hyperparameters_are_refused(tmp_path, fields, fragment):
    _expect_load_error(write_crafted(tmp_path / "crafted.gguf", fields=fields), fragment)


@pytest.mark.parametrize("alignment", [0, 3, 48])
def test_alignment_must_be_a_power_of_two(tmp_path, alignment):
    path = write_crafted(tmp_path / "align.gguf", raw_fields={"general.alignment": alignment})
    _expect_load_error(path, f"general.alignment {alignment} (must be a power of two)")


def test_alignment_of_the_wrong_type(tmp_path):
    path = write_crafted(tmp_path / "align.gguf", raw_fields={"general.alignment": "32"})
    _expect_load_error(path, "general.alignment '32' (must be a power of two)")


def test_deeply_nested_arrays_are_refused(tmp_path):
    nested: list = [1]
    for _ in range(10):
        nested = [nested]
    path = write_crafted(tmp_path / "nested.gguf", raw_fields={"x.nested": nested})
    _expect_load_error(path, "arrays nested more than 3 deep")


def test_shallow_nested_arrays_are_fine(tmp_path):
    path = write_crafted(tmp_path / "nested.gguf", raw_fields={"x.pairs": [[1, 2], [3, 4]]})
    assert read_gguf_info(path).metadata["x.pairs"] == [[1, 2], [3, 4]]


def _patch_first(path: Path, find: bytes, replace: bytes) -> None:
    data = path.read_bytes()
    at = data.index(find)
    path.write_bytes(data[:at] + replace + data[at + len(find) :])


def test_an_array_count_larger_than_the_file_is_refused_at_once(tmp_path):
    path = write_crafted(tmp_path / "count.gguf", raw_fields={"x.list": [7, 8, 9]})
    # the array header: element type int32 (5), count 3 -> count 2**60
    _patch_first(path, struct.pack("<IQ", 5, 3), struct.pack("<IQ", 5, 2**60))
    _expect_load_error(path, "an array of 1,152,921,504,606,846,976 elements, more than the")


def test_a_string_length_past_the_limit_is_refused(tmp_path):
    path = write_crafted(tmp_path / "str.gguf", raw_fields={"x.name": "abc"})
    _patch_first(path, struct.pack("<Q", 3) + b"abc", struct.pack("<Q", 2**40) + b"abc")
    _expect_load_error(path, "a string of 1,099,511,627,776 bytes (the limit is 16,777,216)")


def test_a_fifo_is_refused_without_blocking(tmp_path):
    import os

    fifo = tmp_path / "model.gguf"
    os.mkfifo(fifo)
    _expect_load_error(fifo, "is a named pipe (FIFO), not a GGUF model file")
