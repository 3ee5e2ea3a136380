"""The program behind the usual launchers, for the profile lookup:
`yama-run env MOZ_HEADLESS=1 nice -n 5 firefox-esr` gets firefox's profile.

Each launcher's options are parsed as the tool itself parses them (GNU
getopt_long in "+" mode: options stop at the first operand; `--` ends them;
long options may be abbreviated; `--opt=value` or `--opt value`), so that an
option's value is never taken for the program: env (assignments, -i, -u NAME,
-C DIR, -S STRING, -0, -v, the signal options), nice (-n N, -N), ionice,
taskset (its mask), chrt (its priority), nohup, setsid, stdbuf, timeout (its
duration). A launcher asked to act on an existing process (taskset -p,
ionice -p, chrt -p) or to print something (--help) starts no program."""
from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Syntax:
    short_arg: str = ""                 # short options that take a value
    short_flag: str = ""                # short options that do not
    long_arg: frozenset = frozenset()
    long_flag: frozenset = frozenset()
    long_optional: frozenset = frozenset()   # a value only as --opt=value
    operands: int = 0                   # operands before the program (mask, duration, ...)
    no_program: frozenset = frozenset() # options after which no program is started
    long_no_program: frozenset = field(default=frozenset({"help", "version"}))


def _set(*names: str) -> frozenset:
    return frozenset(names)


LAUNCHERS = {
    "env": Syntax(short_arg="uCSa", short_flag="i0v",
                  long_arg=_set("unset", "chdir", "split-string", "argv0"),
                  long_flag=_set("ignore-environment", "null", "debug",
                                 "list-signal-handling"),
                  long_optional=_set("block-signal", "default-signal", "ignore-signal")),
    "nice": Syntax(short_arg="n", long_arg=_set("adjustment")),
    "ionice": Syntax(short_arg="cnpPu", short_flag="thV",
                     long_arg=_set("class", "classdata", "pid", "pgid", "uid"),
                     long_flag=_set("ignore"), no_program=_set("p", "P", "u", "h", "V")),
    "taskset": Syntax(short_flag="acphV", long_flag=_set("all-tasks", "cpu-list", "pid"),
                      operands=1, no_program=_set("p", "h", "V")),
    "chrt": Syntax(short_arg="DPT", short_flag="abdfimoprRvhV",
                   long_arg=_set("sched-deadline", "sched-period", "sched-runtime"),
                   long_flag=_set("all-tasks", "batch", "deadline", "fifo", "idle", "max",
                                  "other", "pid", "rr", "reset-on-fork", "verbose"),
                   operands=1, no_program=_set("p", "m", "h", "V")),
    "nohup": Syntax(),
    "setsid": Syntax(short_flag="cfwhV", long_flag=_set("ctty", "fork", "wait"),
                     no_program=_set("h", "V")),
    "stdbuf": Syntax(short_arg="ioe", long_arg=_set("input", "output", "error")),
    "timeout": Syntax(short_arg="ks", short_flag="fpv",
                      long_arg=_set("kill-after", "signal"),
                      long_flag=_set("foreground", "preserve-status", "verbose"), operands=1),
}
DEFAULT_PATH = "/bin:/usr/bin"
LONG_NO_PROGRAM = {"ionice": _set("pid", "pgid", "uid"), "taskset": _set("pid"),
                   "chrt": _set("pid", "max")}


@dataclass
class Seen:
    """What the launchers did on the way to the program."""
    launchers: list[str] = field(default_factory=list)
    path: str | None = None             # PATH as the program will be looked up
    cwd: str | None = None              # env -C


