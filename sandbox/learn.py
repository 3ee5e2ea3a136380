"""Learning a profile from a run, as aa-logprof does from a complain-mode log.

`yama-run --learn --audit-log app.jsonl -- app` is a --permissive run (nothing
is denied) in which every value of every setting is asked beside the
profile's own modules: for each setting, one instance of its module per value
stricter than the loosest (a "rung"). A call that some rung would deny is
logged as a `learn` record naming the setting and the values that would have
denied it. Each rung keeps its own state (PR_SET_PTRACER declarations), so it
decides exactly as a profile with that value would have.

`yama-run --propose-profile app.jsonl` reads those records and prints a
profile: for each setting, the strictest value that denied no call of the
run, with the calls that ruled out the stricter ones."""
from __future__ import annotations

import datetime
import json
import os
import shlex
import threading
import time
from pathlib import Path

from . import __version__
from . import modules as policy_modules
from . import profile as profiles
from .audit import Audit, printable
from .chain import Chain

# Each setting's values from the loosest to the strictest. A setting that is
# not here (a third-party module's) is kept as the run's profile had it.
ORDER = {
    ("ptrace", "scope"): (0, 1, 2, 3),
    ("hardlinks", "protected"): (0, 1),
    ("symlinks", "protected"): (0, 1),
    ("symlinks", "protect_creation"): (False, True),
    ("fifos", "protected"): (0, 1, 2),
    ("regular", "protected"): (0, 1, 2),
}

EXAMPLES = 3        # calls quoted per ruled-out value


class LearnError(Exception):
    pass


# -- the learning run ----------------------------------------------------------

class Rung:
    """A module instance at one value of one setting (the module's other ranked
    settings at their loosest, so that its denials are that setting's). It
    shows the supervisor only what routing and C's rule tables need: its name,
    hooks and hook methods, not enforcement() (-v speaks of the profile)."""

    def __init__(self, module, key, value):
        self.module, self.key, self.value = module, key, value
        self.name = module.name
        self.tabulated = module.tabulated

    def hooks(self) -> set[str]:
        return self.module.hooks()

    def __getattr__(self, hook):
        if hook in self.module.hooks():
            return getattr(self.module, hook)
        raise AttributeError(hook)


def rungs(profile: profiles.Profile) -> list[Rung]:
    out = []
    for name in profile.chain:
        cls = policy_modules.load(name)
        ranked = [key for key in cls.settings if (name, key) in ORDER]
        for key in ranked:
            config = dict(profile.settings.get(name, {}))
            config.update({other: ORDER[(name, other)][0] for other in ranked})
            for value in ORDER[(name, key)][1:]:
                out.append(Rung(cls({**config, key: value}), key, value))
    return out


class LearningChain(Chain):
    """The profile's modules, walked as with --permissive, then every rung."""

    def __init__(self, modules, audit: "LearningAudit", profile: profiles.Profile):
        super().__init__(modules, audit, permissive=True)
        self.rungs = rungs(profile)
        # Routing and C's rule tables are computed from chain.modules: with the
        # rungs there, C hands Python every call that any rung would deny.
        self.modules = [*self.modules, *self.rungs]
        self._rungs_by_hook: dict[str, list[Rung]] = {}
        for rung in self.rungs:
            for hook in rung.hooks():
                self._rungs_by_hook.setdefault(hook, []).append(rung)

    def hooks(self) -> set[str]:
        return super().hooks() | set(self._rungs_by_hook)

    def walk(self, hook: str, request):
        super().walk(hook, request)
        denied: dict[tuple[str, str], list] = {}
        for rung in self._rungs_by_hook.get(hook, ()):
            verdict = self._ask(rung, hook, request)
            if verdict is not None:
                denied.setdefault((rung.name, rung.key), []).append((rung.value, verdict.reason))
        for (module, key), found in denied.items():
            self.audit.learned(module, key, hook, request, found)
        return None


class LearningAudit(Audit):
    """The audit log of a learning run: its profile first, then `learn` records."""

    def started(self, profile: profiles.Profile, argv: list[str]) -> None:
        settings = {name: {key: profile.value(name, key)[0]
                           for key in policy_modules.load(name).settings}
                    for name in profile.chain}
        self._write({"time": time.time(), "action": "learn-start", "version": __version__,
                     "argv": argv, "profile": profile.name, "source": profile.source,
                     "chain": profile.chain, "settings": settings})

    def learned(self, module: str, key: str, hook: str, request, found) -> None:
        caller = request.caller
        record = {"time": time.time(), "action": "learn", "module": module, "setting": key,
                  "denied_at": [value for value, _ in found],
                  "reasons": [[value, reason] for value, reason in found],
                  "hook": hook, "syscall": request.syscall, "pid": caller.tgid,
                  "comm": caller.comm,
                  "call": f"{request.describe()} by {caller.describe()}"}
        record.update(request.audit_fields())
        self._write(record)


