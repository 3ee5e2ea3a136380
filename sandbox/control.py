"""The control socket of a running sandbox (the server; the client and the
directory are sandbox/running.py), and what the running filter lets change.

Each supervisor listens on PID.TOKEN.sock in the user's control directory
from the moment its program runs until its last process is gone: the listing
(status), one sandbox in detail, and changing a setting (set).

Who may talk to it. The program runs as the same uid, in the same filesystem:
it can reach the socket (and remove it, or plant one of its own), so the
socket's mode keeps out only other users, and the peer itself is judged on
every connection, from what the kernel recorded at connect() (SO_PEERCRED,
SO_PEERPIDFD):

  * its uid must be the supervisor's, or root. Root is let in: it holds
    every authority over the sandbox anyway (it may trace, kill or read the
    supervisor), so refusing it would protect nothing; a sandbox run by root
    has root's program refused by the next rule like anyone's;
  * it must not run with no_new_privs in seccomp filter mode
    (running.sandboxed): every process inside every yama-run sandbox has
    both, set before its program ran, and no process can clear either,
    whatever it execs, however it is re-parented (daemonised, orphaned after
    its supervisor died, in a pid namespace of its own). A supervisor that
    has both itself (a yama-run inside a sandbox) makes no socket, so no
    supervisor that listens could be mistaken for its own sandbox's program;
  * nor be a descendant of this supervisor (a sandbox with nothing routed
    installs no filter; its tree is still kept out);
  * these facts are read from /proc by pid, then the peer's pidfd confirms
    the process is still alive: the pid read was its own, not a reused one.
    A peer in a pid namespace we cannot see has pid 0 and is refused.

The one way around it is a process outside the sandbox made to connect for
the program: one it may trace (not contained: scope 0, or root's CAP_SYS_PTRACE
at 1 and 2), a file it may write that someone outside runs (yama-run
confines no file access), a service that starts commands for the user
(systemd-run --user over the session bus).
Those are reaches the program has already; the socket adds none.

What may change. The filter was built at start and cannot change (a task adds
filters only to itself): a new setting must need no call routed that is not
already (missing_routes). Every sandbox routes, besides what its settings
need, the rare calls that any value of its modules' settings would need
(routed_hooks: the ptrace family, PR_SET_PTRACER, link, symlink, execve), so
those can always be tightened; the frequent ones (open, stat, access...)
only with --ready-to-tighten. The rest is sandbox/chain.py (values, the
one-way ptrace scope) and Supervisor.apply_chain (putting it in force)."""
from __future__ import annotations

import itertools
import json
import os
import secrets
import select
import socket
import threading
import time
import traceback

from . import chain as chains
from . import modules as policy_modules
from . import routes as seccomp_routes
from . import running
from .journal import RateLimit
from .shield import KERNEL_PTRACE

CHECK_EVERY = 1.0          # s: is our socket still where clients look for it?
REQUEST_TIMEOUT = 2.0      # s: a peer that sends no request in time is dropped
BACKLOG = 16
CHANGES_KEPT = 50
CMDLINE_SHOWN = 256        # bytes of each process's command line in the detail
REFUSALS_BURST, REFUSALS_RATE = 10, 1.0     # refused peers recorded (a hostile program loops)

# Calls rare enough that routing them costs nothing a program would notice:
# routed whenever some value of a module's settings needs them.
RARE_CALLS = frozenset({"ptrace", "prctl", "process_vm_readv", "process_vm_writev",
                        "pidfd_getfd", "perf_event_open", "link", "linkat", "symlink",
                        "symlinkat", "execve", "execveat"})
COMBINATIONS_AT_MOST = 64  # settings values tried per module


# -- what the filter routes --------------------------------------------------------

def routes(hooks: set[str], kernel: int) -> tuple[set[tuple], bool]:
    """(the rules the filter built for hooks sends to the supervisor,
    whether it closes io_uring), as sandbox/filter.py's build makes them."""
    rules = {(name, tuple(args)) for hook in hooks
             for name, args in seccomp_routes.ROUTES.get(hook, ())}
    if not rules:
        return set(), False         # no filter at all: nothing else is installed either
    closed = False
    for action, name, args in seccomp_routes.hostile_rules(hooks, kernel):
        if name in seccomp_routes.IO_URING:
            closed = True
        elif action == seccomp_routes.NOTIFY:
            rules.add((name, tuple(args)))
    return rules, closed


