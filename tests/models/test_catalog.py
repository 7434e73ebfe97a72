"""Model manifests and model references."""

from __future__ import annotations

import pytest
from testpaths import make_odd_path

from vibelocal.errors import ConfigError, UnknownModelError
from vibelocal.models.catalog import Catalog, load_manifest, parse_ref
from vibelocal.paths import get_paths


@pytest.fixture
def catalog() -> Catalog:
    return Catalog()


def test_default_manifest_matches_the_published_model(catalog):
    spec = catalog.get("vibethinker-3b")
    assert spec is not None
    arch = spec.architecture
    assert (arch.name, arch.n_layers, arch.hidden_size, arch.n_heads, arch.n_kv_heads, arch.head_dim) == (
        "qwen2",
        36,
        2048,
        16,
        2,
        128,
    )
    assert arch.vocab_size == 151936
    assert [s.repo for s in spec.sources] == [
        "prithivMLmods/VibeThinker-3B-GGUF",
        "mradermacher/VibeThinker-3B-GGUF",
    ]
    assert spec.quant_file("BF16").size_bytes == 6_178_316_992
    assert spec.quant_file("Q4_K_M").file == "VibeThinker-3B.Q4_K_M.gguf"
    assert spec.chat.stop == ["<|im_end|>", "<|endoftext|>"]
    assert (spec.sampling.temperature, spec.sampling.top_p, spec.sampling.top_k) == (0.6, 0.95, 0)
    assert "\\boxed{}" in spec.prompt_suffixes["math"]
    assert spec.license == "MIT"


@pytest.mark.parametrize(
    ("ref", "kind", "quant", "repo", "file"),
    [
        ("vibethinker-3b", "alias", None, None, None),
        ("VibeThinker-3B:q8_0", "alias", "Q8_0", None, None),
        (
            "prithivMLmods/VibeThinker-3B-GGUF:Q6_K",
            "hub_quant",
            "Q6_K",
            "prithivMLmods/VibeThinker-3B-GGUF",
            None,
        ),
        ("someone/other-GGUF", "hub_quant", None, "someone/other-GGUF", None),
        (
            "mradermacher/VibeThinker-3B-GGUF/VibeThinker-3B.Q8_0.gguf",
            "hub_file",
            "Q8_0",
            "mradermacher/VibeThinker-3B-GGUF",
            "VibeThinker-3B.Q8_0.gguf",
        ),
        ("./weights/x.gguf", "path", None, None, None),
        ("~/x.gguf", "path", None, None, None),
        ("plain-name.gguf", "path", None, None, None),
    ],
)
def test_parse_ref_table(catalog, ref, kind, quant, repo, file):
    r = parse_ref(ref, catalog)
    assert (r.kind, r.quant, r.repo, r.file) == (kind, quant, repo, file)


def test_hub_refs_to_known_repos_carry_the_manifest(catalog):
    assert parse_ref("prithivMLmods/VibeThinker-3B-GGUF:Q8_0", catalog).spec.name == "vibethinker-3b"
    assert parse_ref("someone/other-GGUF:Q4_0", catalog).spec is None


def test_existing_file_is_a_path_even_without_dot_slash(catalog, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b.gguf").write_bytes(b"GGUF")
    assert parse_ref("a/b.gguf", catalog).kind == "path"


@pytest.mark.parametrize("kind", ["loop", "dangling", "fifo", "dir"])
def test_anything_at_a_relative_path_is_a_path_never_a_hub_repo(catalog, tmp_path, monkeypatch, kind):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "owner").mkdir()
    target = tmp_path / "owner" / "repo"
    target.mkdir() if kind == "dir" else make_odd_path(target, kind)
    assert parse_ref("owner/repo", catalog).kind == "path"
    assert parse_ref("owner/repo:Q4_K_M", catalog).kind == "hub_quant"  # nothing there: a hub ref


def test_a_ref_longer_than_a_path_allows_is_not_an_error_of_the_filesystem(catalog):
    ref = parse_ref("o/r/" + "x" * 5000 + ".gguf", catalog)  # stat() would say ENAMETOOLONG
    assert ref.kind == "hub_file"


def test_no_ref_means_the_default_model(catalog):
    assert parse_ref(None, catalog).spec.name == "vibethinker-3b"


def test_unknown_alias_lists_known_models(catalog):
    with pytest.raises(UnknownModelError) as err:
        parse_ref("gpt-5", catalog)
    assert "vibethinker-3b" in str(err.value)
    assert err.value.exit_code == 4


def test_unknown_quant_lists_available_ones(catalog):
    with pytest.raises(UnknownModelError, match="Q4_K_M"):
        parse_ref("vibethinker-3b:Q9_X", catalog)


def test_user_manifest_folder_adds_a_model_without_code():
    folder = get_paths().config_dir / "models"
    folder.mkdir(parents=True)
    (folder / "tiny.toml").write_text(
        """
name = "tiny"
display_name = "Tiny"
[architecture]
n_layers = 2
hidden_size = 64
n_heads = 2
n_kv_heads = 1
head_dim = 32
vocab_size = 100
context_length = 2048
[[sources]]
repo = "me/tiny-GGUF"
files = [{ quant = "Q8_0", file = "tiny.Q8_0.gguf", size_bytes = 1000 }]
""",
        encoding="utf-8",
    )
    cat = Catalog(extra_dirs=[folder])
    assert "tiny" in cat.names
    assert parse_ref("tiny:q8_0", cat).quant == "Q8_0"


def test_malformed_manifest_is_a_config_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="bad.toml"):
        load_manifest(bad)
