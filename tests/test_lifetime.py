"""yama-run's lifetime (sandbox/lifetime.py): it exits with the main program,
what the program left behind stays supervised, detached from the caller's
terminal and pipes; its own messages never change the exit status; its two
processes are out of the program's reach. Started by root and by uid 1001,
on both backends."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from as_user import UID, as_user  # noqa: F401  (fixture)
from conftest import YAMA_RUN, requires_root, requires_tool, yama_run

BACKENDS = ("notify", "ptrace")
DEADLINE = 20


def wait_for(path: Path, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not path.exists():
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(0.05)


@pytest.fixture
def scenario():
    """A sticky world-writable directory holding uid 1002's symlink to a
    readable file: following it is a symlinks denial (EACCES) for anyone
    else, root included; reading the file directly is allowed. out/ is where
    the daemon writes what it got."""
    base = Path(tempfile.mkdtemp(prefix="yama-run-life-"))
    base.chmod(0o755)
    sticky = base / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    target = base / "target"
    target.write_text("plain\n")
    target.chmod(0o644)
    (sticky / "link").symlink_to(target)
    os.lchown(sticky / "link", 1002, 1002)
    out = base / "out"
    out.mkdir()
    out.chmod(0o777)
    yield base
    subprocess.run(["rm", "-rf", str(base)])


def daemon_script(base: Path) -> str:
    """Leaves a daemon behind that waits for out/go (created once yama-run
    has returned), then makes one hooked call that must be denied and one
    that must be served, and says which process supervised it."""
    out = base / "out"
    return (f"( while [ ! -e {out}/go ] && [ -d {out} ]; do sleep 0.05; done; "
            f"cat {base}/sticky/link > {out}/link.txt 2> {out}/link.err; echo $? > {out}/link.rc; "
            f"cat {base}/target > {out}/plain.txt; echo $? > {out}/plain.rc; "
            f"grep Seccomp: /proc/self/status > {out}/seccomp; touch {out}/done "
            f") </dev/null >/dev/null 2>&1 & echo started; exit 4")


def check_daemon_served(base: Path) -> None:
    out = base / "out"
    (out / "go").touch()
    wait_for(out / "done", "the daemon's calls")
    assert (out / "link.rc").read_text().strip() != "0"
    assert "Permission denied" in (out / "link.err").read_text()     # still denied
    assert (out / "plain.txt").read_text() == "plain\n"                # still served
    assert (out / "seccomp").read_text().split() == ["Seccomp:", "2"]


def run_root(*args, env=None, **kwargs):
    return yama_run(*args, env={**os.environ, **(env or {})}, **kwargs)


@pytest.mark.parametrize("backend", BACKENDS)
def test_returns_with_the_program_while_its_daemon_is_still_served(scenario, backend):
    """`out=$(yama-run prog)` where prog leaves a daemon: yama-run returns the
    program's output and status at once (the daemon is still waiting for
    its go), and the daemon's hooked calls are still decided afterwards."""
    r = run_root("--backend", backend, "sh", "-c", daemon_script(scenario), timeout=DEADLINE)
    assert (r.returncode, r.stdout) == (4, "started\n"), r.stderr
    assert not (scenario / "out" / "done").exists()
    check_daemon_served(scenario)


@pytest.mark.parametrize("backend", BACKENDS)
def test_returns_with_the_program_as_an_ordinary_user(scenario, as_user, backend):  # noqa: F811
    r = as_user.run("--backend", backend, "sh", "-c", daemon_script(scenario),
                    timeout=DEADLINE)
    assert (r.returncode, r.stdout) == (4, "started\n"), r.stderr
    check_daemon_served(scenario)


