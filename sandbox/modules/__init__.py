"""Policy modules: one file each. A module decides; it never acts.

A module is a class with
  name       its name in profiles and in the audit log
  settings   {key: Setting}: the schema of its profile table
  hooks()    the hook points it needs with its settings (only these are routed)
and one method per hook point, taking a typed request (sandbox.requests) and
returning None (no objection) or Deny(errno, reason)."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

BUNDLED = ("ptrace", "hardlinks", "symlinks", "fifos", "regular")


class SettingError(ValueError):
    pass


@dataclass(frozen=True)
class Setting:
    default: Any
    choices: tuple
    doc: str = ""

    def parse(self, raw: Any) -> Any:
        """A value from TOML (typed) or from --set (a string)."""
        value = raw
        if isinstance(raw, str) and all(isinstance(c, int) for c in self.choices):
            try:
                value = int(raw, 0)
            except ValueError:
                value = raw
        elif isinstance(raw, str) and all(isinstance(c, bool) for c in self.choices):
            value = {"true": True, "false": False, "1": True, "0": False}.get(raw.lower(), raw)
        if isinstance(value, bool) != all(isinstance(c, bool) for c in self.choices) \
                or value not in self.choices:
            valid = ", ".join(str(c).lower() if isinstance(c, bool) else str(c)
                              for c in self.choices)
            raise SettingError(f"bad value {raw!r}; valid values: {valid}")
        return value


class Module:
    name = ""
    settings: dict[str, Setting] = {}

    def __init__(self, config: dict[str, Any]):
        self.config = {key: s.default for key, s in self.settings.items()}
        self.config.update(config)

    tabulated: set[str] = set()

    def hooks(self) -> set[str]:
        raise NotImplementedError


def hooked(modules, hook: str) -> bool:
    """Does any module hook `hook`?"""
    return any(hook in module.hooks() for module in modules)


def rule_table(modules, hook: str, hypothetical, bits: int) -> int:
    """Bit f set: every module hooking `hook` allows a request with facts f.

    hypothetical(f) builds a request that has only facts. A module that
    hooks `hook` without declaring it tabulated, or that fails on such a
    request, keeps every combination in Python (bit clear)."""
    mask = (1 << (1 << bits)) - 1
    for module in modules:
        if hook not in module.hooks():
            continue
        if hook not in module.tabulated:
            return 0
        for facts in range(1 << bits):
            try:
                verdict = getattr(module, hook)(hypothetical(facts))
            except Exception:
                verdict = "error"
            if verdict is not None:
                mask &= ~(1 << facts)
    return mask


def load(name: str) -> type[Module]:
    """The module class called name."""
    if name not in BUNDLED:
        raise SettingError(f"unknown module {name!r}; valid modules: {', '.join(BUNDLED)}")
    mod = importlib.import_module(f"{__name__}.{name}")
    return mod.MODULE
