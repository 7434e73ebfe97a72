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
    _expect_load_error(tmp_path / "nope.gguf", "cannot open")
