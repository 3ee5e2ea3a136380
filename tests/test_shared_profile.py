"""The browser-like profiles include one shared strict profile instead of
repeating its settings; --show-profile still says where each value comes from."""
from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from conftest import yama_run

BUNDLED = Path(__file__).resolve().parent.parent / "profiles"
SHARING = ["firefox", "chromium", "thunderbird", "signal-desktop", "evince"]


@pytest.fixture
def env(tmp_path):
    """No user or system profile can shadow the bundled ones."""
    return {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}


@pytest.mark.parametrize("name", SHARING)
def test_each_includes_strict_and_keeps_only_its_own_scope(name):
    data = tomllib.loads((BUNDLED / f"{name}.toml").read_text())
    assert data["include"] == "strict"
    assert {k for k in data if k not in ("description", "aliases", "include")} == {"ptrace"}
    assert data["ptrace"] == {"scope": 1}


@pytest.mark.parametrize("name", SHARING)
def test_show_profile_names_the_file_of_each_value(env, name):
    shown = yama_run("--show-profile", name, env=env).stdout
    strict, own = BUNDLED / "strict.toml", BUNDLED / f"{name}.toml"
    assert f"# read in order: {strict}, {own}" in shown
    lines = {line.split("#")[0].strip(): line.split("# ")[-1] for line in shown.splitlines()
             if "=" in line and not line.startswith("#")}
    assert lines["scope = 1"].startswith(f"{own}:")
    for setting in ('chain = ["contain", "ptrace", "hardlinks", "symlinks", "fifos", "regular"]',
                    "enabled = true", "protect_creation = true"):
        assert lines[setting].startswith(f"{strict}:"), setting


def test_a_system_strict_profile_reaches_every_browser_like_profile(tmp_path):
    """strict is included by name: a strict.toml of the user's (which may
    include the bundled one it shadows) applies to all of them."""
    user = tmp_path / "yama-run" / "profiles"
    user.mkdir(parents=True)
    (user / "strict.toml").write_text('include = "strict"\n\n[hardlinks]\nprotected = 0\n')
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}
    for name in SHARING:
        shown = yama_run("--show-profile", name, env=env).stdout
        assert "protected = 0" in shown and f"{user / 'strict.toml'}:4" in shown, shown
