"""An attacker's pass over cgroup v2 files (docs/hostile.md, "Found and
closed": cgroups; docs/containment.md).

On a desktop systemd delegates the cgroup subtree of user@UID.service to the
user: every process of that uid may write cgroup.kill (SIGKILL to every
process of a cgroup, no signal permission asked, unseen by Landlock's
scopes), cgroup.freeze, the limits (memory.max, pids.max...) and
cgroup.procs (moves any process of the subtree) of the cgroups below it.
The fixture builds such a subtree here (the directory and its cgroup.procs,
cgroup.threads and cgroup.subtree_control given to uid 1001, as systemd
does; the children made by that uid's own mkdir, as a user's manager does):

    yr-test-XXXX/user          uid 1001's delegated subtree
        editor                 a process outside the sandbox (the user's editor)
        app/sandbox            where yama-run itself runs
        mine                   a cgroup of the program's own (processes moved there)
        own                    another, with the limit's controller for its children

The program (tests/helpers/cgroup_probe.c, uid 1001) then, contained: kills,
freezes, limits the editor's cgroup and moves the editor into `mine`; not
contained: moves itself to `mine`, then freezes and kills the cgroup
holding yama-run's supervisor (and an ancestor of it), and writes the
supervisor's pid into `mine`'s cgroup.procs. Each works natively (the
controls); each is refused (EACCES) under yama-run, and the effect never
happens. Reading cgroup files, and (not contained) writing a cgroup of the
program's own, still work."""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import YAMA_RUN
from test_escape import (AS_1001, TIMEOUT, _have_ptrace_backend, interpreter_for_1001,  # noqa: F401
                         place, placed_probe)

CGROUP2_SUPER_MAGIC = 0x63677270
NO_LANDLOCK = {**os.environ, "YAMA_RUN_NO_LANDLOCK": "1"}
# chain "contain" alone: no module needs opens, so with Landlock's domain
# only the opens that may write are routed (sandbox/routes.py, cgroup_write)
CONTAIN_ONLY = 'chain = ["contain"]\n\n[contain]\nenabled = true\n'
DEFAULT = 'chain = ["ptrace", "hardlinks", "symlinks"]\n\n[ptrace]\nscope = 1\n'
LIMITS = (("memory.max", "memory", "4096"), ("pids.max", "pids", "1"),
          ("hugetlb.2MB.max", "hugetlb", "0"))
UID = 1001


def _cgroup2_root() -> Path | None:
    """A cgroup2 mount of the whole hierarchy (mountinfo's root "/")."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if " - cgroup2 " in line and fields[3] == "/":
                return Path(fields[4].replace("\\040", " "))
    return None


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _in(cgroup: Path, pid: int) -> bool:
    return str(pid) in (cgroup / "cgroup.procs").read_text().split()


def _frozen(cgroup: Path) -> bool:
    return "frozen 1" in (cgroup / "cgroup.events").read_text().splitlines()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class Tree:
    """The delegated subtree, and the processes this module starts in it."""

    def __init__(self, base: Path):
        self.base = base
        self.user = base / "user"
        self.editor, self.app, self.mine, self.own = (
            self.user / n for n in ("editor", "app", "mine", "own"))
        self.sandbox = self.app / "sandbox"
        self.enabled: list[str] = []       # controllers this module turned on (restored)
        self.started: list[subprocess.Popen] = []
        self.limit: tuple[str, str] | None = None

    def start_in(self, cgroup: Path, argv: list[str], **kw) -> subprocess.Popen:
        """argv, placed into cgroup before it runs (sh moves itself, then execs)."""
        proc = subprocess.Popen(["sh", "-c", f'echo $$ > "{cgroup}/cgroup.procs" && exec "$@"',
                                 "sh", *argv], **kw)
        self.started.append(proc)
        return proc

    def outsider(self) -> int:
        """A process of uid 1001 in the editor's cgroup (outside any sandbox)."""
        proc = self.start_in(self.editor, [*AS_1001, "sleep", "300"])
        for _ in range(200):
            if _in(self.editor, proc.pid):
                return proc.pid
            time.sleep(0.01)
        raise AssertionError("the outsider never reached its cgroup")

    def reset(self) -> None:
        """Between tests: every process started here ended (SIGKILL ends a
        frozen one too), then every cgroup thawed."""
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()                 # by its pid: a process this module started
            proc.wait(timeout=TIMEOUT)
        self.started.clear()
        self._kill_left()
        for cg in self._cgroups():
            try:
                _write(cg / "cgroup.freeze", "0")
            except OSError:
                pass

    def _kill_left(self) -> None:
        """What is left in the subtree: only processes started here, or
        under a yama-run started here (a program whose supervisor was killed)."""
        for cg in self._cgroups():
            for pid in (cg / "cgroup.procs").read_text().split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def _cgroups(self) -> list[Path]:
        """Every cgroup of the subtree, deepest first."""
        found = [Path(d) for d, _, _ in os.walk(self.base)]
        return sorted(found, key=lambda p: len(p.parts), reverse=True)

    def remove(self) -> None:
        self.reset()
        for cg in self._cgroups():
            for _ in range(100):
                try:
                    cg.rmdir()
                    break
                except OSError:
                    time.sleep(0.05)
        root = self.base.parent
        for controller in self.enabled:
            _write(root / "cgroup.subtree_control", f"-{controller}")


