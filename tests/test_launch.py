"""The cached launch path's start (sandbox/launch.py, docs/startup.md): what
it loads before the program runs, and how it fails when the chain cannot be
loaded while the program already runs."""
import marshal
import os
import shutil
import site
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from conftest import BACKEND_ARGS, ROOT, YAMA_RUN, tree_env, yama_run
from sandbox import bareos

FROM_CACHE = "plan: from the cache"

# Each of these costs the start of every run a fraction of a millisecond or
# more (docs/startup.md, "For developers"); the launch path needs none of them
# before the program runs.
NOT_BEFORE_THE_PROGRAM = ("os", "posixpath", "stat", "__future__", "struct", "socket", "_socket",
                          "resource",
                          "signal", "threading", "re", "enum", "typing", "dataclasses", "importlib.metadata", "tomllib",
                          "click", "pyseccomp", "sandbox.cli", "sandbox.supervisor",
                          "sandbox.chain", "sandbox.modules", "sandbox.audit")


def modules_loaded_by(statements: str) -> set[str]:
    """Every module loaded once statements ran, in an interpreter started as
    the command starts it (python3 -IS, the package and its dependencies on
    sys.path)."""
    paths = [ROOT, *(p for p in site.getsitepackages() if os.path.isdir(p))]
    code = f"import sys; sys.path[:0] = {paths!r}; {statements}; print(' '.join(sorted(sys.modules)))"
    r = subprocess.run([sys.executable, "-IS", "-c", code], capture_output=True, text=True,
                       cwd="/", timeout=60)
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


def test_the_launch_path_loads_only_what_it_needs_before_the_program_runs():
    """Everything the cached start imports before the program runs: none of
    the modules that cost milliseconds."""
    loaded = modules_loaded_by("import sandbox.entry, sandbox.launch, sandbox.spawn, sandbox.shield")
    assert {"sandbox.entry", "sandbox.launch", "sandbox.spawn", "sandbox._yama"} <= loaded
    assert sorted(loaded & set(NOT_BEFORE_THE_PROGRAM)) == []