def test_wait_keeps_yama_run_until_the_daemon_is_gone(scenario):
    """--wait: the old behaviour, for those who want it."""
    proc = subprocess.Popen([*YAMA_RUN, "--wait", "sh", "-c", daemon_script(scenario)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "started\n"
        time.sleep(0.3)
        assert proc.poll() is None                  # still waiting for the daemon
        check_daemon_served(scenario)
        assert proc.wait(timeout=DEADLINE) == 4
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def supervisor_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def descriptors(pid: int) -> dict[int, str]:
    """pid's descriptors and what they name; one closed between the listing
    and its readlink (the supervisor's threads open and close their own
    meanwhile) is left out."""
    fds = {}
    for n in os.listdir(f"/proc/{pid}/fd"):
        try:
            fds[int(n)] = os.readlink(f"/proc/{pid}/fd/{n}")
        except FileNotFoundError:
            continue
    return fds


def test_the_supervisor_left_behind_holds_nothing_of_the_caller(scenario):
    """Once the front has exited, the supervisor is in a session of its own,
    with /dev/null for its standard streams, and keeps no descriptor of the
    caller's (here a pipe and an extra file, fd 7)."""
    out = scenario / "out"
    script = (f"sh -c 'echo $$ > {out}/pid; while [ ! -e {out}/go ] && [ -d {out} ]; "
              f"do sleep 0.05; done' "
              f"</dev/null >/dev/null 2>&1 & while [ ! -s {out}/pid ]; do sleep 0.05; done")
    extra = scenario / "extra"
    with open(extra, "w") as keep:
        r = subprocess.run([*YAMA_RUN, "sh", "-c", script], capture_output=True, text=True,
                           timeout=DEADLINE, pass_fds=(keep.fileno(),))
    assert r.returncode == 0, r.stderr
    daemon = int((out / "pid").read_text())
    sup = supervisor_of(daemon)                 # reparented to the supervisor, a subreaper
    try:
        fds = descriptors(sup)
        assert all(fds[n] == "/dev/null" for n in (0, 1, 2)), fds
        assert str(extra) not in fds.values()
        assert not any(t.startswith("pipe:") for t in fds.values()), fds
        assert os.getsid(sup) == sup                # its own session: no terminal
    finally:
        (out / "go").touch()


@requires_tool("strace")
def test_the_supervisor_starts_no_program_of_its_own(scenario):
    """Every program run is the program's (sh, sleep) or yama-run's own start:
    the supervisor, loading what serves the calls while the program runs,
    forks nothing of its own (pyseccomp's import ran /sbin/ldconfig twice,
    found holding a pipe once the front had gone). The second run is the
    cached start, whose supervisor loads everything after the program runs;
    the first may compile the plan in the front, before it."""
    out = scenario / "out"
    script = f"sleep 0.2 & echo started > {out}/mark; wait"
    for run in range(2):
        log = scenario / f"strace-{run}"
        r = subprocess.run(["strace", "-f", "-qq", "-e", "trace=execve", "-e", "signal=none",
                            "-o", str(log), *YAMA_RUN, "sh", "-c", script],
                           capture_output=True, text=True, timeout=DEADLINE)
        assert r.returncode == 0, r.stderr
        assert (out / "mark").read_text() == "started\n"
        programs = [line.split('execve("', 1)[1].split('"', 1)[0]
                    for line in log.read_text().splitlines()
                    if 'execve("' in line and "= 0" in line.rsplit(")", 1)[-1]]
        assert programs[0] == YAMA_RUN[0]
        others = [p for p in programs[1:] if os.path.basename(p) not in ("sh", "sleep")]
        if run == 1:
            assert others == [], log.read_text()


def test_killing_yama_run_kills_the_program(tmp_path):
    """kill -9 of the process the shell waits on: the program dies too (the
    supervisor hears it through its parent-death signal), as before."""
    ready = tmp_path / "ready"
    proc = subprocess.Popen([*YAMA_RUN, "sh", "-c", f"touch {ready}; exec sleep 60"])
    wait_for(ready, "the program's start")
    time.sleep(0.1)
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    sup = int(children[0])
    program = int(Path(f"/proc/{sup}/task/{sup}/children").read_text().split()[0])
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + DEADLINE
    while alive(program):
        assert time.monotonic() < deadline, "the program outlived yama-run"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.mark.parametrize("how", ["full", "closed", "reader-gone"])
def test_messages_never_change_the_exit_status(how):
    """-v writes many lines; a full, closed or abandoned stderr loses them and
    nothing else: the program's status is yama-run's."""
    cmd = [*YAMA_RUN, "-v", "sh", "-c", "sleep 0.2; exit 3"]
    if how == "full":
        with open("/dev/full", "w") as full:
            status = subprocess.run(cmd, stderr=full, timeout=DEADLINE).returncode
    elif how == "closed":
        status = subprocess.run(["sh", "-c", '"$@" 2>&- >&-', "sh", *cmd],
                                timeout=DEADLINE).returncode
    else:
        status = subprocess.run(["bash", "-c", '"$@" 2>&1 | head -c1 >/dev/null; '
                                 'exit ${PIPESTATUS[0]}', "sh", *cmd],
                                timeout=DEADLINE).returncode
    assert status == 3


@pytest.mark.parametrize("command", ["python -m sandbox.cli", "installed"])
@pytest.mark.parametrize("landlock", ["landlock", "hooks"])
def test_the_program_cannot_signal_either_yama_run_process(landlock, command, request):
    """The front (the program's grandparent: a forked interpreter, or the
    installed command itself) and the supervisor (its parent) are both out
    of reach: kill gets EPERM, both live on, and the program's status comes
    back as usual."""
    env = {**os.environ}
    if landlock == "hooks":
        env["YAMA_RUN_NO_LANDLOCK"] = "1"
    script = ("sup=$PPID; front=$(awk '{print $4}' /proc/$sup/stat); "
              "kill -TERM $front 2>/dev/null; echo front=$?; "
              "kill -TERM $sup 2>/dev/null; echo sup=$?; exit 6")
    if command == "installed":
        r = subprocess.run([str(request.getfixturevalue("installed")), "sh", "-c", script],
                           env=env, capture_output=True, text=True, timeout=60)
    else:
        r = yama_run("sh", "-c", script, env=env)
    assert r.returncode == 6, r.stderr
    assert r.stdout.split() == ["front=1", "sup=1"]


@requires_root
def test_ordinary_user_runs_in_a_user_namespace_root_does_not(as_user):  # noqa: F811
    """-v says so; the program keeps its ids; a root-owned file shows as the
    overflow id where the kernel answers (the fstat syscall, never routed)."""
    probe = ("import ctypes, os; f = os.open('/etc/hostname', os.O_RDONLY); "
             "buf = ctypes.create_string_buffer(144); "
             "ctypes.CDLL(None).syscall(5, f, buf); "          # SYS_fstat on x86-64
             "print(os.getuid(), os.getgid(), int.from_bytes(buf.raw[28:32], 'little'))")
    r = as_user.run("-v", "/usr/bin/python3", "-c", probe)
    assert r.returncode == 0, r.stderr
    assert f"in a user namespace owned by uid {UID}" in r.stderr
    assert r.stdout.split() == [str(UID), str(UID), "65534"]
    r = yama_run("-v", "cat", "/proc/self/uid_map")
    assert "user namespace" not in r.stderr
    assert r.stdout.split() == ["0", "0", "4294967295"]
    r = as_user.run("--userns", "never", "cat", "/proc/self/uid_map")
    assert r.stdout.split() == ["0", "0", "4294967295"]


def test_internal_errors_are_one_line_and_audited(tmp_path):
    """A module that raises: the call is denied, -v says so in one line, the
    traceback is in the audit log, nothing raw reaches the terminal."""
    from test_profiles import one_module_env
    env = one_module_env(tmp_path, "boom", "Boom",
                         "from sandbox.modules import Module\n"
                         "class Boom(Module):\n    name = 'boom'\n    def hooks(self):\n"
                         "        return {'task_prctl'}\n"
                         "    def task_prctl(self, req):\n        raise RuntimeError('boom')\n")
    profile = tmp_path / "p.toml"
    profile.write_text('chain = ["boom"]\n')
    log = tmp_path / "audit.jsonl"
    prctl = ("import ctypes; libc = ctypes.CDLL(None, use_errno=True); "
             "print(libc.prctl(0x59616d61, 1, 0, 0, 0), ctypes.get_errno())")
    r = yama_run("-v", "--profile", profile, "--audit-log", log, "python3", "-c", prctl, env=env)
    assert r.returncode == 0
    assert r.stdout.split() == ["-1", "1"]                  # denied: EPERM
    assert "Traceback" not in r.stderr
    assert "internal error in module boom" in r.stderr and "RuntimeError: boom" in r.stderr
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert any("RuntimeError: boom" in rec.get("traceback", "") for rec in records)


# -- the program's death by a signal is yama-run's -----------------------------------

def front_command(command: str, request) -> list[str]:
    """yama-run as `python3 -m sandbox.cli` (a forked supervisor) or as the
    installed command (the launcher is the front)."""
    if command == "installed":
        return [str(request.getfixturevalue("installed"))]
    return list(YAMA_RUN)


@pytest.mark.parametrize("command", ["python -m sandbox.cli", "installed"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("how, status", [
    ("sent to yama-run", -signal.SIGTERM),
    ("its own SIGSEGV", -signal.SIGSEGV),
    ("its own signal 32", -32),          # glibc's own: its raise() refuses it
    ("exits 130", 130),
    ("exits 143", 143),
])
def test_the_program_killed_by_a_signal_kills_yama_run_by_it(tmp_path, request, command,
                                                              backend, how, status):
    """A parent sees what it would see natively: subprocess's -N for a
    program killed by signal N (a SIGTERM sent to yama-run and passed on, a
    SIGSEGV the program raised, glibc's signal 32, which its signal() and
    raise() refuse: the front exited 160, found by a review), and a normal exit with 130 or 143 stays a
    normal exit."""
    ready = tmp_path / "ready"
    script = {"sent to yama-run": f"touch {ready}; exec sleep 30",
              "its own SIGSEGV": "kill -SEGV $$", "its own signal 32": "kill -32 $$",
              "exits 130": "exit 130", "exits 143": "exit 143"}[how]
    proc = subprocess.Popen([*front_command(command, request), "--backend", backend,
                             "sh", "-c", script], stderr=subprocess.PIPE, text=True,
                            env={**os.environ})
    try:
        if how == "sent to yama-run":
            wait_for(ready, "the program's start")
            proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=DEADLINE) == status, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("script, status", [("kill -TERM $$", -signal.SIGTERM),
                                            ("exit 130", 130)])
def test_wait_ends_by_the_programs_signal_too(backend, script, status):
    """--wait: the status comes when the last process is gone, the same."""
    r = yama_run("--wait", "--backend", backend, "sh", "-c", script, timeout=DEADLINE)
    assert r.returncode == status, r.stderr


@pytest.mark.parametrize("script, status", [("kill -TERM $$", -signal.SIGTERM),
                                            ("kill -SEGV $$", -signal.SIGSEGV),
                                            ("exit 130", 130)])
def test_killed_by_a_signal_as_an_ordinary_user(as_user, script, status):  # noqa: F811
    """The same for a yama-run started by uid 1001 (in a user namespace)."""
    r = as_user.run("sh", "-c", script, timeout=DEADLINE)
    assert r.returncode == status, r.stderr


@pytest.mark.parametrize("command", ["python -m sandbox.cli", "installed"])
def test_ctrl_c_stops_a_shell_loop_of_yama_runs(tmp_path, request, command):
    """`for i in 1 2 3; do yama-run ...; done` and Ctrl-C (SIGINT to the
    foreground group: the shell, yama-run and the program): the program dies
    of SIGINT, so yama-run does, so the shell ends the loop and dies of it
    too (bash's rule: a child killed by SIGINT, not one that exited 130)."""
    ready = tmp_path / "ready"
    yr = " ".join([*front_command(command, request), "-q", "--"])
    loop = (f'for i in 1 2 3; do {yr} sh -c "touch {ready}; exec sleep 5"; '
            f'echo "after $i"; done; echo "loop end"')
    proc = subprocess.Popen(["bash", "-c", loop], stdout=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ})
    try:
        wait_for(ready, "the program's start")
        time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)      # as the terminal sends Ctrl-C
        out, _ = proc.communicate(timeout=DEADLINE)
        assert (proc.returncode, out) == (-signal.SIGINT, "")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
