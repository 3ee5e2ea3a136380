"""The chain: modules in profile order, walked for each hook; first Deny wins.

A running sandbox's settings change by replacing its chain (changed()): the
modules whose settings change are re-created from their new config (a module
derives everything from its config in __init__), the others are kept as they
are, and the supervisor swaps the whole chain in one assignment (a walk
already under way finishes with the chain it started with)."""
from __future__ import annotations

import copy
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Deny:
    """A module's objection: the errno the caller gets and why."""

    errno: int
    reason: str


class Chain:
    def __init__(self, modules, audit, permissive: bool = False):
        self.modules = list(modules)
        self.audit = audit
        self.permissive = permissive
        # Hooks run in several threads (the receivers, the task watch):
        # one module is asked at a time, so the state modules keep (the
        # ptrace module's relations) needs no lock of its own. Only the
        # modules' own code runs under it: never a read of a caller's
        # memory or a filesystem operation for it (those may stall,
        # docs/stall.md), nor a write to the terminal.
        self._lock = threading.RLock()
        self._by_hook: dict[str, list] = {}
        for module in self.modules:
            for hook in module.hooks():
                self._by_hook.setdefault(hook, []).append(module)

    def hooks(self) -> set[str]:
        return set(self._by_hook)

    def with_modules(self, modules) -> "Chain":
        """The same chain (audit, mode) over other modules."""
        return Chain(modules, self.audit, self.permissive)

    def walk(self, hook: str, request) -> Deny | None:
        """Ask every module that hooks `hook`. Returns the denial to apply, if any.

        In permissive mode every module is asked and every objection recorded,
        and nothing is denied."""
        for module in self._by_hook.get(hook, ()):
            verdict = self._ask(module, hook, request)
            if verdict is None:
                continue
            self.audit.denial(module.name, hook, request, verdict, self.permissive)
            if not self.permissive:
                return verdict
        return None

    def _ask(self, module, hook: str, request) -> Deny | None:
        try:
            with self._lock:
                verdict = getattr(module, hook)(request)
        except Exception as exc:  # fail closed: a broken module denies
            self.audit.module_error(module.name, hook, request, traceback.format_exc())
            return Deny(request.default_errno, f"module error: {exc!r}")
        if verdict is not None and not isinstance(verdict, Deny):
            self.audit.module_error(module.name, hook, request,
                                    f"hook returned {verdict!r}, not None or Deny")
            return Deny(request.default_errno, "module error: bad verdict")
        return verdict


# -- live changes -----------------------------------------------------------------

# Settings that, once at this value, never change again while the sandbox runs:
# kernel.yama.ptrace_scope locks at its maximum (security/yama/yama_lsm.c,
# yama_dointvec_minmax: at 3 the minimum is raised to 3, so writing any other
# value is EINVAL until reboot; writing 3 again is allowed).
LOCKED_AT = {("ptrace", "scope"): 3}


class ChangeRefused(Exception):
    """A change that is not made (and nothing else of its request is).
    brief: the reason without advice, where the detail view lists it per value."""

    def __init__(self, message: str, brief: str = ""):
        super().__init__(message)
        self.brief = brief or message


@dataclass
class Change:
    module: str
    key: str
    old: Any
    new: Any
    direction: str          # tightened, loosened, changed (no order known), unchanged

    @property
    def setting(self) -> str:
        return f"{self.module}.{self.key}"


@dataclass
class Plan:
    """What a request makes of a chain: the new chain, the profile it now
    follows, each setting's old and new value, the modules re-created."""

    chain: Chain
    profile: Any
    changes: list[Change] = field(default_factory=list)
    recreated: list = field(default_factory=list)     # (old module, new module)


def changed(chain: Chain, profile, pairs: list[tuple[str, str]], origin: str) -> Plan:
    """The chain with the MODULE.KEY=VALUE pairs applied, each validated as
    --set validates it, a locked setting kept. Raises ChangeRefused."""
    from . import profile as profiles
    from .routes import ROUTES
    new_profile = copy.deepcopy(profile)
    for dotted, raw in pairs:
        try:
            profiles.apply(new_profile, dotted, raw)
        except profiles.ProfileError as exc:
            raise ChangeRefused(str(exc)) from None
    asked = {dotted for dotted, _ in pairs}
    current = {module.name: module for module in chain.modules}
    plan = Plan(chain, new_profile)
    for name in dict.fromkeys(dotted.partition(".")[0] for dotted, _ in pairs):
        old_module = current[name]
        new_module = type(old_module)(new_profile.settings.get(name, {}))
        for key in sorted(old_module.settings):
            old, new = old_module.config[key], new_module.config[key]
            if old == new and type(old) is type(new):
                if f"{name}.{key}" in asked:
                    plan.changes.append(Change(name, key, old, new, "unchanged"))
                _keep_origin(new_profile, profile, (name, key))
                continue
            if LOCKED_AT.get((name, key), object()) == old:
                raise ChangeRefused(
                    f"{name}.{key} is {old}, which is one-way as in the kernel: once "
                    f"{old}, it is never lowered while the sandbox runs "
                    f"(kernel.yama.ptrace_scope refuses with EINVAL until reboot)")
            plan.changes.append(Change(name, key, old, new,
                                       direction(old_module, new_module, key)))
            new_profile.origins[(name, key)] = origin
        unknown = sorted(set(new_module.hooks()) - set(ROUTES))
        if unknown:
            raise ChangeRefused(f"module {name!r} would hook {', '.join(unknown)}, which "
                                "yama-run does not route")
        current[name] = new_module
        plan.recreated.append((old_module, new_module))
    plan.chain = chain.with_modules([current[module.name] for module in chain.modules])
    return plan


def _keep_origin(new_profile, profile, setting: tuple[str, str]) -> None:
    """A value asked for but unchanged keeps where it came from."""
    if setting in profile.origins:
        new_profile.origins[setting] = profile.origins[setting]
    else:
        new_profile.origins.pop(setting, None)


def commit(plan: Plan) -> None:
    """Just before the new chain is put in force: each re-created module
    takes over what its predecessor learned while the sandbox ran (not its
    settings: PR_SET_PTRACER declarations, for ptrace)."""
    for old_module, new_module in plan.recreated:
        new_module.adopt(old_module)


def strictness(module, key: str):
    """How strict a module's setting is, to tell a tightening from a
    loosening: a level by its number ("auto" is the module's strongest level,
    whoever enforces it), a flag by its truth; None: no order known."""
    value = module.config[key]
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if value == "auto" and isinstance(getattr(module, "strongest", None), int):
        return module.strongest
    return None


def direction(old_module, new_module, key: str) -> str:
    before, after = strictness(old_module, key), strictness(new_module, key)
    if before is None or after is None or before == after:
        return "changed"
    return "tightened" if after > before else "loosened"