class _Parse:
    """One launcher's options, getopt_long("+") style: the words after them."""

    def __init__(self, name: str, syntax: Syntax, words: list[str], seen: Seen):
        self.name, self.syntax, self.seen = name, syntax, seen
        self.words = list(words)
        self.no_program = False

    def long_name(self, given: str) -> str | None:
        s = self.syntax
        known = s.long_arg | s.long_flag | s.long_optional | s.long_no_program
        if given in known:
            return given
        matches = [n for n in known if n.startswith(given)]
        return matches[0] if len(matches) == 1 else None

    def run(self) -> list[str] | None:
        while self.words:
            word = self.words[0]
            if word == "--":
                self.words.pop(0)
                break
            if self.name == "nice" and _nice_number(word):
                self.words.pop(0)               # the obsolete -N form
                continue
            if self.name == "env" and word == "-":
                self.words.pop(0)               # the same as -i
                self.option("i", "")
                continue
            if not word.startswith("-") or word == "-":
                break
            self.words.pop(0)
            if word.startswith("--"):
                self.long(word[2:])
            else:
                self.short(word[1:])
            if self.no_program:
                return None
        return self.operands()

    def long(self, text: str) -> None:
        given, has_value, value = text.partition("=")
        name = self.long_name(given)
        if name is None:
            return                              # unknown: the tool would refuse; go on
        if name in self.syntax.long_no_program or name in LONG_NO_PROGRAM.get(self.name, ()):
            self.no_program = True
        elif name in self.syntax.long_arg:
            if not has_value:
                value = self.words.pop(0) if self.words else ""
            self.option(name, value)
        else:
            self.option(name, value)

    def short(self, letters: str) -> None:
        for i, letter in enumerate(letters):
            if letter in self.syntax.no_program:
                self.no_program = True
            if letter in self.syntax.short_arg:
                rest = letters[i + 1:]
                value = rest if rest else (self.words.pop(0) if self.words else "")
                self.option(letter, value)
                return
            self.option(letter, "")

    def option(self, name: str, value: str) -> None:
        """An option's value that changes how the program is found."""
        if self.name != "env":
            return
        if name in ("i", "ignore-environment"):
            self.seen.path = DEFAULT_PATH       # execvp's search without PATH
        elif name in ("S", "split-string"):
            self.words[:0] = _split_string(value)
        elif name in ("C", "chdir"):
            self.seen.cwd = os.path.join(self.seen.cwd or "", value)

    def operands(self) -> list[str] | None:
        if self.name == "env":
            while self.words and "=" in self.words[0] and not self.words[0].startswith("="):
                key, _, value = self.words.pop(0).partition("=")
                if key == "PATH":
                    self.seen.path = value
        skip = self.syntax.operands
        if self.name == "chrt" and not (self.words and self.words[0].lstrip("+-").isdigit()):
            skip = 0                            # the priority may be left out
        if len(self.words) <= skip:
            return None
        return self.words[skip:]


def _nice_number(word: str) -> bool:
    """nice's obsolete adjustment: -N, --N, -+N."""
    if len(word) < 2 or word[0] != "-":
        return False
    rest = word[1:]
    if rest[:1] in "+-":
        rest = rest[1:]
    return rest.isdigit()


def _split_string(text: str) -> list[str]:
    """env -S: words as the shell would split them (env's \\_ is a space)."""
    try:
        return shlex.split(text.replace("\\_", "\\ "))
    except ValueError:
        return text.split()


def see_through(argv: list[str]) -> tuple[list[str], Seen]:
    """argv with the launchers in front of the program taken off (as far as
    they go; a launcher that starts no program stays), and what they did."""
    seen = Seen()
    for _ in range(32):                         # env env env ...: bounded
        if not argv:
            break
        name = os.path.basename(argv[0])
        syntax = LAUNCHERS.get(name)
        if syntax is None:
            break
        rest = _Parse(name, syntax, argv[1:], seen).run()
        if not rest:
            break
        seen.launchers.append(name)
        argv = rest
    if seen.cwd and "/" in argv[0] and not os.path.isabs(argv[0]):
        argv = [os.path.join(seen.cwd, argv[0]), *argv[1:]]
    return argv, seen
