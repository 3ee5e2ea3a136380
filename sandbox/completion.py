"""Shell completion (click's protocol, `_YAMA_RUN_COMPLETE`): profile names,
`--set MODULE.KEY=VALUE` keys and their valid values, PROGRAM as a command
on PATH, its arguments as files.

Bash splits words at `=` and `:` (COMP_WORDBREAKS), so click's own bash
script would hand `--set ptrace.scope=` over as three words. Ours sends the
line up to the cursor instead, and answers with only the part of each
candidate that readline replaces (after the last word-break character)."""
from __future__ import annotations

import os

import click.shell_completion as shell_completion

from . import modules as policy_modules
from . import profile as profiles


def _typable(name: str) -> bool:
    """Each shell's protocol gives one candidate per line: a name holding a
    control character (a newline would make two, the second of the name's
    choosing) is left out."""
    return not any(ord(c) < 32 or ord(c) == 127 for c in name)


def profile_names(ctx, param, incomplete):
    try:
        return sorted(n for n in profiles.names() if n.startswith(incomplete) and _typable(n))
    except Exception:               # a broken profile must not break the shell
        return []


def _spell(value) -> str:
    """A setting's value as --set takes it."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def settings(ctx, param, incomplete):
    """MODULE.KEY= for the keys, then MODULE.KEY=VALUE for the valid values."""
    key, sep, _ = incomplete.partition("=")
    out = []
    for name in policy_modules.available():
        try:
            schema = policy_modules.load(name).settings
        except policy_modules.SettingError:
            continue
        for setting_key, setting in schema.items():
            dotted = f"{name}.{setting_key}"
            if sep and dotted == key:
                out += [f"{dotted}={_spell(v)}" for v in setting.choices]
            elif not sep:
                out.append(f"{dotted}=")
    return [c for c in out if c.startswith(incomplete)]


def command(ctx, param, incomplete):
    """PROGRAM: a command on PATH, or a file once a / is typed."""
    if "/" in incomplete:
        return files(ctx, param, incomplete)
    found = set()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        try:
            entries = os.scandir(directory or ".")
        except OSError:
            continue
        with entries:
            for entry in entries:
                if entry.name.startswith(incomplete) and _typable(entry.name) and \
                        _executable(entry):
                    found.add(entry.name)
    return sorted(found)


def _executable(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file() and os.access(entry.path, os.X_OK)
    except OSError:
        return False


def files(ctx, param, incomplete):
    return [shell_completion.CompletionItem(incomplete, type="file")]


_SOURCE_BASH = """\
%(complete_func)s() {
    local IFS=$'\\n'
    local response

    response=$(env COMP_WORDS="${COMP_WORDS[*]}" COMP_CWORD=$COMP_CWORD \
_YAMA_RUN_LINE="${COMP_LINE:0:COMP_POINT}" _YAMA_RUN_BREAKS="$COMP_WORDBREAKS" \
%(complete_var)s=bash_complete $1)

    for completion in $response; do
        IFS=',' read type value <<< "$completion"

        if [[ $type == 'dir' ]]; then
            COMPREPLY=()
            compopt -o dirnames
        elif [[ $type == 'file' ]]; then
            COMPREPLY=()
            compopt -o default
        elif [[ $type == 'plain' ]]; then
            [[ $value == *= ]] && compopt -o nospace
            # quoted for the line it goes into: a command on PATH named
            # 'x;rm -rf ~' or 'x$(...)' is a name, never shell syntax, and
            # 'x*' is not expanded against the current directory
            printf -v value '%%q' "$value"
            COMPREPLY+=("$value")
        fi
    done

    return 0
}

%(complete_func)s_setup() {
    complete -o nosort -F %(complete_func)s %(prog_name)s
}

%(complete_func)s_setup;
"""


class BashComplete(shell_completion.BashComplete):
    """click's bash completion, fed with the line rather than bash's words."""

    source_template = _SOURCE_BASH

    def get_completion_args(self):
        line = os.environ.get("_YAMA_RUN_LINE")
        if line is None:                    # an older script, or a test: bash's words
            return super().get_completion_args()
        words = shell_completion.split_arg_string(line)
        incomplete = "" if not line or line[-1].isspace() or not words else words.pop()
        return words[1:], incomplete

    def get_completions(self, args, incomplete):
        self._incomplete = incomplete
        return super().get_completions(args, incomplete)

    def format_completion(self, item):
        """Readline replaces only the text after the last word-break character
        (COMP_WORDBREAKS: `=` and `:` among them), so that is what we answer."""
        breaks = os.environ.get("_YAMA_RUN_BREAKS", "")
        incomplete = getattr(self, "_incomplete", "")
        cut = max((incomplete.rfind(c) for c in breaks if not c.isspace()), default=-1) + 1
        value = item.value
        if item.type == "plain" and cut and value.startswith(incomplete[:cut]):
            value = value[cut:]
        return f"{item.type},{value}"


shell_completion.add_completion_class(BashComplete, "bash")    # ours for bash_source/_complete



def desktop_ids(ctx, param, incomplete):
    """The menu entries (desktop ids, without .desktop) on this system."""
    from .desktop import system_dirs
    found = {p.stem for d in system_dirs() for p in d.glob("*.desktop") if _typable(p.stem)}
    return sorted(n for n in found if n.startswith(incomplete))
