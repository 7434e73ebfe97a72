"""VIBELOCAL_HOME moves config, data and caches; without it platformdirs decides."""

from __future__ import annotations

from pathlib import Path

from vibelocal.paths import get_paths


def test_home_override_moves_everything(tmp_path):
    p = get_paths({"VIBELOCAL_HOME": str(tmp_path)})
    for d in (p.config_dir, p.data_dir, p.cache_dir):
        assert tmp_path in d.parents
    assert p.config_file.name == "config.toml"
    assert p.registry_file.parent == p.data_dir


def test_platformdirs_without_override():
    p = get_paths({})
    assert "vibelocal" in str(p.config_dir).lower()
    assert "vibelocal" in str(p.data_dir).lower()
    assert p.config_dir != p.data_dir
    assert isinstance(p.cache_dir, Path)
