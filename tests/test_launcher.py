"""The command a user runs (csrc/launcher.c, installed as bin/yama-run beside
the Python part bin/yama-run.py; docs/startup.md): which interpreter it runs,
with which arguments, and how it fails; what the Python part leaves to
sandbox/entry.py. The launcher is compiled here as setup.py compiles it; the interpreters it may run are probes that say how
they were started, or a real venv-like tree around this checkout."""
import ast
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, build_launcher, requires_tool, venv_around_checkout

PYTHON_PART = Path(ROOT) / "bin" / "yama-run.py"
SETUP_ERROR = 125

pytestmark = requires_tool("cc")


@pytest.fixture(scope="module")
def launcher(tmp_path_factory) -> Path:
    return build_launcher(tmp_path_factory.mktemp("launcher") / "yama-run")


def probe(path: Path, marker: Path | None = None) -> Path:
    """An interpreter that prints how it was started, one argument a line,
    with the front's link (FD:PID:IGNORED) given as "LINK" when FD is open
    here, not close-on-exec, PID is this process's parent (the front) and
    IGNORED the caller's ignored signals in hex."""
    touch = f'touch "{marker}"\n' if marker else ""
    path.write_text(f'#!/bin/sh\n{touch}for a in "$0" "$@"; do\n'
                    '  case "$a" in *:$PPID:*) [ -e "/proc/$$/fd/${a%%:*}" ] && a=LINK;; esac\n'
                    '  printf "%s\\n" "$a"\ndone\n')
    path.chmod(0o755)
    return path


@pytest.fixture
def venv(tmp_path, launcher) -> Path:
    """VENV/bin with the launcher, the Python part and a probe as python3."""
    bindir = tmp_path / "venv" / "bin"
    bindir.mkdir(parents=True)
    shutil.copy(launcher, bindir / "yama-run")
    shutil.copy(PYTHON_PART, bindir / "yama-run.py")
    probe(bindir / "python3")
    return tmp_path / "venv"


def start(command: str, *args: str, path: str, cwd=None, argv0=None) -> subprocess.CompletedProcess:
    return subprocess.run([argv0 or command, *args], executable=command, capture_output=True,
                          text=True, timeout=60, env={"PATH": path, "LANG": "C.UTF-8"}, cwd=cwd)


def trap(directory: Path, marker: Path) -> str:
    """A directory whose python3 must never run: it leaves marker behind."""
    directory.mkdir()
    probe(directory / "python3", marker)
    return str(directory)


def test_it_runs_the_python3_beside_its_real_path_isolated_with_the_name_it_was_started_by(
        venv, tmp_path):
    """Through a link from elsewhere, named after a program (firejail's
    convention, sandbox/argv0.py): the venv's python3 -IS on the Python part
    beside the launcher's real file, the link's path as the name, every
    argument as it was (spaces, empty ones, ones that look like options);
    a python3 earlier on PATH is never asked. The name is the path execve
    was given, as a script's $0, not the argv[0] the caller chose (a shell
    passes the bare name): argv0.py finds itself on PATH by that path."""
    marker = tmp_path / "trap-ran"
    links = tmp_path / "links"
    links.mkdir()
    (links / "firefox-esr").symlink_to(venv / "bin" / "yama-run")
    r = start(str(links / "firefox-esr"), "a b", "", "-IS", "--", argv0="firefox-esr",
              path=trap(tmp_path / "trap", marker))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:-1] == [
        str(venv / "bin" / "python3"), "-IS", str(venv / "bin" / "yama-run.py"), "LINK",
        str(links / "firefox-esr"), "a b", "", "-IS", "--"]
    assert not marker.exists()


def test_the_name_is_the_path_it_was_started_by_even_a_relative_one(venv):
    r = start("./yama-run", "--", "true", path="/nonexistent", cwd=venv / "bin")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[4:6] == ["./yama-run", "--"]


