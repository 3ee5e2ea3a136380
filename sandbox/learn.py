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
import math
import os
import re
import shlex
import stat
import time
import tomllib

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
#
# The log is a file of the user's, which the program (running as the user)
# may have rewritten or replaced: a FIFO (the read waited forever), /dev/zero
# or a sparse file of gigabytes (read whole into memory), records of any JSON
# type ("denied_at": "abc", "argv": {}, a module named "x]\n[y"). Each gets an
# error naming the file and line (yama-run exits 125), never a traceback or a
# hang; and what is proposed is parsed back, so that it sets exactly the
# chain and the settings it says.

LOG_MAX = 256 << 20     # bytes of a log read (a learning run writes ~0.5 KiB a call)
LINE_MAX = 1 << 20      # bytes of one record
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")      # a module's or a setting's name: a bare key
_SCALARS = (bool, int, float, str)


class Learned:
    """What the learn records of a log say, per ranked setting: the values
    that denied some call, and for each the number of calls and the first
    EXAMPLES of them (the call and the reason, as the record gives them)."""

    def __init__(self):
        self.calls: dict[tuple[str, str], dict[str, list]] = {}

    def add(self, record: dict, where: str) -> None:
        module, key = record.get("module"), record.get("setting")
        order = ORDER.get((module, key)) if isinstance(module, str) and \
            isinstance(key, str) else None
        if order is None:
            return              # a setting yama-run does not rank: nothing to decide
        denied_at, reasons = record.get("denied_at"), record.get("reasons", [])
        if not (isinstance(denied_at, list) and isinstance(reasons, list)
                and all(_is_value(v, order) for v in denied_at)
                and all(isinstance(r, list) and len(r) == 2 and _is_value(r[0], order)
                        and isinstance(r[1], str) for r in reasons)):
            raise LearnError(f"{where}: a learn record whose values are not those of "
                             f"{module}.{key}")
        why = {_spell(value): reason for value, reason in reasons}
        call = record.get("call", record.get("syscall"))
        for value in denied_at:
            entry = self.calls.setdefault((module, key), {}).setdefault(_spell(value), [0, []])
            entry[0] += 1
            if len(entry[1]) < EXAMPLES:
                entry[1].append((str(call), why.get(_spell(value), "")))

    def denied(self, module: str, key: str) -> dict[str, list]:
        """{spelled value: [calls, examples]} of one setting."""
        return self.calls.get((module, key), {})


def _is_value(value, order) -> bool:
    """One of the setting's values, of its type (True is not 1 here)."""
    return any(type(value) is type(v) and value == v for v in order)


