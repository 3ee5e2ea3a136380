"""Policy modules: one file each. A module decides; it never acts.

A module is a class with
  name       its name in profiles and in the audit log
  settings   {key: Setting}: the schema of its profile table
  hooks()    the hook points it needs with its settings (only these are routed)
and one method per hook point, taking a typed request (sandbox.requests) and
returning None (no objection) or Deny(errno, reason).

Modules are found by name: the bundled ones here (sandbox/modules/NAME.py,
whose MODULE is the class), then those other packages declare in the
entry-point group `yama_run.modules` (name = "package.module:Class")."""
from __future__ import annotations

import importlib
import traceback
from dataclasses import dataclass
from typing import Any

from ..chain import Deny  # noqa: F401  (re-exported: a module's verdict type)

BUNDLED = ("ptrace", "hardlinks", "symlinks", "fifos", "regular", "contain")


ENTRY_POINT_GROUP = "yama_run.modules"


class SettingError(ValueError):
    pass


class ModuleLoadError(SettingError):
    """A module that is unknown, fails to import, or is not a Module."""


@dataclass(frozen=True)
class Setting:
    default: Any
    choices: tuple
    doc: str = ""

    def parse(self, raw: Any) -> Any:
        """A value from TOML (typed) or from --set (a string), as one of the
        choices; choices may mix types (0, 1, "auto"). true is never 1."""
        for choice in self.choices:
            if isinstance(raw, str) and not isinstance(choice, str):
                if _spelled(raw, choice):
                    return choice
            elif type(raw) is type(choice) and raw == choice:
                return choice
        valid = ", ".join(_spell(c) for c in self.choices)
        raise SettingError(f"bad value {raw!r}; valid values: {valid}")


def _spell(choice: Any) -> str:
    """A choice as a user writes it on the command line."""
    return str(choice).lower() if isinstance(choice, bool) else str(choice)


def _spelled(text: str, choice: Any) -> bool:
    """--set's text for a non-string choice: true/false (or 1/0) for a bool,
    a number for an int: plain ASCII decimal digits, as TOML writes an
    integer (no 0x/0b prefix, no other script's digits, no leading zero: 01
    may mean octal to the writer)."""
    text = text.strip().lower()
    if isinstance(choice, bool):
        return text in ({"true", "1"} if choice else {"false", "0"})
    plain = text.isascii() and text.isdigit() and (text == "0" or text[0] != "0")
    return plain and int(text) == choice


class Module:
    name = ""
    settings: dict[str, Setting] = {}

    def __init__(self, config: dict[str, Any]):
        self.config = {key: s.default for key, s in self.settings.items()}
        self.config.update(config)

    tabulated: set[str] = set()

    def hooks(self) -> set[str]:
        raise NotImplementedError

    def adopt(self, old: "Module") -> None:
        """A running sandbox's settings changed: this instance, made from the
        new config, replaces old. Take over what old learned while the
        sandbox ran (never its settings). Default: nothing to take."""


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


def _entry_points() -> dict:
    """Third-party modules by name; a bundled name cannot be taken over."""
    from importlib import metadata      # only when a non-bundled name is asked for
    found = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in BUNDLED:
            found.setdefault(ep.name, ep)
    return found


def available() -> dict[str, str]:
    """Every module name -> where it comes from ("bundled" or the package)."""
    names = {name: "bundled" for name in BUNDLED}
    for name, ep in sorted(_entry_points().items()):
        dist = getattr(ep, "dist", None)
        names[name] = f"{dist.name} {dist.version}" if dist else ep.value
    return names


_loaded: dict[str, type[Module]] = {}


def load(name: str) -> type[Module]:
    """The module class called name (imported once)."""
    if name in _loaded:
        return _loaded[name]
    if name in BUNDLED:
        where = f"sandbox/modules/{name}.py"
        importer = lambda: importlib.import_module(f"{__name__}.{name}").MODULE  # noqa: E731
    else:
        ep = _entry_points().get(name)
        if ep is None:
            raise ModuleLoadError(f"unknown module {name!r}; valid modules: "
                                  f"{', '.join(available())}")
        where = f"entry point {name} = {ep.value} (group {ENTRY_POINT_GROUP})"
        importer = ep.load
    try:
        cls = importer()
    except Exception as exc:
        last = traceback.format_exception_only(exc)[-1].strip()
        raise ModuleLoadError(f"module {name!r} ({where}) failed to load: {last}") from None
    if not (isinstance(cls, type) and issubclass(cls, Module)):
        raise ModuleLoadError(f"module {name!r} ({where}) is {cls!r}, not a subclass "
                              f"of sandbox.modules.Module")
    if cls.name != name:
        raise ModuleLoadError(f"module {name!r} ({where}) calls itself {cls.name!r}; "
                              f"its name must be the one it is registered under")
    _loaded[name] = cls
    return cls