def test_outside_a_venv_the_python3_on_path_runs_it_with_site(venv, tmp_path):
    """No python3 beside it at all: as a `pip install --user` outside a venv,
    the python3 on PATH runs the Python part, with `site` (which finds the
    package where pip put it)."""
    (venv / "bin" / "python3").unlink()
    onpath = tmp_path / "onpath"
    onpath.mkdir()
    probe(onpath / "python3")
    r = start(str(venv / "bin" / "yama-run"), "-v", path=f"/nonexistent:{onpath}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:-1] == [
        str(onpath / "python3"), str(venv / "bin" / "yama-run.py"), "LINK",
        str(venv / "bin" / "yama-run"), "-v"]


@pytest.mark.parametrize("broken", ["dangling link", "not executable", "a directory"])
def test_a_python3_beside_it_that_cannot_run_is_a_setup_error_and_nothing_else_runs(
        venv, tmp_path, broken):
    """A venv whose interpreter is gone (its base python removed) or cannot
    be run: exit 125, said on stderr, and the python3 on PATH is never run
    in its place."""
    python = venv / "bin" / "python3"
    python.unlink()
    if broken == "dangling link":
        python.symlink_to(tmp_path / "removed-python3.11")
    elif broken == "not executable":
        probe(python).chmod(0o644)
    else:
        python.mkdir()
    marker = tmp_path / "trap-ran"
    r = start(str(venv / "bin" / "yama-run"), "--", "true", path=trap(tmp_path / "trap", marker))
    assert r.returncode == SETUP_ERROR
    assert r.stderr.startswith(f"yama-run: cannot run its interpreter {python}: "), r.stderr
    assert r.stdout == "" and not marker.exists()


def test_no_python3_anywhere_is_a_setup_error(venv, tmp_path):
    (venv / "bin" / "python3").unlink()
    empty = tmp_path / "empty"
    empty.mkdir()
    r = start(str(venv / "bin" / "yama-run"), "--", "true", path=str(empty))
    assert r.returncode == SETUP_ERROR
    assert "yama-run: cannot run its interpreter python3 (on PATH): " in r.stderr, r.stderr


def test_a_missing_python_part_is_a_setup_error(venv, tmp_path):
    (venv / "bin" / "yama-run.py").unlink()
    marker = tmp_path / "ran"
    probe(venv / "bin" / "python3", marker)
    r = start(str(venv / "bin" / "yama-run"), "--", "true", path="/usr/bin:/bin")
    assert r.returncode == SETUP_ERROR
    assert r.stderr.startswith(
        f"yama-run: cannot read its Python part {venv}/bin/yama-run.py: "), r.stderr
    assert not marker.exists()


def test_the_python_part_only_finds_the_package_and_reads_no_file_on_the_way():
    """A script is compiled from source at every run (never cached as
    bytecode), in proportion to its size: the Python part only puts the
    venv's site-packages on sys.path and imports sandbox.entry, compiled at
    install and cached, which does the rest (the .pth files' directories,
    the front's FD:PID, the name). The script reads a file only when the
    package is not in site-packages: yama-run's own editable .pth."""
    tree = ast.parse(PYTHON_PART.read_text())
    code = tree.body[1:]                                    # after the docstring
    assert code[-1].end_lineno - code[0].lineno < 25
    assert not [node for node in ast.walk(tree)
                if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Lambda))]
    (fallback,) = [node for node in code if isinstance(node, ast.Try)]
    assert [ast.unparse(h.type) for h in fallback.handlers] == ["ImportError"]
    handled = {id(node) for h in fallback.handlers for node in ast.walk(h)}
    reads = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and ast.unparse(node.func) in ("open", "exec", "posix.listdir")]
    assert reads and all(id(node) in handled for node in reads)
    assert ast.unparse(code[-1]) == "entry.main(packages)"


# -- with a real interpreter: this checkout in a venv-like tree ------------------------------