def _uncovered(needed: set[tuple], installed: set[tuple]) -> set[tuple]:
    """Rules of needed that installed does not route (a call routed whatever
    its arguments covers every rule for it)."""
    return {rule for rule in needed if rule not in installed and (rule[0], ()) not in installed}


def missing_routes(installed_hooks: set[str], wanted_hooks: set[str],
                   kernel: int) -> list[str]:
    """What a filter built for installed_hooks lacks to serve wanted_hooks:
    the syscalls not routed (and "io_uring closed" if it stays open)."""
    installed, closed = routes(installed_hooks, kernel)
    needed, closes = routes(wanted_hooks, kernel)
    missing = sorted({name for name, _ in _uncovered(needed, installed)})
    if closes and not closed:
        missing.append("io_uring closed")
    return missing


def possible_hooks(module) -> set[str]:
    """Every hook some value of the module's settings needs."""
    hooks = set(module.hooks())
    if not isinstance(module, policy_modules.Module):
        return hooks            # a learning run's rung: it never changes
    cls = type(module)
    keys = sorted(cls.settings)
    values = itertools.product(*(cls.settings[key].choices for key in keys))
    for combination in itertools.islice(values, COMBINATIONS_AT_MOST):
        try:
            hooks |= set(cls({**module.config, **dict(zip(keys, combination))}).hooks())
        except Exception:       # a third-party module refusing a combination
            continue
    return hooks


def routed_hooks(chain, kernel: int, ready: bool) -> set[str]:
    """The hooks the filter is built for: the chain's, and those some value of
    its modules' settings needs when that routes only rare calls and leaves
    io_uring as it is (every one of them with ready); plus the supervisor's
    notice of privileged execs whenever anything is routed."""
    hooks = set(chain.hooks())
    possible = set().union(*(possible_hooks(m) for m in chain.modules)) - hooks
    if not kernel & KERNEL_PTRACE and "ptrace_read_access" in hooks | possible:
        # Contained, or containable live, without Landlock's domain: an
        # outsider's /proc/PID/fd/N, cwd, root, exe are the kernel's to give
        # any process of its uid, so the gate judges every walked path and
        # readlink. Nowhere else: gcc makes about a thousand readlinks per
        # file (docs/hostile.md).
        hooks.add("ptrace_proc_path")
    installed, closed = routes(hooks, kernel)
    for hook in sorted(possible):
        needed, closes = routes(hooks | {hook}, kernel)
        new_calls = {name for name, _ in _uncovered(needed, installed)}
        if ready or (new_calls <= RARE_CALLS and closes == closed):
            hooks.add(hook)
            installed, closed = needed, closes
    return hooks | seccomp_routes.NOTICES if hooks else hooks


# -- the server ----------------------------------------------------------------------

class Refused(Exception):
    """A peer the control socket does not answer."""


class Peer:
    """Who asked, for the audit: uid, pid, command name, terminal."""

    def __init__(self, pid: int, uid: int):
        self.pid, self.uid = pid, uid
        self.comm = running.status_field(pid, "Name") or "?"
        self.tty = running.terminal_of(pid)

    def describe(self) -> str:
        where = f" on {self.tty}" if self.tty else ""
        return f"uid {self.uid} (pid {self.pid} {self.comm}{where})"

    def fields(self) -> dict:
        return {"by_uid": self.uid, "by_pid": self.pid, "by_comm": self.comm,
                "by_tty": self.tty}


