"""yama-run [--profile NAME|PATH | --no-profile] [--set MODULE.KEY=VALUE]...
           [--audit-log FILE] [--permissive] [-v] [-q] [--wait] [--] PROGRAM [ARG]...
yama-run --list-profiles | --list-modules | --show-profile PROGRAM|NAME|FILE.toml [--set ...]
yama-run --list-denials
yama-run --list-running | --show-running ID | --change-running ID --set MODULE.KEY=VALUE...

Introspection is by options, not subcommands, so any PROGRAM name still runs."""
from __future__ import annotations

import os
import sys
import traceback

if __name__ == "__main__":
    # python3 -m sandbox.cli (the tests): the launch path first, as the
    # command's, before click and the policy modules are imported (about 30
    # ms a run); it comes back here, as sandbox.cli, only for what click reads.
    from .launch import main as launch_main
    launch_main(sys.argv[1:])

import click  # noqa: E402

from . import __version__, bareos, completion, journal
from . import learn as learning
from . import modules as policy_modules
from . import plan as plans
from . import profile as profiles
from .audit import Audit, QuietStream, printable
from .chain import Chain

# The supervisor (and with it the C extension) is imported only to run a
# program: the man page, --help and completion work without it.
BACKENDS = ("auto", "notify", "ptrace")     # sandbox.supervisor.BACKENDS
USERNS = ("auto", "never")                  # sandbox.supervisor.USERNS
EXIT_SETUP = 125                            # sandbox.lifetime.EXIT_SETUP

# From the launch path (sandbox/launch.py): the caller's descriptors, noted
# before anything of ours was open (the supervisor closes them when it
# detaches, sandbox/lifetime.py); when this run began (a plan is kept only if
# no input changed since, sandbox/plan.py); why no cached plan was used.
_launch: dict = {"inherited": [], "since": 0, "miss": "", "front": None}


def _describe(profile) -> str:
    parts = []
    for name in profile.chain:
        values = profile.settings.get(name, {})
        inner = ", ".join(f"{k}={profiles.toml_value(v)}" for k, v in sorted(values.items()))
        parts.append(f"{name}({inner})" if inner else name)
    return " -> ".join(parts) or "(empty: no filter)"


# -- choosing the profile --------------------------------------------------------

def _select(profile_name, no_profile, show, command) -> profiles.Profile:
    if no_profile:
        return profiles.builtin()
    if profile_name is not None:
        return profiles.load(profile_name)
    if show and show.endswith(".toml"):        # a profile file, not a program
        return profiles.load(show)
    path, kind, how = profiles.for_command([show] if show else command)
    return profiles.load_file(path, kind, found=how)


def _refuse_empty(**values) -> None:
    """An empty value is a mistake (a script's unset variable), never "not
    given": --profile "$STRICT" must not run under the program's own lookup,
    nor --show-profile "$P" -- PROG run PROG. values: option name (its
    parameter's, dashed) -> value."""
    hints = {"profile": "give a profile name or path", "audit_log": "give a file"}
    for name, value in values.items():
        if value == "":
            raise click.UsageError(f"--{name.replace('_', '-')}: empty value; "
                                   f"{hints.get(name, 'give a value')}")


def _apply_overrides(profile, overrides) -> None:
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise profiles.ProfileError(f"--set {item!r}: expected MODULE.KEY=VALUE")
        try:
            profiles.apply(profile, key.strip(), value.strip())
        except profiles.ProfileError as exc:
            raise profiles.ProfileError(f"--set {item!r}: {exc}") from None