def start(profile, modules, audit_log: str, verbose: bool, argv: list[str]):
    """(audit, chain) of a learning run."""
    audit = LearningAudit(audit_log, verbose)
    audit.started(profile, argv)
    audit.say(f"learning: every value of {len(ORDER)} settings is asked, nothing is "
              f"denied; then yama-run --propose-profile {audit_log}")
    return audit, LearningChain(modules, audit, profile)


# -- proposing a profile -------------------------------------------------------

def _records(path: str) -> list[dict]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise LearnError(f"{path}: {exc.strerror}") from None
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            raise LearnError(f"{path}:{number}: not a JSON audit record") from None
    return records


def propose(path: str) -> str:
    """The profile learned from the log at path, as commented TOML."""
    records = _records(path)
    runs = [r for r in records if r.get("action") == "learn-start"]
    if not runs:
        raise LearnError(f"{path}: no record of a learning run; write one with "
                         f"yama-run --learn --audit-log {path} -- PROGRAM [ARG]...")
    run = runs[-1]
    learned = [r for r in records if r.get("action") == "learn"]
    program = os.path.basename(run["argv"][0]) if run.get("argv") else "PROGRAM"
    out = _header(path, runs, program)
    out += [f"description = {profiles.toml_value(f'learned from a run of {program}')}",
            f"chain = {profiles.toml_value(run['chain'])}"]
    for module in run["chain"]:
        out.append("")
        values = run["settings"].get(module, {})
        body = []
        for key in sorted(values):
            why, value = _decide(module, key, values[key], learned)
            body += [*why, f"{key} = {profiles.toml_value(value)}"]
        out += [f"[{module}]", *body]
    return "\n".join(out) + "\n"


def _header(path: str, runs: list[dict], program: str) -> list[str]:
    run = runs[-1]
    when = datetime.datetime.fromtimestamp(run.get("time", 0), datetime.timezone.utc)
    which = f"the last of {len(runs)} learning runs" if len(runs) > 1 else "a learning run"
    every = " (the calls of every run in the log count)" if len(runs) > 1 else ""
    return [f"# Proposed by yama-run --propose-profile {printable(path)}",
            f"# from {which} of: {printable(shlex.join(run.get('argv') or [program]))}",
            f"# (yama-run {printable(str(run.get('version', '?')))}, {when:%Y-%m-%d %H:%M} UTC, "
            f"profile {printable(str(run.get('profile')))}: {printable(str(run.get('source')))}).",
            f"# Each value is the strictest that denied no call of the run{every},",
            "# with the calls that ruled out the stricter ones. A run shows only what",
            "# it exercised: review, then save as",
            printable(f"# ~/.config/yama-run/profiles/{program}.toml (found for {program} by name)"),
            "# or pass the file with --profile."]


def _decide(module: str, key: str, run_value, learned: list[dict]):
    """(comment lines, value) for one setting. The values of one setting are
    of one type, so comparing them (1 == True) cannot mix two settings."""
    order = ORDER.get((module, key))
    if order is None:
        return ([f"# {key}: kept from the run's profile (yama-run does not rank "
                 f"the values of {module}.{key})"], run_value)
    mine = [r for r in learned if r.get("module") == module and r.get("setting") == key]
    denied = {v for r in mine for v in r.get("denied_at", [])}
    allowed = [v for v in order if v not in denied]
    value = allowed[-1] if allowed else order[0]
    was = f" (the run's profile had {_spell(run_value)})" if run_value != value else ""
    if not mine:
        return ([f"# {key} = {_spell(value)}: the strictest value; no call of the run "
                 f"was denied at it{was}"], value)
    lines = [f"# {key} = {_spell(value)}: the strictest value that denied no call "
             f"of the run{was};"]
    for stricter in order[order.index(value) + 1:]:
        calls = [r for r in mine if stricter in r.get("denied_at", [])]
        if not calls:
            continue
        lines.append(f"#   at {_spell(stricter)}, {len(calls)} call{'s' if len(calls) != 1 else ''}"
                     f" would have been denied, e.g.:")
        for record in calls[:EXAMPLES]:
            reasons = {_spell(v): why for v, why in record.get("reasons", [])}
            # the call names what the program chose (paths, its comm): one
            # line each, or a newline in them would write the profile
            lines.append(printable(f"#     {record.get('call', record.get('syscall'))}: "
                                   f"{reasons.get(_spell(stricter), '')}"))
    return lines, value


def _spell(value) -> str:
    """A value as a profile writes it (true, 2, "auto")."""
    return profiles.toml_value(value)