class ControlServer:
    def __init__(self, sup):
        self.sup = sup
        self.started = time.time()
        self.stopped = False
        self.path = ""                  # where clients find us (for the audit and -v)
        self.changes: list[dict] = []
        self._dir = -1
        self._sock: socket.socket | None = None
        self._name = ""
        self._inode = 0
        self._main = -1                 # a pidfd of the main program
        self._refusals = RateLimit(REFUSALS_BURST, REFUSALS_RATE)
        self._profile = None

    # -- lifetime ------------------------------------------------------------------

    def start(self, main_pid: int) -> None:
        """Listen (said with -v); a sandbox without a socket still runs."""
        if nested():
            self.sup.audit.say("no control socket: this yama-run runs inside another sandbox "
                               "(no_new_privs and a seccomp filter)")
            return
        try:
            self._main = os.pidfd_open(main_pid)     # our unreaped child: it is the program
        except OSError:
            pass
        try:
            self._dir = running.open_dir(create=True)
            self._bind()
        except (running.ControlError, OSError) as exc:
            self.sup.audit.say(f"no control socket: {exc}")
            return
        self.sup.audit.say(f"control socket: {self.path} (yama-run --list-running)")
        threading.Thread(target=self._loop, name="yama-run-control", daemon=True).start()

    def stop(self) -> None:
        """The tree is gone (the supervisor's rules_lock held): no change is
        made after this, and the socket is removed."""
        self.stopped = True
        if self._name:
            try:
                if os.stat(self._at(self._name), follow_symlinks=False).st_ino == self._inode:
                    os.unlink(self._at(self._name))
            except OSError:
                pass
            self._name = ""

    def _at(self, name: str) -> str:
        return running.in_dir(self._dir, name)

    def _bind(self) -> None:
        """A new socket under a new name: bound and listening under a
        temporary name, then renamed, so that a client never finds it before
        it listens (and never takes it for a stale one)."""
        token = secrets.token_hex(8)
        name = running.socket_name(os.getpid(), token)
        temporary = f"tmp-{name}"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.bind(self._at(temporary))
            os.chmod(self._at(temporary), 0o600)
            sock.listen(BACKLOG)
            sock.setblocking(False)     # a client gone between select and accept
            os.rename(self._at(temporary), self._at(name))
            self._inode = os.stat(self._at(name), follow_symlinks=False).st_ino
        except OSError:
            sock.close()
            try:
                os.unlink(self._at(temporary))
            except OSError:
                pass
            raise
        old, self._sock, self._name = self._sock, sock, name
        self.path = os.path.join(running.control_dir()[0], name)
        if old is not None:
            old.close()

    def _upkeep(self) -> None:
        """Our socket may have been removed or replaced (anyone of our uid
        can, the program included): listen again under a new name, and say
        so in the audit."""
        try:
            if os.stat(self._at(self._name), follow_symlinks=False).st_ino == self._inode:
                return
        except OSError:
            pass
        with self.sup.rules_lock:
            if self.stopped:
                return
            gone = self.path
            try:
                os.close(self._dir)
                self._dir = running.open_dir(create=True)
                self._bind()
            except (running.ControlError, OSError) as exc:
                self.sup.audit.notice("control-lost", f"control socket {gone} was removed and "
                                      f"cannot be made again: {exc}")
                return
        self.sup.audit.notice("control-renewed", f"control socket {gone} was removed or "
                              f"replaced; listening again on {self.path}",
                              old=gone, socket=self.path)

    def _loop(self) -> None:
        while not self.stopped:
            try:
                ready, _, _ = select.select([self._sock], [], [], CHECK_EVERY)
                if ready:
                    self._accept()
                if not self.stopped:
                    self._upkeep()
            except Exception:       # the control socket must never end the supervisor
                self.sup.audit.internal_error("serving the control socket",
                                              traceback.format_exc())
                time.sleep(CHECK_EVERY)

    def _accept(self) -> None:
        try:
            conn, _ = self._sock.accept()
        except (BlockingIOError, ConnectionAbortedError):
            return
        with conn:
            conn.setblocking(True)
            self._serve(conn)

    # -- one connection --------------------------------------------------------------

    def _serve(self, conn: socket.socket) -> None:
        deadline = time.monotonic() + REQUEST_TIMEOUT
        try:
            peer = self._admit(conn)
        except Refused as why:
            self._refused(conn, str(why))
            return
        try:
            request = json.loads(running.read_bounded(conn, running.REQUEST_MAX, deadline))
            answer = self._answer(request, peer) if isinstance(request, dict) else \
                {"error": "a request is a JSON object"}
        except (OSError, ValueError) as exc:
            answer = {"error": f"bad request: {exc}"}
        answer["supervisor"] = os.getpid()
        conn.settimeout(REQUEST_TIMEOUT)
        try:
            running.send_line(conn, answer)
        except OSError:
            pass

    def _admit(self, conn: socket.socket) -> Peer:
        """The peer, if it may be answered (see the module's docstring)."""
        pid, uid, _ = running.peer_credentials(conn)
        try:
            pidfd = running.peer_pidfd(conn)
        except ProcessLookupError as exc:   # gone, and nothing proves which process pid is
            raise Refused(f"pid {pid} has exited: {exc}") from None
        try:
            if uid not in (os.geteuid(), 0):
                raise Refused(f"uid {uid} is neither the sandbox's owner nor root")
            if pid <= 0:
                raise Refused("the peer's process cannot be seen from here")
            if running.sandboxed(pid) is not False:
                raise Refused(f"pid {pid} runs with no_new_privs under a seccomp filter, "
                              "as every sandboxed process does")
            if inside(pid, os.getpid()):
                raise Refused(f"pid {pid} is inside this sandbox")
            peer = Peer(pid, uid)
            if pidfd is not None and running.exited(pidfd):
                raise Refused(f"pid {pid} has exited")  # what was read may be another's
            return peer
        finally:
            if pidfd is not None:
                os.close(pidfd)

    def _refused(self, conn: socket.socket, why: str) -> None:
        pid, uid, _ = running.peer_credentials(conn)
        if self._refusals.allow():
            self.sup.audit.notice("control-refused", f"control socket: refused a connection "
                                  f"from pid {pid} (uid {uid}): {why}", pid=pid, uid=uid,
                                  reason=why, socket=self.path)
        conn.settimeout(REQUEST_TIMEOUT)
        try:
            running.send_line(conn, {"refused": why, "supervisor": os.getpid()})
            conn.shutdown(socket.SHUT_WR)
            _discard_queued(conn)
        except OSError:
            pass

    def _answer(self, request: dict, peer: Peer) -> dict:
        if request.get("v") != running.PROTOCOL:
            return {"error": f"protocol {request.get('v')!r} unknown (this supervisor "
                    f"speaks {running.PROTOCOL}): an older or newer yama-run"}
        op = request.get("op")
        if op == "status":
            return self.status()
        if op == "detail":
            return self.detail()
        if op == "set":
            pairs = request.get("changes")
            if not (isinstance(pairs, list) and all(
                    isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)
                    for p in pairs)):
                return {"error": "changes: a list of [MODULE.KEY, VALUE]"}
            return self.change(pairs, peer)
        return {"error": f"unknown request {op!r}"}

    # -- what is shown ---------------------------------------------------------------

    def profile(self):
        """The profile the chain in force follows (one made from the chain
        when the supervisor was not given it)."""
        if self._profile is None:
            self._profile = self.sup.profile or _profile_of(self.sup.chain)
        return self._profile

    def status(self) -> dict:
        sup = self.sup
        main_alive = self._main >= 0 and not running.exited(self._main)
        if main_alive:
            state = "running"
        elif sup.link is not None and sup.link.detached:
            state = "detached"
        else:
            state = "exited"
        tree = descendants(os.getpid())
        profile = self.profile()
        return {
            "supervisor": os.getpid(), "main_pid": sup.main_pid,
            "program": os.path.basename(sup.argv[0]) if sup.argv else "?",
            "argv": sup.argv, "uid": os.geteuid(), "started": self.started,
            "profile": profile.name, "profile_source": profile.source,
            "state": state, "state_detail": _state_detail(state, sup.main_pid, len(tree)),
            "processes": len(tree), "denials": sup.audit.denials,
            "settings": self._settings(False), "control": self.path,
        }

    def detail(self) -> dict:
        sup = self.sup
        shield = sup.shield
        containment = ("contained (Landlock domain and hooks)" if shield.landlock else
                       "not contained" if not shield.contained else
                       "contained (hooks alone)" if sup.userns else
                       "contained (hooks alone: a call checked then continued can be raced "
                       "past the check to a process outside)")
        return {
            **self.status(),
            "settings": self._settings(True),
            "backend": sup.served_by,
            "protection": f"{containment}; {'a' if sup.userns else 'no'} user namespace"
                          + ("; permissive" if sup.chain.permissive else ""),
            "enforcement": [m.enforcement() for m in sup.chain.modules
                            if hasattr(m, "enforcement")],
            "routed": (" ".join(sorted(sup.hooks())) or "nothing (no filter)")
                      + (" (started with --ready-to-tighten)" if sup.ready else ""),
            "changes": self.changes,
            "tree": [[depth, pid, comm, cmdline] for depth, pid, comm, cmdline in
                     _described(descendants(os.getpid()))],
        }

    def _settings(self, with_live: bool) -> list[dict]:
        profile = self.profile()
        out = []
        for module in self.sup.chain.modules:
            for key in sorted(getattr(module, "settings", {})):
                entry = {"module": module.name, "key": key, "value": module.config[key],
                         "origin": profile.origins.get((module.name, key), "module default")}
                if with_live:
                    entry["live"] = {running.toml(choice): self._why_not(module, key, choice)
                                     for choice in module.settings[key].choices}
                out.append(entry)
        return out

    def _why_not(self, module, key: str, value) -> str:
        """"" if module.key may be changed to value now, else why not."""
        if module.config[key] == value and type(module.config[key]) is type(value):
            return ""
        try:
            self._plan([[f"{module.name}.{key}", running.toml(value).strip('"')]], "")
        except chains.ChangeRefused as exc:
            return exc.brief
        return ""

    # -- changing ------------------------------------------------------------------

    def _plan(self, pairs, origin: str):
        """The new chain for pairs, or ChangeRefused: its values (chain.py), the
        routes the running filter has, containment that cannot be lifted."""
        sup = self.sup
        if type(sup.chain) is not chains.Chain:
            raise chains.ChangeRefused("a learning run's settings do not change while it runs")
        plan = chains.changed(sup.chain, self.profile(), [tuple(p) for p in pairs], origin)
        for _, module in plan.recreated:
            missing = missing_routes(sup.hooks(), set(module.hooks()), sup.shield.kernel)
            if missing and not _kernel_enforces(module):
                raise chains.ChangeRefused(_not_routed(module, missing),
                                           f"{module.name} would need calls routed that this "
                                           "sandbox was started without (--ready-to-tighten)")
        if sup.shield.landlock and not any(getattr(m, "contained", False)
                                           for m in plan.chain.modules):
            raise chains.ChangeRefused(
                "the program was started in a Landlock domain (contain.enabled = true), which "
                "no one can lift from a running process; start it again with "
                "--set contain.enabled=false")
        return plan

    def change(self, pairs: list[list[str]], peer: Peer) -> dict:
        """Apply every change of the request or none; each one audited."""
        sup = self.sup
        when = time.strftime("%Y-%m-%d %H:%M:%S")
        origin = f"changed live {when} by {peer.describe()}"
        with sup.rules_lock:
            try:
                if self.stopped:
                    raise chains.ChangeRefused("the sandbox has ended")
                plan = self._plan(pairs, origin)
            except chains.ChangeRefused as exc:
                self._audit_refusal(pairs, str(exc), peer)
                return {"error": str(exc), "program": _program(sup)}
            chains.commit(plan)
            sup.apply_chain(plan.chain)
            self._profile = plan.profile
        applied = [self._audit_change(change, peer) for change in plan.changes]
        for module in plan.chain.modules:
            if hasattr(module, "enforcement") and module.name in {c.module for c in plan.changes}:
                sup.audit.say(module.enforcement())
        return {"applied": applied, "program": _program(sup)}

    def _audit_change(self, change, peer: Peer) -> str:
        old, new = running.toml(change.old), running.toml(change.new)
        if change.direction == "unchanged":
            text = f"{change.setting} stays {new}"
        else:
            text = (f"{change.setting} {old} -> {new} ({change.direction}; in force from the "
                    f"next call)")
        message = f"{text}, by {peer.describe()} through {self.path}"
        record = {"setting": change.setting, "old": change.old, "new": change.new,
                  "direction": change.direction, "socket": self.path, **peer.fields()}
        self.sup.audit.notice("setting-changed", message, always=True, **record)
        self.changes = [*self.changes, {"time": time.time(), "message": message}][-CHANGES_KEPT:]
        return text

    def _audit_refusal(self, pairs, why: str, peer: Peer) -> None:
        asked = " ".join(f"{key}={value}" for key, value in pairs)
        self.sup.audit.notice("setting-change-refused",
                              f"refused changing {asked} for {peer.describe()}: {why}",
                              always=True, changes=pairs, reason=why, socket=self.path,
                              **peer.fields())


