"""The yama-run(1) man page, built from the click command so it cannot drift
from the options: `python3 -m sandbox.manpage > man/yama-run.1`. It reads
only the command's definition: no C extension needs to be built for it. The
page is installed with the package (share/man/man1)."""
from __future__ import annotations

import datetime
import os
import sys

import click

from . import __version__
from .cli import cli

EXIT_STATUS = [
    ("the program's", "it exited normally"),
    ("its signal", "it was killed by signal N: yama-run is killed by N too, as a shell sees "
     "it (\"$?\" is 128+N), without a core dump of its own"),
    ("125", "yama-run itself failed: bad option, bad profile or setting, cannot set up"),
    ("126", "PROGRAM was found but cannot be executed"),
    ("127", "PROGRAM was not found"),
]

FILES = [
    ("$XDG_CONFIG_HOME/yama-run/profiles/NAME.toml",
     "the user's profiles (~/.config/yama-run/profiles when XDG_CONFIG_HOME is unset)"),
    ("/etc/yama-run/profiles/NAME.toml", "the system's profiles"),
    ("the bundled profiles", "default, strict (included by the browser-like ones), firefox, "
     "chromium, thunderbird, signal-desktop, evince, make; see --list-profiles"),
    ("$XDG_DATA_HOME/applications/NAME.desktop",
     "menu entries written by --install-desktop (~/.local/share/applications when "
     "XDG_DATA_HOME is unset)"),
]

ENVIRONMENT = [
    ("XDG_CONFIG_HOME", "where the user's profiles are looked for"),
    ("XDG_DATA_HOME, XDG_DATA_DIRS", "where --install-desktop writes menu entries, and "
     "where it finds the system's"),
    ("PATH", "where PROGRAM is found; under the symlink convention, the real program is "
     "the first of its name on PATH that is not a link to yama-run"),
    ("YAMA_RUN_NO_FAST_PATH=1", "send every hooked call to the Python modules "
     "(for tests and debugging)"),
    ("_YAMA_RUN_COMPLETE", "shell completion: eval \"$(_YAMA_RUN_COMPLETE=bash_source "
     "yama-run)\" (zsh_source, fish_source for those shells)"),
]

PROFILES = """\
Without --profile, the profile is chosen by the basename of PROGRAM: a profile of
that name, else one that lists it in its aliases, else the same for the file
PROGRAM resolves to (through symlinks), else default. Profiles are
searched in the user's directory, the system's, then the bundled ones; the first
file of a name shadows the others. A profile is TOML: chain (the module names, in
the order they are asked), one table per module, include (profiles read first,
whose values this one overrides; a profile may include the one of its own name
that it shadows), aliases and description. --set comes last."""

EXAMPLES = [
    ("yama-run firefox-esr", "run Firefox ESR under the bundled firefox profile"),
    ("yama-run --show-profile firefox-esr",
     "the settings it would use, each with the file and line it comes from"),
    ("yama-run -v --audit-log audit.jsonl --set ptrace.scope=3 -- strace -o /dev/null true",
     "watch a debugger attach being refused"),
    ("yama-run --learn --audit-log app.jsonl -- app; yama-run --propose-profile app.jsonl "
     "> ~/.config/yama-run/profiles/app.toml",
     "learn a profile from a run that denies nothing, then use it for every run of app"),
    ("yama-run --install-desktop firefox-esr",
     "make the desktop menu's Firefox start under yama-run (--remove-desktop undoes it)"),
    ("ln -s $(command -v yama-run) ~/.local/bin/firefox-esr",
     "the symlink convention: firefox-esr, found first on PATH, now runs the real one "
     "under yama-run, every argument passed through"),
]

SYMLINK = """\
Started under another name than yama-run (a symbolic link called firefox-esr
that points at it), yama-run runs the program of that name under its profile:
the first executable of that name on PATH that is not a link to yama-run
itself, with every argument passed to it untouched (none is read as an option
of yama-run's)."""


