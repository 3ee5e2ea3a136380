"""yama-run [--profile NAME|PATH | --no-profile] [--set KEY=VALUE]...
           [--audit-log FILE] [--permissive] [-v] [--] PROGRAM [ARG]..."""
from __future__ import annotations

import os
import sys

import click

from . import __version__
from . import profile as profiles
from .audit import Audit
from .chain import Chain
from .supervisor import BACKENDS, EXIT_SETUP, SetupError, Supervisor


def _describe(profile) -> str:
    parts = []
    for name in profile.chain:
        values = profile.settings.get(name, {})
        inner = ", ".join(f"{k}={v}" for k, v in sorted(values.items()))
        parts.append(f"{name}({inner})" if inner else name)
    return " -> ".join(parts) or "(empty: no filter)"


@click.command(context_settings={"allow_interspersed_args": False,
                                 "help_option_names": ["-h", "--help"]})
@click.option("--profile", "profile_name", metavar="NAME|PATH",
              help="Profile to use (default: default).")
@click.option("--no-profile", is_flag=True, help="Use the built-in defaults.")
@click.option("--set", "overrides", multiple=True, metavar="MODULE.KEY=VALUE",
              help="Override a module setting; may be repeated.")
@click.option("--audit-log", type=click.Path(dir_okay=False, writable=True),
              help="Append one JSON object per denial to FILE.")
@click.option("--permissive", is_flag=True,
              help="Record what would be denied, deny nothing.")
@click.option("-v", "--verbose", is_flag=True, help="Say what is enforced and each denial.")
@click.option("--backend", type=click.Choice(BACKENDS), default="auto", show_default=True,
              help="seccomp user-notify, or ptrace where notify cannot be used.")
@click.version_option(__version__, prog_name="yama-run")
@click.argument("program")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def cli(profile_name, no_profile, overrides, audit_log, permissive, verbose, backend, program,
        args):
    """Run PROGRAM with Yama's ptrace_scope enforced for it and its descendants."""
    if profile_name and no_profile:
        raise click.UsageError("--profile and --no-profile exclude each other")
    try:
        profile = profiles.builtin() if no_profile else profiles.load(profile_name or "default")
        for item in overrides:
            key, sep, value = item.partition("=")
            if not sep:
                raise profiles.ProfileError(f"--set {item!r}: expected MODULE.KEY=VALUE")
            try:
                profiles.apply(profile, key.strip(), value.strip())
            except profiles.ProfileError as exc:
                raise profiles.ProfileError(f"--set {item!r}: {exc}") from None
        modules = profile.instantiate()
    except profiles.ProfileError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        audit = Audit(audit_log, verbose)
    except OSError as exc:
        raise click.UsageError(f"--audit-log {audit_log}: {exc.strerror}") from None
    audit.say(f"profile {profile.name} ({profile.source}): {_describe(profile)}")
    supervisor = Supervisor(Chain(modules, audit, permissive), audit, backend)
    try:
        return supervisor.run([program, *args], dict(os.environ))
    except SetupError as exc:
        click.echo(f"yama-run: {exc}", err=True)
        return EXIT_SETUP
    finally:
        audit.close()


def main(argv=None) -> None:
    try:
        status = cli.main(args=argv, prog_name="yama-run", standalone_mode=False)
    except click.exceptions.Exit as exc:        # --help, --version
        status = exc.exit_code
    except click.ClickException as exc:         # bad option or profile: 125, as env(1)
        exc.show()
        status = EXIT_SETUP
    except click.exceptions.Abort:
        status = EXIT_SETUP
    sys.exit(status if isinstance(status, int) else 0)


if __name__ == "__main__":
    main()