# -- helpers --------------------------------------------------------------------------

def nested() -> bool:
    """Does this process run inside a sandbox (no_new_privs and a filter)?"""
    return running.sandboxed("self") is not False


def _discard_queued(conn: socket.socket) -> None:
    """Drop what a refused peer already sent, never waiting for more: a
    socket closed with unread data resets the connection, and the peer
    would get ECONNRESET in place of the end of our answer."""
    conn.setblocking(False)
    for _ in range(running.REQUEST_MAX // 65536 + 1):
        try:
            if not conn.recv(65536):
                return
        except OSError:             # nothing queued (EAGAIN), or gone
            return


def inside(pid: int, supervisor: int, attempts: int = 3) -> bool:
    """Is pid a descendant of supervisor? A process of ours whose parent
    exits during the walk is re-parented to us (we are the subreaper), so a
    walk that breaks off before pid 1 is walked again, and counted as inside
    if it never completes (fail closed)."""
    for _ in range(attempts):
        chain = running.ancestry(pid)
        if supervisor in chain:
            return True
        if chain[-1] == 1 or running.parent_of(chain[-1]) == 0:
            return False
    return True


def descendants(root: int) -> list[tuple[int, int]]:
    """(depth, pid) of every process below root, depth first (one /proc scan)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            parent = running.parent_of(int(name))
            if parent is not None:
                children.setdefault(parent, []).append(int(name))
    out, stack = [], [(0, pid) for pid in sorted(children.get(root, []), reverse=True)]
    while stack and len(out) < 100_000:
        depth, pid = stack.pop()
        out.append((depth, pid))
        stack.extend((depth + 1, child) for child in sorted(children.get(pid, []), reverse=True))
    return out


def _described(tree, limit: int = 1000):
    """(depth, pid, comm, cmdline) of the first limit processes. The program
    writes its processes' command lines: at CMDLINE_SHOWN bytes each (a
    control character costs six in JSON), a thousand of them fit the
    client's REPLY_MAX; whole, 250 of 4 KiB made --show-running fail."""
    for depth, pid in tree[:limit]:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                raw = f.read(CMDLINE_SHOWN + 1)
        except OSError:
            raw = b""
        cut = raw[:CMDLINE_SHOWN].rstrip(b"\0").replace(b"\0", b" ")
        cmdline = cut.decode(errors="replace") + ("..." if len(raw) > CMDLINE_SHOWN else "")
        yield depth, pid, running.status_field(pid, "Name") or "?", cmdline