def _records(path: str):
    """(where, record) for each record of the log, read without waiting on
    what is not a regular file, and within LOG_MAX and LINE_MAX."""
    shown = printable(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise LearnError(f"{shown}: {exc.strerror}") from None
    with open(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise LearnError(f"{shown}: not a regular file (a learning run's --audit-log is one)")
        if st.st_size > LOG_MAX:
            raise LearnError(f"{shown}: larger than {LOG_MAX >> 20} MiB: not read (learn "
                             "into a new log)")
        total = 0
        for number, line in enumerate(iter(lambda: f.readline(LINE_MAX + 1), b""), 1):
            total += len(line)
            where = f"{shown}:{number}"
            if len(line) > LINE_MAX or total > LOG_MAX:
                raise LearnError(f"{where}: a record longer than {LINE_MAX >> 20} MiB, or the "
                                 f"log past {LOG_MAX >> 20} MiB: not read")
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                raise LearnError(f"{where}: not a JSON audit record") from None
            if not isinstance(record, dict):
                raise LearnError(f"{where}: not a JSON audit record")
            yield where, record


def _checked_run(record: dict, where: str) -> dict:
    """A learn-start record whose fields have the types yama-run writes."""
    argv, chain, settings = record.get("argv"), record.get("chain"), record.get("settings")
    when = record.get("time", 0)
    ok = (isinstance(argv, list) and all(isinstance(a, str) for a in argv)
          and isinstance(chain, list) and all(isinstance(m, str) and _NAME.fullmatch(m)
                                              for m in chain)
          and isinstance(settings, dict)
          and all(isinstance(values, dict) and all(
              isinstance(k, str) and _NAME.fullmatch(k) and isinstance(v, _SCALARS)
              and (not isinstance(v, str) or printable(v) == v)
              and (not isinstance(v, float) or math.isfinite(v))
              for k, v in values.items()) for values in settings.values())
          and isinstance(when, (int, float)) and not isinstance(when, bool)
          and 0 <= when < 1e11)
    if not ok:
        raise LearnError(f"{where}: a learn-start record yama-run did not write (its argv, "
                         "chain, settings or time are not of their types)")
    return record


def propose(path: str) -> str:
    """The profile learned from the log at path, as commented TOML."""
    runs, learned = [], Learned()
    for where, record in _records(path):
        if record.get("action") == "learn-start":
            runs.append(_checked_run(record, where))
        elif record.get("action") == "learn":
            learned.add(record, where)
    if not runs:
        raise LearnError(f"{printable(path)}: no record of a learning run; write one with "
                         f"yama-run --learn --audit-log {printable(path)} -- PROGRAM [ARG]...")
    run = runs[-1]
    program = os.path.basename(run["argv"][0]) if run["argv"] else "PROGRAM"
    out = _header(path, runs, program)
    out += [f"description = {profiles.toml_value(f'learned from a run of {printable(program)}')}",
            f"chain = {profiles.toml_value(run['chain'])}"]
    proposed = {}
    for module in run["chain"]:
        out.append("")
        values = run["settings"].get(module, {})
        body = []
        for key in sorted(values):
            why, value = _decide(module, key, values[key], learned)
            body += [*why, f"{key} = {profiles.toml_value(value)}"]
            proposed.setdefault(module, {})[key] = value
        out += [f"[{module}]", *body]
    text = "\n".join(out) + "\n"
    _says_what_it_sets(text, run["chain"], proposed)
    return text


def _says_what_it_sets(text: str, chain: list[str], proposed: dict) -> None:
    """The proposal, parsed, holds the chain and the settings decided and
    nothing else: no comment line of it ended early (a newline in what the
    program named), no name or value wrote a table of its own."""
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LearnError(f"the proposed profile would not parse ({exc}): not printed") from None
    expected = {"chain": chain, **{module: proposed.get(module, {}) for module in chain}}
    parsed.pop("description", None)
    if parsed != expected:
        raise LearnError("the proposed profile would set more or other than was decided: "
                         "not printed")


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


def _decide(module: str, key: str, run_value, learned: Learned):
    """(comment lines, value) for one setting."""
    order = ORDER.get((module, key))
    if order is None:
        return ([f"# {key}: kept from the run's profile (yama-run does not rank "
                 f"the values of {module}.{key})"], run_value)
    denied = learned.denied(module, key)
    allowed = [v for v in order if _spell(v) not in denied]
    value = allowed[-1] if allowed else order[0]
    was = f" (the run's profile had {_spell(run_value)})" if run_value != value else ""
    if not denied:
        return ([f"# {key} = {_spell(value)}: the strictest value; no call of the run "
                 f"was denied at it{was}"], value)
    lines = [f"# {key} = {_spell(value)}: the strictest value that denied no call "
             f"of the run{was};"]
    for stricter in order[order.index(value) + 1:]:
        count, examples = denied.get(_spell(stricter), (0, []))
        if not count:
            continue
        lines.append(f"#   at {_spell(stricter)}, {count} call{'s' if count != 1 else ''}"
                     f" would have been denied, e.g.:")
        for call, reason in examples:
            # the call names what the program chose (paths, its comm): one
            # line each, or a newline in them would write the profile
            lines.append(printable(f"#     {call}: {reason}"))
    return lines, value


def _spell(value) -> str:
    """A value as a profile writes it (true, 2, "auto")."""
    return profiles.toml_value(value)