def _build(base: Path) -> Tree:
    t = Tree(base)
    root = base.parent
    available = (root / "cgroup.controllers").read_text().split()
    enabled = (root / "cgroup.subtree_control").read_text().split()
    for name, controller, value in LIMITS:
        if controller in available:
            if controller not in enabled:
                _write(root / "cgroup.subtree_control", f"+{controller}")
                t.enabled.append(controller)
            t.limit = (name, value)
            break
    base.mkdir()
    if t.limit:
        _write(base / "cgroup.subtree_control", f"+{t.limit[0].split('.')[0]}")
    t.user.mkdir()
    for name in ("", "cgroup.procs", "cgroup.threads", "cgroup.subtree_control"):
        os.chown(t.user / name, UID, UID)
    if t.limit:
        _write(t.user / "cgroup.subtree_control", f"+{t.limit[0].split('.')[0]}")
    for cg in (t.editor, t.app, t.sandbox, t.mine, t.own):
        subprocess.run([*AS_1001, "mkdir", str(cg)], check=True)
    if t.limit:
        for cg in (t.app, t.own):
            subprocess.run([*AS_1001, "sh", "-c", f"echo +{t.limit[0].split('.')[0]} > "
                            f"{cg}/cgroup.subtree_control"], check=True)
        if not (t.editor / t.limit[0]).exists():
            t.limit = None
    return t


@pytest.fixture(scope="module")
def tree():
    if os.geteuid() != 0:
        pytest.skip("needs root (a cgroup subtree delegated to uid 1001)")
    root = _cgroup2_root()
    if root is None:
        pytest.skip("no cgroup2 mount")
    base = root / f"yr-test-{secrets.token_hex(4)}"
    try:
        t = _build(base)
    except OSError as e:
        if base.exists():
            Tree(base).remove()
        pytest.skip(f"a delegated cgroup2 subtree cannot be made here: {e}")
    try:
        probe = subprocess.run([*AS_1001, "sh", "-c", f"echo 1 > {t.mine}/cgroup.freeze && "
                                f"echo 0 > {t.mine}/cgroup.freeze"], capture_output=True)
        if probe.returncode != 0:
            pytest.skip(f"uid 1001 cannot write its delegated cgroups: {probe.stderr!r}")
        yield t
    finally:
        t.remove()


@pytest.fixture
def cg(tree):
    yield tree
    tree.reset()


@pytest.fixture(scope="module")
def probe(helper, place):   # noqa: F811
    return placed_probe(helper, place, "cgroup_probe")


def results(out: str) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def profile(place: Path, name: str, text: str) -> str:   # noqa: F811
    path = place / f"cgroups-{name}.toml"
    path.write_text(text)
    path.chmod(0o644)
    return str(path)