@pytest.fixture
def real_venv(venv) -> Path:
    """The launcher and the Python part around this checkout (conftest)."""
    return venv_around_checkout(venv)


def run_real(command: Path, *args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {"PATH": f"{tmp_path / 'links'}:/usr/bin:/bin", "LANG": "C.UTF-8",
           "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "PYTHONPATH": "/nonexistent"}      # ignored: -I
    return subprocess.run([str(command), *args], capture_output=True, text=True, timeout=60,
                          env=env)


def test_the_installed_command_runs_a_program_under_yama_run(real_venv, tmp_path):
    r = run_real(real_venv / "bin" / "yama-run", "-v", "--", "sh", "-c", "exit 7",
                 tmp_path=tmp_path)
    assert r.returncode == 7, r.stderr
    assert "yama-run: profile default" in r.stderr, r.stderr
    again = run_real(real_venv / "bin" / "yama-run", "-v", "--", "sh", "-c", "exit 7",
                     tmp_path=tmp_path)
    assert again.returncode == 7 and "plan: from the cache" in again.stderr, again.stderr


def test_a_link_named_after_a_program_runs_that_program_with_its_arguments(
        real_venv, tmp_path):
    """links/sh -> VENV/bin/yama-run: sh runs under yama-run (the real sh, the
    next one on PATH that is not yama-run), every argument its own, none
    read as yama-run's option."""
    (tmp_path / "links").mkdir()
    (tmp_path / "links" / "sh").symlink_to(real_venv / "bin" / "yama-run")
    r = run_real(tmp_path / "links" / "sh", "-c", 'echo "$1"; grep ^Seccomp: /proc/self/status',
                 "sh", "-v", tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[0] == "-v"
    assert r.stdout.split()[-1] == "2", r.stdout          # under a seccomp filter


# -- the front: the launcher itself waits, its child is the interpreter ----------------------

FAKE_SUPERVISOR = '''#!{python}
"""A stand-in for the supervisor: it speaks the front's protocol (csrc/front.c)
over the link the launcher gave it, as the script says."""
import os, signal, socket, sys, time
fd, front = (int(p) for p in sys.argv[3].split(":")[:2])
link = socket.socket(fileno=fd)
def send(msg, fds=()):
    link.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, bytes(fds and
                 __import__("array").array("i", fds)))] if fds else [])
    os.kill(front, signal.SIGRTMIN + 2)
{script}
'''


def fake_supervisor(venv: Path, script: str) -> None:
    python = venv / "bin" / "python3"
    python.unlink()
    python.write_text(FAKE_SUPERVISOR.format(python=os.path.realpath(sys.executable),
                                             script=script))
    python.chmod(0o755)


@pytest.mark.parametrize("script, status", [
    ("sys.exit(3)", 3),                                     # never a supervisor: its own exit
    ("link.send(b'H'); sys.exit(3)", SETUP_ERROR),          # a supervisor gone silent
    ("link.send(b'H'); os.kill(os.getpid(), 9)", SETUP_ERROR),
    ("send(b'S' + (42).to_bytes(4, sys.byteorder)); time.sleep(30)", 42),   # the status, at once
    ("os.kill(os.getpid(), signal.SIGTERM)", -signal.SIGTERM),  # killed before: so is the front
])
def test_the_front_exits_with_what_its_child_says(venv, script, status):
    """The front returns the program's status the moment the supervisor
    sends it (not when the supervisor ends); a child that never became a
    supervisor (--help, a usage error) is yama-run, its exit or signal
    included; a supervisor that ends without a status is a setup error."""
    fake_supervisor(venv, script)
    started = time.monotonic()
    r = start(str(venv / "bin" / "yama-run"), "--", "true", path="/usr/bin:/bin")
    assert r.returncode == status, r.stderr
    assert time.monotonic() - started < 20


def test_the_front_forwards_signals_through_the_pidfd_even_those_sent_before(venv, tmp_path):
    """A signal sent to yama-run before the program runs is held, then given
    to the program through the pidfd the supervisor sends; one from the
    terminal (SI_KERNEL) would not be: the program's group has it already."""
    got = tmp_path / "got"
    fake_supervisor(venv, f'''
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
pid = os.fork()
if pid == 0:
    signal.sigwaitinfo([signal.SIGUSR1])
    open("{got}", "w").write("USR1")
    os._exit(0)
link.send(b'H')
open("{tmp_path}/ready", "w").close()
while not os.path.exists("{tmp_path}/sent"):
    time.sleep(0.01)
send(b'P', [os.pidfd_open(pid)])
os.waitpid(pid, 0)
send(b'S' + (5).to_bytes(4, sys.byteorder))
''')
    proc = subprocess.Popen([str(venv / "bin" / "yama-run"), "--", "true"])
    deadline = time.monotonic() + 20
    while not (tmp_path / "ready").exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGUSR1)
    time.sleep(0.2)
    assert proc.poll() is None                      # forwarded, not acted on
    (tmp_path / "sent").touch()
    assert proc.wait(timeout=20) == 5
    assert got.read_text() == "USR1"


def test_the_installed_command_is_its_own_front(real_venv, tmp_path):
    """The process the shell waits on is the launcher, never a forked
    interpreter; its child, the interpreter, is the supervisor and the
    program's parent; a SIGTERM to yama-run reaches the program; kill -9 of
    yama-run kills the program (the supervisor's parent-death signal); the
    program holds no end of the link between the two."""
    ready, got, fds = tmp_path / "ready", tmp_path / "got", tmp_path / "fds"
    script = (f"trap 'echo TERM > {got}; exit 9' TERM; ls -l /proc/$$/fd > {fds}; touch {ready}; "
              "while :; do sleep 0.05; done")
    for sig, status in ((signal.SIGTERM, 9), (signal.SIGKILL, -signal.SIGKILL)):
        ready.unlink(missing_ok=True)
        proc = subprocess.Popen([str(real_venv / "bin" / "yama-run"), "--", "sh", "-c", script],
                                env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert time.monotonic() < deadline and proc.poll() is None, "the program never ran"
            time.sleep(0.02)
        assert os.path.realpath(f"/proc/{proc.pid}/exe") == \
            os.path.realpath(real_venv / "bin" / "yama-run")
        sup = int(Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()[0])
        assert Path(f"/proc/{sup}/cmdline").read_bytes().split(b"\0")[2].endswith(b"yama-run.py")
        program = int(Path(f"/proc/{sup}/task/{sup}/children").read_text().split()[0])
        os.kill(proc.pid, sig)
        assert proc.wait(timeout=30) == status
        deadline = time.monotonic() + 30
        while Path(f"/proc/{program}").exists() and \
                Path(f"/proc/{program}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline, "the program outlived yama-run"
            time.sleep(0.05)
    assert got.read_text() == "TERM\n"
    assert "socket:" not in fds.read_text()         # the link to the front is not the program's


@pytest.mark.parametrize("closed", ["0", "0 1", "0 1 2"])
def test_the_installed_command_with_standard_descriptors_closed(installed, tmp_path, closed):
    """The caller closed stdin (and stdout, and stderr): the program still
    starts with them closed, as it would natively, and its status comes
    back (the link to the front never takes their numbers, which the
    supervisor overwrites when it detaches)."""
    seen = tmp_path / "seen"
    script = (f"s=; for fd in 0 1 2; do [ -e /proc/$$/fd/$fd ] && s=\"$s $fd\"; done; "
              f"echo $s > {seen}; exit 4")
    closing = " ".join(f"{fd}>&-" if fd != "0" else "<&-" for fd in closed.split())
    r = subprocess.run(["sh", "-c", f'"$0" sh -c "$1" {closing}', str(installed), script],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 4, r.stderr
    assert seen.read_text().split() == [fd for fd in "012" if fd not in closed.split()]
