"""The command line and the process lifetime: exit statuses, signals, the
subreaper, streams, validation of settings and profiles, the filter itself."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from pathlib import Path

import pytest

from conftest import YAMA_RUN, requires_tool, yama_run


# -- exit statuses -------------------------------------------------------------

def test_program_status_is_passed_through():
    assert yama_run("--", "sh", "-c", "exit 3").returncode == 3
    assert yama_run("true").returncode == 0


def test_not_found_is_127_and_says_so():
    r = yama_run("--", "no-such-program-xyz")
    assert r.returncode == 127
    assert "no-such-program-xyz: No such file or directory" in r.stderr


def test_not_executable_is_126(tmp_path):
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    r = yama_run("--", script)
    assert r.returncode == 126
    assert "Permission denied" in r.stderr
    assert yama_run("--", tmp_path).returncode == 126      # a directory


def test_killed_by_signal_kills_yama_run_by_it():
    assert yama_run("--", "sh", "-c", "kill -TERM $$").returncode == -signal.SIGTERM
    assert yama_run("--", "sh", "-c", "kill -KILL $$").returncode == -signal.SIGKILL


@pytest.mark.parametrize("args, message", [
    (["--bogus", "true"], "No such option"),
    (["--set", "ptrace.scope=7", "true"], "valid values: 0, 1, 2, 3"),
    (["--set", "ptrace.nope=1", "true"], "valid keys: scope"),
    (["--set", "nomodule.x=1", "true"], "valid modules:"),
    (["--set", "ptrace.scope", "true"], "MODULE.KEY=VALUE"),
    (["--profile", "no-such-profile", "true"], "no profile named"),
    (["--profile", "default", "--no-profile", "true"], "exclude each other"),
    ([], "Missing argument"),
])
def test_bad_input_is_125_with_a_clear_message(args, message):
    r = yama_run(*args)
    assert r.returncode == 125, r.stderr
    assert message in r.stderr


@pytest.mark.parametrize("args, message", [
    (["--profile="], "--profile: empty value; give a profile name or path"),
    (["--profile", ""], "--profile: empty value; give a profile name or path"),
    (["--audit-log="], "--audit-log: empty value; give a file"),
    (["--audit-log", ""], "--audit-log: empty value; give a file"),
    *[([option, ""], f"{option}: empty value; give a value")
      for option in ("--show-profile", "--propose-profile", "--install-desktop",
                     "--remove-desktop", "--show-running", "--change-running")],
    *[(["--set", f"ptrace.scope={value}"], f"ptrace.scope: bad value {value!r}; valid values: "
       "0, 1, 2, 3") for value in ("0x2", "0b11", "0o2", "\u0663", "\uff12", "01", "+2")],
])
def test_a_wrong_value_is_125_not_taken_for_another(tmp_path, args, message):
    """An empty --profile (a script's unset "$STRICT") or --audit-log is no
    "not given", and --set's numbers are plain ASCII decimal, no leading zero
    (review 11-D, finding 6: each of these ran, under the program's own
    profile, without a log, or at scope 2 or 3)."""
    ran = tmp_path / "ran"
    r = yama_run("-v", *args, "--", "touch", ran)
    assert r.returncode == 125, r.stderr
    assert message in r.stderr and not ran.exists()


def test_bad_profile_names_file_line_and_valid_values(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('chain = ["ptrace"]\n\n[ptrace]\nscope = 9\n')
    r = yama_run("--profile", bad, "true")
    assert r.returncode == 125
    assert f"{bad}:4" in r.stderr and "valid values: 0, 1, 2, 3" in r.stderr
    bad.write_text('chain = ["ptrace", "nosuch"]\n')
    r = yama_run("--profile", bad, "true")
    assert r.returncode == 125 and f"{bad}:1" in r.stderr and "valid modules" in r.stderr
    bad.write_text('chain = ["ptrace"\n')
    r = yama_run("--profile", bad, "true")
    assert r.returncode == 125 and str(bad) in r.stderr


def test_version():
    from sandbox import __version__
    r = yama_run("--version")
    assert r.returncode == 0 and r.stdout == f"yama-run, version {__version__}\n"


# -- shell completion and the man page -------------------------------------------

@pytest.mark.parametrize("shell, marker", [
    ("bash", "complete -o nosort -F _yama_run_completion yama-run"),
    ("zsh", "compdef _yama_run_completion yama-run"),
    ("fish", "complete --no-files --command yama-run"),
])
def test_completion_script_is_produced(shell, marker):
    """What `eval "$(_YAMA_RUN_COMPLETE=bash_source yama-run)"` evaluates."""
    r = yama_run(env={**os.environ, "_YAMA_RUN_COMPLETE": f"{shell}_source"})
    assert r.returncode == 0 and marker in r.stdout


def test_completion_offers_profiles_settings_and_files():
    def complete(*words):
        env = {**os.environ, "_YAMA_RUN_COMPLETE": "bash_complete",
               "COMP_WORDS": " ".join(["yama-run", *words]), "COMP_CWORD": str(len(words))}
        return yama_run(env=env).stdout.split()
    assert "plain,default" in complete("--profile", "def")
    assert "plain,ptrace.scope=" in complete("--set", "ptr")
    assert complete("/usr/bin/fi") == ["file,/usr/bin/fi"]


def test_man_page_documents_every_option_and_is_up_to_date():
    import click
    from pathlib import Path
    from sandbox import cli, manpage
    committed = (Path(__file__).resolve().parent.parent / "man" / "yama-run.1").read_text()
    date = committed.split('"')[1]
    page = manpage.render(date)
    assert page == committed, "man/yama-run.1 is stale: python3 -m sandbox.manpage > man/yama-run.1"
    ctx = click.Context(cli.cli, **cli.cli.context_settings)
    for param in cli.cli.get_params(ctx):
        for opt in [*param.opts, *param.secondary_opts]:
            if opt.startswith("-"):
                roff = opt.replace("-", "\\-")
                assert f"\\fB{roff}\\fR" in page, opt
    for status in ("125", "126", "127", "its signal"):
        assert f"\\fB{status}\\fR" in page


def _complete_line(line, env=None):
    """What our bash script sends: the line up to the cursor, and bash's word breaks."""
    env = {**(env or os.environ), "_YAMA_RUN_COMPLETE": "bash_complete",
           "COMP_WORDS": line, "COMP_CWORD": "0", "_YAMA_RUN_LINE": line,
           "_YAMA_RUN_BREAKS": " \t\n\"'><=;|&(:"}
    return yama_run(env=env).stdout.split()


def test_completion_offers_each_settings_valid_values():
    assert _complete_line("yama-run --set ptrace.scope=") == [f"plain,{v}" for v in "0123"]
    assert _complete_line("yama-run --set regular.protected=") == \
        ["plain,0", "plain,1", "plain,2", "plain,auto"]
    assert _complete_line("yama-run --set symlinks.protect_creation=t") == ["plain,true"]
    assert "plain,symlinks.protect_creation=" in _complete_line("yama-run --set sym")


def test_completion_of_program_is_a_command_and_of_its_arguments_files(tmp_path):
    (tmp_path / "yr-zz-command").write_text("#!/bin/sh\n")
    (tmp_path / "yr-zz-command").chmod(0o755)
    (tmp_path / "yr-zz-notexec").write_text("")
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    assert _complete_line("yama-run yr-zz", env) == ["plain,yr-zz-command"]
    assert _complete_line("yama-run -v yr-zz", env) == ["plain,yr-zz-command"]
    assert _complete_line("yama-run yr-zz-command some", env) == ["file,some"]
    assert _complete_line("yama-run -- yr-zz-command --fl", env) == ["file,--fl"]
    assert _complete_line("yama-run ./yr", env) == ["file,./yr"]


@requires_tool("bash")
def test_bash_completes_set_values_through_its_own_word_splitting(tmp_path):
    """The generated bash function, given the words bash makes of
    `yama-run --set ptrace.scope=` (it splits at '='), replies with what
    readline puts after the '='."""
    r = _bash_completion(tmp_path, (
        "COMP_WORDBREAKS=$' \\t\\n\"\\'><=;|&(:'\n"
        "COMP_LINE='yama-run --set ptrace.scope='; COMP_POINT=${#COMP_LINE}\n"
        "COMP_WORDS=(yama-run --set ptrace.scope =); COMP_CWORD=3\n"
        "_yama_run_completion yama-run; printf '%s\\n' \"${COMPREPLY[@]}\"\n"))
    assert r.stdout.split() == ["0", "1", "2", "3"], r.stderr


def _bash_completion(tmp_path, lines: str, path=(), cwd=None) -> subprocess.CompletedProcess:
    """Our bash script, sourced, then lines; a `yama-run` on PATH that is
    this checkout's, and path's directories after it."""
    wrapper = tmp_path / "yama-run"
    wrapper.write_text(f"#!/bin/sh\nexec {' '.join(YAMA_RUN)} \"$@\"\n")
    wrapper.chmod(0o755)
    source = yama_run(env={**os.environ, "_YAMA_RUN_COMPLETE": "bash_source"}).stdout
    dirs = ":".join(map(str, [tmp_path, *path, os.environ["PATH"]]))
    return subprocess.run(["bash", "-c", source + lines], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PATH": dirs},
                          cwd=cwd or Path(__file__).resolve().parent.parent)


@requires_tool("bash")
def test_bash_completion_quotes_names_for_the_line_they_go_into(tmp_path):
    """Commands on PATH named like shell syntax ('x;touch FILE', 'x$(touch
    FILE)', a glob, a space) are completed as names: evaluated as the line
    would be, each candidate is the name itself, and nothing runs. Before,
    each went into the line as typed syntax (and a glob was expanded in the
    current directory); a name holding a newline is left out."""
    bindir, cwd = tmp_path / "bin", tmp_path / "cwd"
    bindir.mkdir()
    cwd.mkdir()
    (cwd / "yr-zz-globbed").write_text("")
    names = ["yr-zz;touch ran", "yr-zz$(touch ran)", "yr-zz*", "yr-zz two words",
             "yr-zz`touch ran`"]
    for name in [*names, "yr-zz\nplain,evil"]:
        (bindir / name).write_text("#!/bin/sh\n")
        (bindir / name).chmod(0o755)
    r = _bash_completion(tmp_path, (
        "COMP_LINE='yama-run yr-zz'; COMP_POINT=${#COMP_LINE}\n"
        "COMP_WORDS=(yama-run yr-zz); COMP_CWORD=1\n"
        "_yama_run_completion yama-run\n"
        "for c in \"${COMPREPLY[@]}\"; do eval \"printf '%s\\0' $c\"; done\n"),
        path=[bindir], cwd=cwd)
    assert sorted(r.stdout.split("\0")[:-1]) == sorted(names), (r.stdout, r.stderr)
    assert not (cwd / "ran").exists()


@requires_tool("man")
def test_man_page_renders_with_man(tmp_path):
    page = Path(__file__).resolve().parent.parent / "man" / "yama-run.1"
    r = subprocess.run(["man", "--warnings", "-l", str(page)], capture_output=True, text=True,
                       env={**os.environ, "MANPAGER": "cat", "MANWIDTH": "100"}, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    for section in ("NAME", "SYNOPSIS", "OPTIONS", "PROFILES", "SYMLINKS", "EXIT STATUS",
                    "ENVIRONMENT", "FILES", "EXAMPLES"):
        assert f"\n{section}\n" in r.stdout, section
    for option in ("--learn", "--propose-profile LOG", "--install-desktop PROGRAM"):
        assert option in r.stdout


def test_man_page_is_generated_without_the_c_extension(tmp_path):
    """In a checkout where the extension was never built."""
    import shutil
    root = Path(__file__).resolve().parent.parent
    shutil.copytree(root / "sandbox", tmp_path / "sandbox",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    shutil.copytree(root / "profiles", tmp_path / "profiles")
    code = ("import sys, sandbox.manpage as m; sys.stdout.write(m.render('D')); "
            "assert 'sandbox._yama' not in sys.modules, 'the extension was imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)}, timeout=60)
    assert r.returncode == 0, r.stderr
    assert not list((tmp_path / "sandbox").glob("*.so"))
    assert r.stdout.startswith('.TH YAMA\\-RUN 1 "D"') and "\\-\\-propose\\-profile" in r.stdout


def test_the_cli_knows_the_supervisors_backends_and_setup_status():
    """cli.py names them without importing the supervisor (and its extension)."""
    from sandbox import cli, lifetime, supervisor
    assert cli.BACKENDS == supervisor.BACKENDS
    assert cli.EXIT_SETUP == lifetime.EXIT_SETUP


# -- the filter ----------------------------------------------------------------

def _status_field(output: str, key: str) -> str:
    for line in output.splitlines():
        if line.startswith(key + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{key} not in {output!r}")


def test_default_profile_installs_a_filter_with_no_new_privs():
    r = yama_run("--", "cat", "/proc/self/status")
    assert r.returncode == 0
    assert _status_field(r.stdout, "Seccomp") == "2"
    assert _status_field(r.stdout, "NoNewPrivs") == "1"


def test_empty_chain_installs_no_filter(tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text("chain = []\n")
    r = yama_run("--profile", empty, "--", "cat", "/proc/self/status")
    assert r.returncode == 0
    assert _status_field(r.stdout, "Seccomp") == "0"


def test_pr_set_ptracer_is_emulated_where_the_kernel_has_no_yama(helper):
    """Natively this kernel answers EINVAL; under yama-run every call gets 0."""
    forktree = helper("forktree")
    native = subprocess.run([forktree, "20"], capture_output=True, text=True)
    assert native.stdout.split() == ["TREE", "20", "20"]       # 20 EINVALs natively
    r = yama_run("--", forktree, "20")
    assert r.returncode == 0 and r.stdout.split() == ["TREE", "20", "0"]


# -- load ----------------------------------------------------------------------

def test_a_200_process_fork_tree_finishes(helper):
    r = yama_run("--", helper("forktree"), "200", timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["TREE", "200", "0"]


def test_50_threads_hammering_hooked_calls(helper):
    r = yama_run("--", helper("threads"), "50", "100", timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["THREADS", "10000", "0"]


# -- streams and lifetime ------------------------------------------------------

def test_standard_streams_pass_through():
    r = yama_run("--", "sh", "-c", "cat; echo err >&2", input="in\x00put\n")
    assert r.stdout == "in\x00put\n"
    assert r.stderr == "err\n"


def test_orphaned_descendants_stay_supervised_after_yama_run_returns(tmp_path):
    """The main program exits at once: so does yama-run, with its status; its
    background child (reparented to the supervisor, a subreaper) goes on and
    finishes. tests/test_lifetime.py checks that it is still served."""
    marker = tmp_path / "late"
    # (its output elsewhere: our pipes would keep subprocess.run waiting, as natively)
    r = yama_run("--", "sh", "-c", f"(sleep 1; echo done > {marker}) >/dev/null 2>&1 & exit 5")
    assert r.returncode == 5
    assert not marker.exists()                  # yama-run did not wait for it
    deadline = time.monotonic() + 10
    # (the shell makes the file, then writes it: read once it holds the line)
    while not (marker.exists() and marker.read_text()):
        assert time.monotonic() < deadline, "the orphan never finished"
        time.sleep(0.05)
    assert marker.read_text() == "done\n"


def test_wait_waits_for_orphaned_descendants(tmp_path):
    """--wait: yama-run exits only when the last process of the tree has."""
    marker = tmp_path / "late"
    r = yama_run("--wait", "--", "sh", "-c", f"(sleep 1; echo done > {marker}) & exit 5")
    assert r.returncode == 5
    assert marker.read_text() == "done\n"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT])
def test_signals_reach_the_program(tmp_path, sig):
    ready = tmp_path / "ready"
    script = (f"trap 'echo got {sig.name}; exit 7' {sig.name[3:]}; "
              f"touch {ready}; while :; do sleep 0.05; done")
    proc = subprocess.Popen([*YAMA_RUN, "--", "sh", "-c", script],
                            stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not ready.exists():
            assert time.monotonic() < deadline, "program never started"
            time.sleep(0.02)
        os.kill(proc.pid, sig)
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert f"got {sig.name}" in out
    assert proc.returncode == 7


@requires_tool("script")
def test_program_keeps_the_terminal_foreground():
    """Under a pseudo-terminal the program is in the foreground process group,
    so shells and editors can read the terminal."""
    cmd = " ".join([*YAMA_RUN, "--", "sh", "-c", "'ps -o stat= -p $$'"])
    r = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "+" in r.stdout.strip().splitlines()[-1]