def contained_attacks(cg: Tree, outsider: int) -> list[str]:
    ops = ["w", "freeze", f"{cg.editor}/cgroup.freeze", "1",
           "a", "freeze-openat2", f"{cg.editor}/cgroup.freeze", "1",
           "p", "freeze-reopen", f"{cg.editor}/cgroup.freeze", "1",
           "w", "move", f"{cg.mine}/cgroup.procs", str(outsider)]
    if cg.limit:
        ops += ["w", "limit", f"{cg.editor}/{cg.limit[0]}", cg.limit[1]]
    return ops + ["w", "kill", f"{cg.editor}/cgroup.kill", "1"]


def untouched(cg: Tree, outsider: int, limit_before: str | None) -> None:
    assert _alive(outsider), "the outsider was killed"
    assert not _frozen(cg.editor), "the outsider's cgroup was frozen"
    assert _in(cg.editor, outsider), "the outsider was moved"
    if limit_before is not None:
        assert (cg.editor / cg.limit[0]).read_text() == limit_before


def run_in(cg: Tree, cgroup: Path, launcher: list[str], prof: str, program: list[str],
           env=None, backend: str = "notify") -> subprocess.CompletedProcess:
    """yama-run, started by launcher from cgroup, on program. Started by
    uid 1001, not with root's HOME (which it may not search): none, so the
    profiles it finds are the bundled ones, as root's run finds them."""
    if launcher:
        env = {**(os.environ if env is None else env), "HOME": "/nonexistent"}
    proc = cg.start_in(cgroup, [*launcher, *YAMA_RUN, "-v", "--backend", backend,
                                "--profile", prof, "--", *program],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out, err = proc.communicate(timeout=TIMEOUT)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


# -- the controls: each attack works natively ----------------------------------------------

def test_a_contained_programs_attacks_work_natively(cg, probe):
    """uid 1001 freezes, limits, moves and kills a process of its uid in a
    sibling cgroup of its delegated subtree, with no permission asked."""
    outsider = cg.outsider()
    ops = ["w", "freeze", f"{cg.editor}/cgroup.freeze", "1"]
    if cg.limit:
        ops += ["w", "limit", f"{cg.editor}/{cg.limit[0]}", cg.limit[1]]
    out = subprocess.run([*AS_1001, probe, *ops], capture_output=True, text=True,
                         timeout=TIMEOUT).stdout
    got = results(out)
    assert got["freeze"] == "ok" and got.get("limit", "ok") == "ok", out
    for _ in range(100):
        if _frozen(cg.editor):
            break
        time.sleep(0.01)
    assert _frozen(cg.editor), out
    if cg.limit:
        assert (cg.editor / cg.limit[0]).read_text().strip() == cg.limit[1]
        _write(cg.editor / cg.limit[0], "max")
    _write(cg.editor / "cgroup.freeze", "0")
    _moved_then_killed(cg, probe, outsider, cg.editor)


def _moved_then_killed(cg, probe, pid: int, home) -> None:
    """Natively, as uid 1001: pid is moved into a cgroup of its own (cg.mine),
    put back in home, and home's cgroup.kill ends it."""
    out = subprocess.run([*AS_1001, probe, "w", "move", f"{cg.mine}/cgroup.procs", str(pid)],
                         capture_output=True, text=True, timeout=TIMEOUT).stdout
    assert results(out)["move"] == "ok" and _in(cg.mine, pid), out
    _write(home / "cgroup.procs", str(pid))
    out = subprocess.run([*AS_1001, probe, "w", "kill", f"{home}/cgroup.kill", "1"],
                         capture_output=True, text=True, timeout=TIMEOUT).stdout
    assert results(out)["kill"] == "ok", out
    for _ in range(200):
        if not _alive(pid):
            break
        time.sleep(0.01)
    assert not _alive(pid), out


def test_the_supervisors_cgroup_is_reached_natively(cg, probe):
    """The same uid freezes a cgroup holding a bystander, and its ancestor's,
    writes the bystander's pid into a cgroup of its own, and kills the first."""
    bystander = cg.start_in(cg.sandbox, [*AS_1001, "sleep", "300"]).pid
    for _ in range(200):
        if _in(cg.sandbox, bystander):
            break
        time.sleep(0.01)
    out = subprocess.run([*AS_1001, probe, "w", "freeze", f"{cg.sandbox}/cgroup.freeze", "1",
                          "w", "freeze-ancestor", f"{cg.app}/cgroup.freeze", "1"],
                         capture_output=True, text=True, timeout=TIMEOUT).stdout
    assert results(out)["freeze"] == results(out)["freeze-ancestor"] == "ok", out
    _write(cg.app / "cgroup.freeze", "0")
    _write(cg.sandbox / "cgroup.freeze", "0")
    _moved_then_killed(cg, probe, bystander, cg.sandbox)


# -- contained: no cgroup file is written ---------------------------------------------------

CONTAINED = {
    "strict": ("strict", None, "notify"),
    "strict-no-landlock": ("strict", NO_LANDLOCK, "notify"),
    "contain-only": ("contain-only", None, "notify"),
    "contain-only-no-landlock": ("contain-only", NO_LANDLOCK, "notify"),
    "strict-ptrace-backend": ("strict", None, "ptrace"),
}
LAUNCHERS = {"root-runs-1001": ([], AS_1001), "1001-runs-1001": (AS_1001, [])}


@pytest.mark.parametrize("launch", list(LAUNCHERS))
@pytest.mark.parametrize("mode", list(CONTAINED))
def test_a_contained_program_writes_no_cgroup_file(cg, probe, place, mode, launch):  # noqa: F811
    """Contained (the strict profile; the contain module alone, where only
    the opens that may write are routed; with and without Landlock's
    domain; yama-run started by root and by uid 1001), the outsider's
    cgroup.freeze (by open, openat2, and an O_PATH handle opened again),
    its limit, cgroup.kill, and a cgroup.procs of the program's own given
    the outsider's pid: each refused (EACCES), the outsider alive, not frozen,
    not moved, its limit unchanged. Reading cgroup files still works."""
    name, env, backend = CONTAINED[mode]
    if backend == "ptrace" and not _have_ptrace_backend():
        pytest.skip("needs python-ptrace for --backend ptrace")
    prof = "strict" if name == "strict" else profile(place, name, CONTAIN_ONLY)
    launcher, inside = LAUNCHERS[launch]
    outsider = cg.outsider()
    before = (cg.editor / cg.limit[0]).read_text() if cg.limit else None
    ops = [*contained_attacks(cg, outsider),
           "r", "read-procs", f"{cg.editor}/cgroup.procs",
           "r", "read-events", f"{cg.sandbox}/cgroup.events"]
    proc = run_in(cg, cg.sandbox, launcher, prof, [*inside, probe, *ops], env=env,
                  backend=backend)
    got = results(proc.stdout)
    said = proc.stdout + proc.stderr
    attacks = [ops[i + 1] for i in range(0, len(ops) - 6, 4)]
    assert {a: got.get(a) for a in attacks} == dict.fromkeys(attacks, "EACCES"), said
    assert got.get("read-procs") == got.get("read-events") == "ok", said
    assert got.get("alive") == "yes" and proc.returncode == 0, said
    untouched(cg, outsider, before)
    assert "contain: denied " in proc.stderr and "a cgroup file" in proc.stderr, proc.stderr


def test_root_inside_writes_no_cgroup_file_by_handle(cg, probe, place):  # noqa: F811
    """open_by_handle_at names a file by a handle, never by a path the gate
    walks: root inside (CAP_DAC_READ_SEARCH; yama-run started by root) froze
    the outsider's cgroup through its cgroup.freeze's handle while the path
    was refused. Refused for writing (EPERM, as without that capability);
    natively it works."""
    outsider = cg.outsider()
    ops = ["h", "freeze-handle", f"{cg.editor}/cgroup.freeze", "1"]
    native = subprocess.run([probe, *ops], capture_output=True, text=True, timeout=TIMEOUT).stdout
    assert results(native)["freeze-handle"] == "ok", native
    _write(cg.editor / "cgroup.freeze", "0")
    for prof in ("strict", profile(place, "default", DEFAULT)):
        proc = run_in(cg, cg.sandbox, [], prof, [probe, *ops])
        assert results(proc.stdout).get("freeze-handle") == "EPERM", proc.stdout + proc.stderr
        untouched(cg, outsider, None)


# -- not contained: yama-run's own cgroups are out of reach ----------------------------------

@pytest.mark.parametrize("launch", list(LAUNCHERS))
@pytest.mark.parametrize("mode", ["default", "default-no-landlock"])
def test_the_supervisors_cgroup_is_out_of_reach(cg, probe, place, mode, launch):  # noqa: F811
    """Not contained, the program (uid 1001, yama-run started by root or by
    uid 1001 in a delegated cgroup) moves itself to a sibling cgroup, as the attacker did,
    then freezes the cgroup holding the supervisor and the front and its
    ancestor, writes the supervisor's pid into a cgroup of its own and kills
    the supervisor's cgroup: each refused (EACCES); the sandbox runs on and
    exits normally, nothing of it frozen or moved. Meanwhile a cgroup of
    the program's own (mkdir'ed below `own`) is written as natively, and
    cgroup files are read."""
    prof = profile(place, "default", DEFAULT)
    env = NO_LANDLOCK if mode.endswith("no-landlock") else None
    launcher, inside = LAUNCHERS[launch]
    kid = cg.own / f"kid-{mode}-{launch}"
    ops = ["w", "move-self", f"{cg.mine}/cgroup.procs", "SELF",
           "w", "freeze", f"{cg.sandbox}/cgroup.freeze", "1",
           "p", "freeze-reopen", f"{cg.sandbox}/cgroup.freeze", "1",
           "w", "freeze-ancestor", f"{cg.app}/cgroup.freeze", "1",
           "a", "move-supervisor", f"{cg.mine}/cgroup.procs", "PARENT",
           "w", "kill", f"{cg.sandbox}/cgroup.kill", "1",
           "w", "kill-ancestor", f"{cg.app}/cgroup.kill", "1"]
    attacks = [ops[i + 1] for i in range(0, len(ops), 4)]
    ops += ["m", "mkdir-own", str(kid),
            "w", "freeze-own", f"{kid}/cgroup.freeze", "1",
            "w", "thaw-own", f"{kid}/cgroup.freeze", "0",
            "r", "read-procs", f"{cg.sandbox}/cgroup.procs",
            "r", "read-events", f"{cg.app}/cgroup.events"]
    if cg.limit:
        ops += ["w", "limit-own", f"{kid}/{cg.limit[0]}", cg.limit[1]]
    proc = run_in(cg, cg.sandbox, launcher, prof, [*inside, probe, *ops], env=env)
    got = results(proc.stdout)
    said = proc.stdout + proc.stderr
    assert {a: got.get(a) for a in attacks} == dict.fromkeys(attacks, "EACCES"), said
    works = ["mkdir-own", "freeze-own", "thaw-own", "read-procs", "read-events",
             *(["limit-own"] if cg.limit else [])]
    assert {a: got.get(a) for a in works} == dict.fromkeys(works, "ok"), said
    assert got.get("alive") == "yes" and proc.returncode == 0, said
    assert not _frozen(cg.sandbox) and not _frozen(cg.app)
    assert "it would reach the supervisor" in proc.stderr, proc.stderr
    if cg.limit:
        assert (kid / cg.limit[0]).read_text().strip() == cg.limit[1]


def test_a_cgroup_of_the_programs_own_is_written_as_natively(cg, probe, place):  # noqa: F811
    """Not contained, the outsider's cgroup (neither yama-run's nor an
    ancestor of it) is written as the kernel allows: frozen, then thawed."""
    prof = profile(place, "default", DEFAULT)
    outsider = cg.outsider()
    proc = run_in(cg, cg.sandbox, [], prof,
                  [*AS_1001, probe, "w", "freeze", f"{cg.editor}/cgroup.freeze", "1",
                   "r", "events", f"{cg.editor}/cgroup.events",
                   "w", "thaw", f"{cg.editor}/cgroup.freeze", "0"])
    got = results(proc.stdout)
    assert got.get("freeze") == got.get("thaw") == "ok", proc.stdout + proc.stderr
    assert _alive(outsider) and not _frozen(cg.editor)