def _roff(text: str) -> str:
    """Escape text for roff: backslashes, hyphens, leading dots and quotes."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line[:1] in (".", "'") else line
                     for line in text.splitlines())


def _option_lines(param: click.Parameter) -> list[str]:
    opts = sorted([*param.opts, *param.secondary_opts], key=len)     # -h before --help
    names = ", ".join(f"\\fB{_roff(o)}\\fR" for o in opts)
    metavar = getattr(param, "metavar", None)
    if not getattr(param, "is_flag", False) and not metavar:
        metavar = param.make_metavar(click.Context(cli)) if not param.is_flag else ""
    head = names + (f" \\fI{_roff(metavar)}\\fR" if metavar and not param.is_flag else "")
    return [".TP", head, _roff(getattr(param, "help", None) or "")]


def render(date: str | None = None) -> str:
    ctx = click.Context(cli, info_name="yama-run", **cli.context_settings)
    date = date or datetime.date.today().isoformat()
    synopsis = " ".join(cli.collect_usage_pieces(ctx))
    out = [f'.TH YAMA\\-RUN 1 "{date}" "yama-run {__version__}" "User Commands"',
           ".SH NAME", "yama\\-run \\- " + _roff(cli.help.splitlines()[0].rstrip(".")
                                                    .replace("Run PROGRAM", "run a program")),
           ".SH SYNOPSIS", f"\\fByama\\-run\\fR {_roff(synopsis)}",
           ".br", "\\fByama\\-run\\fR \\fB\\-\\-list\\-profiles\\fR | "
                  "\\fB\\-\\-list\\-modules\\fR | \\fB\\-\\-show\\-profile\\fR "
                  "\\fIPROGRAM|NAME|FILE.toml\\fR [\\fB\\-\\-set\\fR \\fIMODULE.KEY=VALUE\\fR]...",
           ".br", "\\fByama\\-run\\fR \\fB\\-\\-learn\\fR \\fB\\-\\-audit\\-log\\fR "
                  "\\fILOG\\fR [\\fIOPTIONS\\fR] [\\fB\\-\\-\\fR] \\fIPROGRAM\\fR "
                  "[\\fIARG\\fR]...",
           ".br", "\\fByama\\-run\\fR \\fB\\-\\-propose\\-profile\\fR \\fILOG\\fR | "
                  "\\fB\\-\\-install\\-desktop\\fR \\fIPROGRAM\\fR | "
                  "\\fB\\-\\-remove\\-desktop\\fR \\fIPROGRAM\\fR",
           ".SH DESCRIPTION", _roff(" ".join(cli.help.split())),
           ".SH OPTIONS"]
    for param in cli.get_params(ctx):
        if isinstance(param, click.Option):
            out += _option_lines(param)
    out += [".SH PROFILES", _roff(PROFILES), ".SH SYMLINKS", _roff(SYMLINK),
            ".SH EXIT STATUS"]
    for status, meaning in EXIT_STATUS:
        out += [".TP", f"\\fB{_roff(status)}\\fR", _roff(meaning)]
    for title, rows in (("ENVIRONMENT", ENVIRONMENT), ("FILES", FILES)):
        out.append(f".SH {title}")
        for name, meaning in rows:
            out += [".TP", f"\\fI{_roff(name)}\\fR", _roff(meaning)]
    out.append(".SH EXAMPLES")
    for command, meaning in EXAMPLES:
        out += [".TP", f"\\fB{_roff(command)}\\fR", _roff(meaning)]
    out += [".SH SEE ALSO", "\\fBptrace\\fR(2), \\fBprctl\\fR(2), \\fBseccomp_unotify\\fR(2), "
            "\\fBproc\\fR(5) (/proc/sys/fs/protected_*)"]
    return "\n".join(out) + "\n"


def main() -> None:
    # SOURCE_DATE_EPOCH keeps the committed page reproducible
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    date = (datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).date()
            .isoformat() if epoch else None)
    sys.stdout.write(render(date))


if __name__ == "__main__":
    main()
