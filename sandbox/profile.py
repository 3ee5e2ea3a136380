"""Profiles: which modules form the chain, in which order, with which settings.

A profile is TOML:

    chain = ["ptrace"]
    [ptrace]
    scope = 1

Every error names the file (and line, where there is one), the key and the
valid keys or values."""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from . import modules


class ProfileError(Exception):
    pass


@dataclass
class Profile:
    name: str
    source: str                                 # file path, or "built-in"
    chain: list[str]
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)

    def instantiate(self):
        """The chain's module objects, in order."""
        return [modules.load(name)(self.settings.get(name, {})) for name in self.chain]


def builtin() -> Profile:
    """--no-profile: every bundled module with the kernel's default settings."""
    return Profile("built-in", "built-in", list(modules.BUNDLED), {})


def search_dirs() -> list[Path]:
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return [Path(config) / "yama-run" / "profiles", Path("/etc/yama-run/profiles")]


def find(name_or_path: str) -> Path:
    if "/" in name_or_path or name_or_path.endswith(".toml"):
        path = Path(name_or_path)
        if not path.is_file():
            raise ProfileError(f"{name_or_path}: no such profile file")
        return path
    for directory in search_dirs():
        candidate = directory / f"{name_or_path}.toml"
        if candidate.is_file():
            return candidate
    bundled = resources.files("sandbox.profiles") / f"{name_or_path}.toml"
    if bundled.is_file():
        return Path(str(bundled))
    raise ProfileError(f"no profile named {name_or_path!r} (looked in "
                       f"{', '.join(map(str, search_dirs()))} and the bundled profiles)")


def _line_of(text: str, table: str | None, key: str) -> int | None:
    """The line where key is set (inside [table] if given), for messages."""
    current = None
    for number, line in enumerate(text.splitlines(), 1):
        header = re.match(r"\s*\[\s*([^\]\s]+)\s*\]", line)
        if header:
            current = header.group(1)
        elif current == table and re.match(rf"\s*{re.escape(key)}\s*=", line):
            return number
    return None


def load(name_or_path: str) -> Profile:
    path = find(name_or_path)
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: {exc}") from None

    def where(table, key):
        line = _line_of(text, table, key)
        return f"{path}:{line}" if line else str(path)

    chain = data.pop("chain", None)
    if not isinstance(chain, list) or not all(isinstance(m, str) for m in chain):
        raise ProfileError(f"{where(None, 'chain')}: 'chain' must be a list of module names; "
                           f"valid modules: {', '.join(modules.BUNDLED)}")
    profile = Profile(path.stem, str(path), [], {})
    for name in chain:
        try:
            modules.load(name)
        except modules.SettingError as exc:
            raise ProfileError(f"{where(None, 'chain')}: chain: {exc}") from None
        if name in profile.chain:
            raise ProfileError(f"{where(None, 'chain')}: chain: {name!r} appears twice")
        profile.chain.append(name)
    for table, values in data.items():
        if not isinstance(values, dict):
            raise ProfileError(f"{where(None, table)}: unknown key {table!r}; valid keys: "
                               f"chain, and one table per module ({', '.join(modules.BUNDLED)})")
        for key, raw in values.items():
            try:
                apply(profile, f"{table}.{key}", raw)
            except ProfileError as exc:
                raise ProfileError(f"{where(table, key)}: {exc}") from None
    return profile


def apply(profile: Profile, dotted: str, raw: Any) -> None:
    """Set module.key (from a profile table or --set), validated."""
    module_name, sep, key = dotted.partition(".")
    if not sep or not key:
        raise ProfileError(f"{dotted!r}: expected MODULE.KEY=VALUE")
    try:
        cls = modules.load(module_name)
    except modules.SettingError as exc:
        raise ProfileError(str(exc)) from None
    setting = cls.settings.get(key)
    if setting is None:
        raise ProfileError(f"{module_name}: unknown key {key!r}; valid keys: "
                           f"{', '.join(sorted(cls.settings)) or '(none)'}")
    try:
        value = setting.parse(raw)
    except modules.SettingError as exc:
        raise ProfileError(f"{module_name}.{key}: {exc}") from None
    if module_name not in profile.chain:
        raise ProfileError(f"{module_name}.{key}: module {module_name!r} is not in the chain "
                           f"of profile {profile.name!r} ({', '.join(profile.chain) or 'empty'})")
    profile.settings.setdefault(module_name, {})[key] = value