def _list_profiles() -> None:
    rows = [("NAME", "FROM", "PATH", "ALIASES / NOTES")]
    for entry in profiles.catalogue():
        try:
            header = entry.header
            notes = ", ".join(header["aliases"])
        except profiles.ProfileError as exc:
            notes = f"error: {exc}"
        if entry.shadowed_by:
            notes = f"(shadowed by {entry.shadowed_by})" + (f" {notes}" if notes else "")
        # (a planted file's name or aliases could otherwise erase its own line)
        rows.append(tuple(map(printable, (entry.name, entry.kind, str(entry.path), notes))))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        click.echo("  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths)) + "  " + row[3])


def _list_modules() -> None:
    for name, origin in policy_modules.available().items():
        try:
            cls = policy_modules.load(name)
        except policy_modules.SettingError as exc:
            click.echo(f"{name} ({origin}): error: {exc}")
            continue
        doc = (cls.__doc__ or sys.modules[cls.__module__].__doc__ or "").strip()
        summary = " ".join(doc.split("\n\n")[0].split())
        click.echo(f"{name} ({origin})" + (f": {summary}" if summary else ""))
        for key, setting in sorted(cls.settings.items()):
            choices = ", ".join(profiles.toml_value(c) for c in setting.choices)
            click.echo(f"  {name}.{key} = {profiles.toml_value(setting.default)}"
                       f"  (valid: {choices}){'  ' + setting.doc if setting.doc else ''}")


def _running(list_running, show_running, change_running, overrides, program) -> None:
    """The options that talk to running sandboxes (sandbox/running.py)."""
    from . import running
    if program or sum(map(bool, (list_running, show_running, change_running))) > 1:
        raise click.UsageError("--list-running, --show-running and --change-running each "
                               "run alone, and no program")
    if overrides and not change_running:
        raise click.UsageError("--set with --list-running or --show-running: did you mean "
                               "--change-running ID --set ...?")
    try:
        if list_running:
            return running.list_running(click.echo)
        if show_running:
            return running.show_running(show_running, click.echo)
        return running.change_running(change_running, list(overrides), click.echo)
    except running.ControlError as exc:
        raise click.ClickException(str(exc)) from None


def _act(propose, install_desktop, remove_desktop, program) -> None:
    """The options that act and exit: a learned profile, a menu entry."""
    from . import desktop
    if program or sum(map(bool, (propose, install_desktop, remove_desktop))) > 1:
        raise click.UsageError("--propose-profile, --install-desktop and --remove-desktop "
                               "each run alone")
    try:
        if propose:
            return click.echo(learning.propose(propose), nl=False)
        if install_desktop:
            entry = desktop.install(install_desktop)
            click.echo(f"yama-run: installed {entry}")
            for line in desktop.exec_lines(entry):
                click.echo(f"  {line}")
        else:
            click.echo(f"yama-run: removed {desktop.remove(remove_desktop)}")
    except (learning.LearnError, desktop.DesktopError) as exc:
        raise click.ClickException(str(exc)) from None


# -- the command -----------------------------------------------------------------

@click.command(context_settings={"allow_interspersed_args": False,
                                 "help_option_names": ["-h", "--help"]})
@click.option("--profile", "profile_name", metavar="NAME|PATH",
              shell_complete=completion.profile_names,
              help="Profile to use (default: the one named after PROGRAM or one of its "
                   "aliases, else default).")
@click.option("--no-profile", is_flag=True,
              help="Use every bundled module with its default settings.")
@click.option("--set", "overrides", multiple=True, metavar="MODULE.KEY=VALUE",
              shell_complete=completion.settings,
              help="Override a module setting, after the profile; may be repeated.")
@click.option("--audit-log", type=click.Path(dir_okay=False, readable=False),
              help="Append one JSON object per denial to FILE.")
@click.option("--permissive", is_flag=True,
              help="Record what would be denied, deny nothing.")
@click.option("-v", "--verbose", is_flag=True,
              help="Say which profile is used and from where, what is enforced, and each "
                   "denial.")
@click.option("-q", "--quiet", is_flag=True,
              help="Do not print the one-line notice of a run's first denial (denials are "
                   "still recorded: see --list-denials).")
@click.option("--wait", "wait_all", is_flag=True,
              help="Exit only when every process the program started has exited (by "
                   "default yama-run exits with the program and keeps supervising what it "
                   "left behind, detached).")
@click.option("--backend", type=click.Choice(BACKENDS), default="auto", show_default=True,
              help="seccomp user-notify, or ptrace where notify cannot be used.")
@click.option("--userns", type=click.Choice(USERNS), default="auto", show_default=True,
              help="Started by an ordinary user, run the program in a user namespace of "
                   "that user, so that non-dumpable programs can be served; every process "
                   "of that user can then trace them. auto: not where the host's Yama "
                   "restricts ptrace (never: without one; their hooked calls then fail).")
@click.option("--list-profiles", is_flag=True,
              help="List the profiles found (name, where, aliases; shadowed ones marked) "
                   "and exit.")
@click.option("--list-modules", is_flag=True,
              help="List the modules (bundled and installed) with their settings and exit.")
@click.option("--list-denials", is_flag=True,
              help="Print the denials recorded recently (by every yama-run of this user) "
                   "and exit.")
@click.option("--show-profile", "show", metavar="PROGRAM|NAME|FILE.toml",
              shell_complete=completion.profile_names,
              help="Print the effective profile that `yama-run PROGRAM` would use (after "
                   "includes and --set; a profile name works too, or a FILE.toml), each "
                   "value with where it came from, and exit.")
@click.option("--learn", is_flag=True,
              help="Learning run: as --permissive, and the audit log also records which "
                   "value of each setting would have denied each call (needs --audit-log); "
                   "then --propose-profile LOG.")
@click.option("--propose-profile", "propose", metavar="LOG",
              type=click.Path(dir_okay=False),
              help="Print a profile learned from the audit log of a --learn run: for each "
                   "setting the strictest value that denied no call, and why, as commented "
                   "TOML; and exit.")
@click.option("--install-desktop", metavar="PROGRAM", shell_complete=completion.desktop_ids,
              help="Copy PROGRAM's menu entry to $XDG_DATA_HOME/applications with every "
                   "Exec run under yama-run, and exit.")
@click.option("--remove-desktop", metavar="PROGRAM", shell_complete=completion.desktop_ids,
              help="Remove the menu entry that --install-desktop made, and exit.")
@click.option("--list-running", is_flag=True,
              help="List this user's running sandboxes (supervisor and program pid, program, "
                   "profile, state, processes, denials so far, settings in force) and exit.")
@click.option("--show-running", metavar="ID",
              help="Show one running sandbox in detail (its settings with what each may be "
                   "changed to live, its processes, the changes made) and exit. ID: a pid "
                   "of the sandbox, or its program's or profile's name.")
@click.option("--change-running", metavar="ID",
              help="Change settings of a running sandbox, given with --set, from its next "
                   "call; every change is audited. Tightening is always possible where the "
                   "running filter routes what it needs; ptrace.scope 3 is one-way.")
@click.option("--ready-to-tighten", "ready", is_flag=True,
              help="Route every call that any value of the profile's settings needs, so "
                   "that every setting can be tightened while the program runs (costs a "
                   "round trip to the supervisor on each open, stat and access).")
@click.version_option(__version__, "--version", prog_name="yama-run")
@click.argument("program", required=False, shell_complete=completion.command)
@click.argument("args", nargs=-1, type=click.UNPROCESSED, shell_complete=completion.files)
def cli(profile_name, no_profile, overrides, audit_log, permissive, verbose, quiet, wait_all,
        backend, userns, list_profiles, list_modules, list_denials, show, learn, propose,
        install_desktop, remove_desktop, list_running, show_running, change_running, ready,
        program, args):
    """Run PROGRAM with Yama's ptrace_scope and the fs.protected_* rules enforced
    for it and its descendants, by the modules of a per-program profile."""
    _refuse_empty(profile=profile_name, audit_log=audit_log, show_profile=show,
                  propose_profile=propose, install_desktop=install_desktop,
                  remove_desktop=remove_desktop, show_running=show_running,
                  change_running=change_running)
    if profile_name and no_profile:
        raise click.UsageError("--profile and --no-profile exclude each other")
    if show and (profile_name or no_profile):
        raise click.UsageError("--show-profile takes the profile as its value; "
                               "it excludes --profile and --no-profile")
    introspect = list_profiles or list_modules or show or list_denials
    if introspect and program:
        raise click.UsageError(f"--list-profiles, --list-modules, --list-denials and "
                               f"--show-profile run no program (got {program!r})")
    if propose or install_desktop or remove_desktop:
        return _act(propose, install_desktop, remove_desktop, program)
    if list_running or show_running or change_running:
        return _running(list_running, show_running, change_running, overrides, program)
    if learn and not audit_log:
        raise click.UsageError("--learn needs --audit-log FILE: the log to learn into")
    try:
        if list_denials:
            return journal.show_recent(click.echo)
        if list_profiles:
            return _list_profiles()
        if list_modules:
            return _list_modules()
        if not program and not show:
            raise click.UsageError("Missing argument 'PROGRAM'.")
        profile = _select(profile_name, no_profile, show, [program, *args])
        _apply_overrides(profile, overrides)
        modules = profile.instantiate()
    except profiles.ProfileError as exc:        # (its paths and names are a file's text)
        raise click.UsageError(printable(str(exc))) from None
    if show:
        click.echo(profiles.render(profile), nl=False)
        return 0
    try:
        if learn:
            audit, chain = learning.start(profile, modules, audit_log, verbose,
                                          [program, *args])
        else:
            audit = Audit(audit_log, verbose)
            chain = Chain(modules, audit, permissive)
        audit.journal = journal.open_default(program, profile.name)
        audit.quiet = quiet
    except OSError as exc:
        raise click.UsageError(f"--audit-log {audit_log}: {exc.strerror}") from None
    found = f"; {profile.found}" if profile.found else ""
    kind = f", {profile.kind}" if profile.kind and profile.kind != "built-in" else ""
    # what it includes, as found (a user's strict.toml may stand for the bundled one)
    included = [f for f in profile.files if f != profile.source]
    over = f"; includes {', '.join(included)}" if included else ""
    said = f"profile {profile.name} ({profile.source}{kind}{found}{over}): {_describe(profile)}"
    audit.say(said)
    from . import lifetime
    from .supervisor import SetupError, Supervisor
    argv, env = [program, *args], bareos.environ()     # as given: not Python's (bareos)
    try:
        plan = _compile_plan(profile, chain, plans.Options(profile_name, no_profile, overrides,
                                                           permissive, ready), argv, said, learn)
    except SetupError as exc:           # the filter could not be had whole (filter.exported)
        click.echo(f"yama-run: {printable(str(exc))}", err=True)
        audit.close()
        return EXIT_SETUP
    audit.say(plan.pop("kept"))

    def serve(link) -> int:
        """In the supervisor process (lifetime.split)."""
        try:
            return Supervisor(chain, audit, backend, link=link, userns=userns, profile=profile,
                              ready=ready, plan=plan).run(argv, env)
        except SetupError as exc:
            click.echo(f"yama-run: {printable(str(exc))}", err=True)
            return EXIT_SETUP
        except Exception:
            audit.internal_error("starting the program", traceback.format_exc(), always=True)
            return EXIT_SETUP
        finally:
            audit.close()

    return lifetime.split(serve, wait_all, _launch["inherited"], _launch["front"])


def _compile_plan(profile, chain, options, argv, said: str, learn: bool) -> dict:
    """The plan of this run (sandbox/plan.py), kept for the next one unless
    it was a learning run; plan["kept"]: the -v line that says which."""
    plan = plans.compile(plans.key(options, argv), profile, chain, _launch["since"], [said],
                         options.ready)
    why = f"no cached plan: {_launch['miss']}" if _launch["miss"] else "compiled"
    try:
        if learn:
            raise plans.Miss("not kept: a learning run")
        plan["kept"] = f"plan: {why}; kept in {plans.store(plan)}"
    except plans.Miss as exc:
        plan["kept"] = f"plan: {why}; {exc}"
    except OSError as exc:      # (RLIMIT_FSIZE's EFBIG names no file: the write's)
        where = f"{exc.filename}: " if exc.filename else ""
        plan["kept"] = f"plan: {why}; not kept: {where}{exc.strerror}"
    return plan


def main(argv=None, inherited=None, since: int = 0, miss: str = "", front=None) -> None:
    """The cold path of the console script (sandbox/launch.py): click reads
    the command line. Called without `inherited` (python3 -m sandbox.cli, an
    older console script), it starts with the launch path."""
    if inherited is None:
        from . import launch
        return launch.main(argv)
    _launch.update(inherited=inherited, since=since, miss=miss, front=front)
    sys.stderr = QuietStream(sys.stderr)      # streams never None here (launch.main)
    try:
        status = cli.main(args=argv, prog_name="yama-run", standalone_mode=False)
    except click.exceptions.Exit as exc:        # --help, --version
        status = exc.exit_code
    except click.ClickException as exc:         # bad option or profile: 125, as env(1)
        exc.show()
        status = EXIT_SETUP
    except click.exceptions.Abort:
        status = EXIT_SETUP
    status = status if isinstance(status, int) else 0
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)