def _state_detail(state: str, main_pid: int, processes: int) -> str:
    if state == "running":
        return f"running (program pid {main_pid}; {_processes(processes)} in the sandbox)"
    left = f"{_processes(processes)} left, still supervised"
    if state == "detached":
        return f"the program exited and yama-run returned; {left}"
    return f"the program exited; {left}"


def _processes(count: int) -> str:
    return f"{count} process{'es' if count != 1 else ''}"


def _program(sup) -> str:
    return os.path.basename(sup.argv[0]) if sup.argv else "?"


def _profile_of(chain):
    """A profile that says what the chain holds (a supervisor given none)."""
    from .profile import Profile
    return Profile("?", "?", [m.name for m in chain.modules],
                   {m.name: dict(m.config) for m in chain.modules
                    if isinstance(m, policy_modules.Module)})


def _kernel_enforces(module) -> bool:
    """A fs.protected_* level the kernel's own sysctl already enforces: the
    calls not routed to us get it from the kernel."""
    kernel, level = getattr(module, "kernel", None), getattr(module, "level", None)
    return isinstance(kernel, int) and isinstance(level, int) and kernel >= level


def _not_routed(module, missing: list[str]) -> str:
    shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
    settings = " ".join(f"--set {module.name}.{key}={running.toml(value).strip(chr(34))}"
                        for key, value in sorted(module.config.items()))
    return (f"{module.name} would need {shown} routed to the supervisor, and this sandbox was "
            f"started without them (a filter cannot change once installed); start it with "
            f"--ready-to-tighten, or with {settings}")