def test_once_sealed_the_package_is_imported_only_from_what_was_read(tmp_path):
    """sandbox/sealed.py, in a copy of the package: once sealed, a module
    changed on disk is imported as it was read (its stale .pyc passed over
    for its source at sealing), a module added since is refused, and a
    module planted beside the package is not found; unsealed (a spawn that
    never became the program), the path is as it was."""
    package = tmp_path / "sandbox"
    shutil.copytree(Path(ROOT) / "sandbox", package)
    (package / "routes.py").write_text((package / "routes.py").read_text() + "\nSEEN = 'read'\n")
    code = ("import sys, pathlib; sys.path[:0] = [sys.argv[1]]; "
            "import sandbox.entry, sandbox.spawn; from sandbox import sealed; sealed.seal(); "
            "p = pathlib.Path(sys.argv[1], 'sandbox'); "
            "(p / 'routes.py').write_text('SEEN = \"changed\"'); (p / 'added.py').write_text(''); "
            "import sandbox.routes; print(sandbox.routes.SEEN, sandbox.routes.__file__ == str(p / 'routes.py')); "
            "import sandbox.supervisor; print(type(sandbox.supervisor.__spec__.loader).__name__)\n"
            "try:\n    import sandbox.added\nexcept ImportError as e:\n    print(e)\n"
            "(p.parent / 'msvcrt.py').write_text('PLANTED = 1')\n"
            "try:\n    import msvcrt\nexcept ImportError as e:\n    print(type(e).__name__)\n"
            "sealed.unseal(); import msvcrt; print(msvcrt.PLANTED, sys.path[0] == sys.argv[1])")
    r = subprocess.run([sys.executable, "-I", "-c", code, str(tmp_path)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "read True", "SealedPackage",
        "sandbox.added: not among yama-run's modules read before the program ran",
        "ModuleNotFoundError", "1 True"]


def test_the_supervisor_loads_no_pyseccomp_while_the_program_runs():
    """Every module the supervisor loads once the program runs (the loader's,
    the servers', every policy module): no pyseccomp, whose import runs
    /sbin/ldconfig twice, a process the supervisor would fork beside the
    program (tests/test_lifetime.py sees it run). The route tables it reads
    are sandbox/routes.py's plain data."""
    loaded = modules_loaded_by(
        "import sandbox.entry, sandbox.launch, sandbox.journal, sandbox.audit, sandbox.chain, "
        "sandbox.profile, sandbox.supervisor, sandbox.control, sandbox.path_calls, "
        "sandbox.task_calls; from sandbox import modules; "
        "[modules.load(name) for name in modules.available()]")
    assert {"sandbox.supervisor", "sandbox.routes", "sandbox.modules.contain"} <= loaded
    assert sorted(loaded & {"pyseccomp", "sandbox.filter", "ctypes.util"}) == []


# -- os and os.path from posix alone (sandbox/bareos.py) ---------------------------------------

PATHS = ["", "/", "//", "///", "a", "a/", "/a", "//a", "///a", "a//b", "a/./b", "a/../b", "../a",
         "/..", "/../a", "a/b/..", "./", ".", "..", "/a/b/../../..", "a/../..", "~", "é/ü",
         "\udcff/x"]
path_text = st.text(alphabet="/.ab~", max_size=12)


def same_names(directory: str, name: str) -> None:
    assert bareos.join(directory, name) == os.path.join(directory, name)
    for path in (directory, name):
        assert bareos.basename(path) == os.path.basename(path)
        assert bareos.dirname(path) == os.path.dirname(path)
        assert bareos.isabs(path) == os.path.isabs(path)
        assert bareos.normpath(path) == os.path.normpath(path)
        assert bareos.abspath(path) == os.path.abspath(path)


@given(path_text, path_text)
def test_bareos_names_paths_as_os_path_does(directory, name):
    same_names(directory, name)


def test_bareos_names_these_paths_as_os_path_does():
    for directory in PATHS:
        for name in PATHS:
            same_names(directory, name)


@pytest.mark.parametrize("home", [None, "", "/", "/home/me/", "relative", "/a//"])
def test_bareos_home_is_expanduser(home):
    """As os.path.expanduser("~"): $HOME, trailing slashes dropped; without
    HOME, the password entry's directory."""
    script = ("import os, sys; sys.path.insert(0, sys.argv[1]); from sandbox import bareos; "
              "print(bareos.home() == os.path.expanduser('~'), bareos.home())")
    env = {"PATH": "/usr/bin:/bin"} if home is None else {"HOME": home}
    r = subprocess.run([sys.executable, "-S", "-c", script, ROOT], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.stdout.startswith("True "), r.stdout + r.stderr


def test_bareos_reads_the_environment_as_os_environ():
    """Names and values that are not UTF-8 come back as os.environ gives them.
    environ() is the environment the process was started with: without the
    LC_CTYPE=C.UTF-8 the interpreter's start put in os.environ (no locale
    set: PEP 538's coercion), which getenv, yama-run's own reading, sees."""
    script = ("import os, sys; sys.path.insert(0, sys.argv[1]); from sandbox import bareos; "
              "print(bareos.environ() == {k: v for k, v in os.environ.items() if k != 'LC_CTYPE'}, "
              "bareos.getenv('ODD') == os.environ['ODD'], bareos.getenv('NONE', 'x') == 'x', "
              "'LC_CTYPE' in bareos.environ(), bareos.getenv('LC_CTYPE'))")
    env = {b"ODD": b"\xff/\xc3\xa9", b"\xfe": b"v", b"PATH": b"/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-S", "-c", script, ROOT], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.stdout.split() == ["True", "True", "True", "False", "C.UTF-8"], r.stdout + r.stderr


@pytest.mark.parametrize("locale", ["none", "LANG=C", "LC_CTYPE=C", "LC_ALL=C"])
def test_the_program_gets_the_environment_yama_run_was_given(tmp_path, installed, locale):
    """With no locale set, or LANG=C (how scripts ask for bytes), the
    interpreter under yama-run coerces its own LC_CTYPE to C.UTF-8 (PEP 538;
    -I ignores PYTHONCOERCECLOCALE), and the program was given that
    environment: one variable more, LC_CTYPE=C overwritten, and `wc -m`
    counted 6 characters in h\303\251llo where the kernel's exec of the
    caller's environment counts 7 bytes. The program now gets the caller's
    environment, in its order: through the installed command, cold and from
    the cache, and through `python3 -m sandbox.cli`."""
    env = tree_env({"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    env.update(dict([locale.split("=")]) if locale != "none" else {})
    program = ["sh", "-c", r"env; printf 'h\303\251llo\n' | wc -m"]
    for command in ([str(installed)], YAMA_RUN):
        env["XDG_CACHE_HOME"] = str(tmp_path / f"cache-{len(command)}")   # (each its own plan)
        native = subprocess.run(program, env=env, capture_output=True, text=True, timeout=60)
        assert native.returncode == 0 and native.stdout.endswith("\n7\n"), native
        for path in ("cold", "cached"):
            r = subprocess.run([*command, "-v", "--", *program], env=env, capture_output=True,
                               text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            assert r.stdout == native.stdout, (command, path)
            assert ("plan: from the cache" in r.stderr) == (path == "cached"), r.stderr


def test_bareos_kinds_and_resolved_paths(tmp_path):
    """exists, is_dir, is_file as os.path's (a dangling link, a link to a
    directory, a name with a NUL); resolved as os.path.realpath for a file
    reached through links to it and to its directory."""
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "file").write_text("")
    (tmp_path / "to-dir").symlink_to("dir")
    (tmp_path / "to-file").symlink_to("to-dir/file")
    (tmp_path / "dangling").symlink_to("nowhere")
    for name in ("dir", "dir/file", "to-dir", "to-file", "dangling", "nowhere", "a\0b"):
        path = str(tmp_path / name)
        assert bareos.exists(path) == os.path.exists(path), name
        assert bareos.is_dir(path) == os.path.isdir(path), name
        assert bareos.is_file(path) == os.path.isfile(path), name
    link = str(tmp_path / "to-dir" / ".." / "to-file")
    assert bareos.resolved(link) == os.path.realpath(link) == str(tmp_path / "dir" / "file")


def run(cache: Path, *args, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    return yama_run("-v", *args, env=env, **kwargs)


def plan_path(result: subprocess.CompletedProcess) -> Path:
    line = next(line for line in result.stderr.splitlines() if FROM_CACHE in line)
    return Path(line.rsplit("(", 1)[1].rstrip(")"))


def test_a_chain_that_cannot_be_loaded_kills_the_program_from_the_cache(tmp_path):
    """The program runs before the chain is loaded; when loading fails, it is
    killed (fail closed: nobody would decide its calls), never left running
    unsupervised, and yama-run says why. The plan is the user's own (trusted):
    its chain names a module that does not exist, as a broken install would."""
    cache = tmp_path / "cache"
    marker = tmp_path / "survived"
    # The plan is found by the program's name: the runs that make and use it
    # need not wait. The last one gives the loader ten seconds to fail (a
    # loaded machine once took more than three), after which the program
    # would have ended on its own and the supervisor detached from stderr.
    assert "kept in" in run(cache, "--", "sh", "-c", "exit 0", timeout=60).stderr
    path = plan_path(run(cache, "--", "sh", "-c", "exit 0", timeout=60))
    command = ["sh", "-c", f"sleep 10 >/dev/null 2>&1; touch {marker}"]   # (not our pipes)
    plan = marshal.loads(path.read_bytes())
    plan["profile"]["chain"] = ["no_such_module"]
    path.write_bytes(marshal.dumps(plan))
    r = run(cache, "--", *command, timeout=60)
    assert FROM_CACHE in r.stderr, r.stderr
    assert "internal error in loading the supervisor" in r.stderr, r.stderr
    assert r.returncode == -9, r.stderr
    assert not marker.exists()


def test_a_run_from_the_cache_is_listed_with_its_profile(tmp_path):
    """--list-running shows the profile a cached start runs under (its name,
    and where each setting came from), as it shows a cold one's."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "XDG_RUNTIME_DIR": str(runtime)}
    args = ("--set", "ptrace.scope=2", "--", "sleep")
    assert "kept in" in yama_run("-v", *args, "0", env=env).stderr
    running = subprocess.Popen(
        [*YAMA_RUN, *BACKEND_ARGS, "-v", *args, "30"], env=tree_env(env),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        listed = []
        while not listed and time.monotonic() < deadline:
            out = yama_run("--list-running", env=env).stdout
            listed = [line.split() for line in out.splitlines() if line[:1].isdigit()]
            time.sleep(0.1)
        assert len(listed) == 1, out
        program, profile, state = listed[0][2:5]
        assert (program, profile, state) == ("sleep", "default", "running")
        shown = yama_run("--show-running", "sleep", env=env).stdout
        assert "ptrace.scope = 2  # --set" in shown, shown
    finally:
        running.terminate()
        _, err = running.communicate(timeout=30)
    assert FROM_CACHE in err, err
