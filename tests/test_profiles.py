"""Profiles as users meet them: found by program name or alias, user files
over system and bundled ones, includes, --set last, errors that name file,
line, key and the valid values, the introspection options; and third-party
modules found through the `yama_run.modules` entry-point group."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from as_user import as_user  # noqa: F401  (fixture)
from conftest import requires_root, yama_run

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "profiles"
EXAMPLE = Path(__file__).resolve().parent / "example_module"
WALK_MODULES = ("symlinks", "fifos", "regular")


def _has_path_modules() -> bool:
    sys.path.insert(0, str(ROOT))
    try:
        from sandbox import modules
        return all(m in modules.BUNDLED for m in WALK_MODULES)
    finally:
        sys.path.pop(0)


needs_path_modules = pytest.mark.skipif(
    not _has_path_modules(),
    reason="the bundled application profiles use the symlinks, fifos and regular modules "
           "(issue 4), not in this tree yet")


@pytest.fixture
def env(tmp_path):
    """An environment with its own, empty user profile directory."""
    config = tmp_path / "config"
    (config / "yama-run" / "profiles").mkdir(parents=True)
    environ = dict(os.environ, XDG_CONFIG_HOME=str(config),
                   PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                            os.environ.get("PYTHONPATH")])))
    return environ


def user_dir(env) -> Path:
    return Path(env["XDG_CONFIG_HOME"]) / "yama-run" / "profiles"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def seccomp_mode(output: str) -> str:
    return re.search(r"^Seccomp:\s*(\d)", output, re.M).group(1)


def profile_line(stderr: str) -> str:
    return next(line for line in stderr.splitlines() if line.startswith("yama-run: profile "))


# -- lookup by program name ------------------------------------------------------

def test_program_basename_selects_the_user_profile(env, tmp_path):
    """A user profile named after the program is used (its empty chain installs
    no filter), with -v saying which file and why; another program gets default."""
    write(user_dir(env) / "cat.toml", "chain = []\n")
    r = yama_run("-v", "/bin/cat", "/proc/self/status", env=env)
    assert r.returncode == 0, r.stderr
    assert seccomp_mode(r.stdout) == "0"
    line = profile_line(r.stderr)
    assert f"profile cat ({user_dir(env) / 'cat.toml'}, user; named cat)" in line
    r = yama_run("-v", "head", "-c", "100000", "/proc/self/status", env=env)
    assert seccomp_mode(r.stdout) == "2"
    assert f"profile default ({BUNDLED / 'default.toml'}, bundled; no profile for head)" \
        in profile_line(r.stderr)


def test_v_names_the_files_a_profile_includes_as_they_were_found(env):
    """The bundled firefox profile includes "strict", which a user's own
    strict.toml stands for: -v names that file (before, only firefox.toml
    showed, and what strict was read from only in --show-profile), and the
    cached run says the same."""
    strict = write(user_dir(env) / "strict.toml", 'chain = ["ptrace"]\n[ptrace]\nscope = 3\n')
    for _ in range(2):                                  # cold, then from the plan
        r = yama_run("-v", "--profile", "firefox", "true", env=env)
        assert r.returncode == 0, r.stderr
        line = profile_line(r.stderr)
        assert f"profile firefox ({BUNDLED / 'firefox.toml'}, bundled; includes {strict})" \
            in line, line


def test_alias_selects_the_profile_that_declares_it(env, tmp_path):
    write(user_dir(env) / "viewer.toml",
          'aliases = ["cat", "tac"]\nchain = ["ptrace"]\n[ptrace]\nscope = 3\n')
    r = yama_run("-v", "cat", "/proc/self/status", env=env)
    assert r.returncode == 0 and seccomp_mode(r.stdout) == "2"
    assert "profile viewer (" in profile_line(r.stderr)
    assert "cat is an alias of viewer" in profile_line(r.stderr)
    assert "ptrace(scope=3)" in profile_line(r.stderr)


def test_a_symlinked_program_is_looked_up_by_what_it_resolves_to(env, tmp_path):
    """x-www-browser -> /etc/alternatives/x-www-browser -> firefox-esr finds firefox."""
    write(user_dir(env) / "cat.toml", "chain = []\n")
    cat = os.path.realpath(shutil.which("cat"))
    link = tmp_path / "pager-of-choice"
    link.symlink_to(cat)
    r = yama_run("-v", link, "/proc/self/status", env=env)
    assert r.returncode == 0 and seccomp_mode(r.stdout) == "0"
    assert f"user; pager-of-choice resolves to {cat}: named cat)" in profile_line(r.stderr)


def test_a_file_named_after_the_program_beats_an_alias(env):
    write(user_dir(env) / "viewer.toml", 'aliases = ["cat"]\nchain = ["ptrace"]\n')
    write(user_dir(env) / "cat.toml", 'chain = []\n')
    r = yama_run("-v", "cat", "/proc/self/status", env=env)
    assert seccomp_mode(r.stdout) == "0" and "profile cat (" in profile_line(r.stderr)


def test_a_broken_profile_stops_the_lookup_instead_of_being_skipped(env):
    """It might have declared the program as an alias: fail closed."""
    broken = write(user_dir(env) / "zzz.toml", 'aliases = ["true"\n')
    r = yama_run("true", env=env)
    assert r.returncode == 125 and f"{broken}:1: Unclosed array" in r.stderr
    assert yama_run("--profile", "default", "true", env=env).returncode == 0


def test_profile_option_and_no_profile_skip_the_lookup(env):
    write(user_dir(env) / "cat.toml", "chain = []\n")
    r = yama_run("--profile", "default", "cat", "/proc/self/status", env=env)
    assert seccomp_mode(r.stdout) == "2"
    r = yama_run("--no-profile", "-v", "cat", "/proc/self/status", env=env)
    assert seccomp_mode(r.stdout) == "2" and "profile built-in" in r.stderr


def test_user_file_shadows_the_bundled_default(env):
    write(user_dir(env) / "default.toml", 'chain = ["ptrace"]\n[ptrace]\nscope = 2\n')
    r = yama_run("-v", "true", env=env)
    assert r.returncode == 0
    assert f"({user_dir(env) / 'default.toml'}, user;" in profile_line(r.stderr)
    assert "ptrace(scope=2)" in profile_line(r.stderr)
    listing = yama_run("--list-profiles", env=env).stdout
    bundled = next(line for line in listing.splitlines() if str(BUNDLED / "default.toml") in line)
    assert f"(shadowed by {user_dir(env) / 'default.toml'})" in bundled


@requires_root
def test_search_order_user_then_system_then_bundled(env):
    """A system profile (/etc/yama-run/profiles) is found by name, and a user
    file of the same name shadows it. Uses a unique name; removed after."""
    name = f"yama-run-test-{uuid.uuid4().hex[:8]}"
    system = Path("/etc/yama-run/profiles")
    created = [p for p in (system.parent, system) if not p.exists()]
    system.mkdir(parents=True, exist_ok=True)
    try:
        write(system / f"{name}.toml", 'chain = ["ptrace"]\n[ptrace]\nscope = 2\n')
        r = yama_run("-v", "--profile", name, "true", env=env)
        assert f"({system / name}.toml, system" in profile_line(r.stderr)
        write(user_dir(env) / f"{name}.toml", 'chain = ["ptrace"]\n[ptrace]\nscope = 3\n')
        r = yama_run("-v", "--profile", name, "true", env=env)
        assert f"({user_dir(env) / name}.toml, user" in profile_line(r.stderr)
        assert "ptrace(scope=3)" in profile_line(r.stderr)
        listing = yama_run("--list-profiles", env=env).stdout
        assert re.search(rf"^{name}\s+system\s+\S+\s+\(shadowed by ", listing, re.M)
    finally:
        (system / f"{name}.toml").unlink(missing_ok=True)
        for path in reversed(created):
            path.rmdir()


# -- includes and where values come from -----------------------------------------

def show(env, *args) -> str:
    r = yama_run(*args, env=env)
    assert r.returncode == 0, r.stderr
    return r.stdout


def origin(shown: str, setting: str) -> str:
    """The comment after `setting` in --show-profile output."""
    line = next(line for line in shown.splitlines() if line.startswith(setting))
    return line.split("#", 1)[1].strip()


def test_include_then_own_values_then_set(env):
    app = write(user_dir(env) / "app.toml",
                'include = "default"\n\n[ptrace]\nscope = 2\n')
    shown = show(env, "--show-profile", "app")
    assert origin(shown, "chain = ") == f"{BUNDLED / 'default.toml'}:5"
    assert origin(shown, "scope = 2") == f"{app}:4"
    assert origin(shown, "protected = 1") == f"{BUNDLED / 'default.toml'}:15"
    shown = show(env, "--show-profile", "app", "--set", "ptrace.scope=3")
    assert origin(shown, "scope = 3") == "--set"
    # what --show-profile prints is itself a profile that loads
    copy = write(Path(env["XDG_CONFIG_HOME"]) / "copy.toml", shown)
    assert yama_run("--profile", copy, "true", env=env).returncode == 0


def test_module_default_is_shown_as_such(env):
    write(user_dir(env) / "bare.toml", 'chain = ["ptrace"]\n')
    assert origin(show(env, "--show-profile", "bare"), "scope = 1") == "module default"


def test_a_user_profile_extends_the_bundled_one_of_the_same_name(env):
    """include = "default" inside the user's default.toml means the next one in
    the search order, not itself."""
    mine = write(user_dir(env) / "default.toml", 'include = "default"\n[ptrace]\nscope = 2\n')
    shown = show(env, "--show-profile", "default")
    assert origin(shown, "scope = 2") == f"{mine}:3"
    assert origin(shown, "protected = 1") == f"{BUNDLED / 'default.toml'}:15"
    assert f"read in order: {BUNDLED / 'default.toml'}, {mine}" in shown


def test_include_by_relative_path_and_later_include_wins(env, tmp_path):
    d = tmp_path / "p"
    d.mkdir()
    write(d / "a.toml", 'chain = ["ptrace"]\n[ptrace]\nscope = 1\n')
    write(d / "b.toml", '[ptrace]\nscope = 2\n')
    top = write(d / "top.toml", 'include = ["a.toml", "./b.toml"]\n')
    shown = show(env, "--show-profile", str(top))
    assert origin(shown, "scope = 2") == f"{d / 'b.toml'}:2"


def test_included_settings_outside_the_chain_are_dropped_own_ones_refused(env):
    write(user_dir(env) / "narrow.toml", 'include = "default"\nchain = ["ptrace"]\n')
    shown = show(env, "--show-profile", "narrow")
    assert "[hardlinks]" not in shown
    bad = write(user_dir(env) / "bad.toml", 'chain = ["ptrace"]\n[hardlinks]\nprotected = 0\n')
    r = yama_run("--profile", "bad", "true", env=env)
    assert r.returncode == 125
    assert f"{bad}:3: hardlinks.protected: module 'hardlinks' is not in the chain" in r.stderr


def test_include_cycle_is_an_error_naming_the_line(env):
    a = write(user_dir(env) / "a.toml", 'chain = []\ninclude = "b"\n')
    b = write(user_dir(env) / "b.toml", 'include = ["a"]\n')
    r = yama_run("--profile", "a", "true", env=env)
    assert r.returncode == 125
    assert f"{b}:1: include cycle: {a} -> {b} -> {a}" in r.stderr


@pytest.mark.parametrize("text, message", [
    ('include = "nosuch"\nchain = []\n', ":1: include: no profile named 'nosuch'"),
    ('include = 3\nchain = []\n', ":1: 'include' must be a profile name or path"),
    ('chain = []\naliases = "x"\nbogus = 1\n', ":3: unknown key 'bogus'; valid keys: "
     "description, aliases, include, chain, and one table per module (ptrace, hardlinks"),
    ('chain = []\naliases = [1]\n', ":2: 'aliases' must be a list of program names"),
    ('[ptrace]\nscope = 1\n', ": no 'chain'"),
    ('chain = ["ptrace"]\n[ptrace]\nscop = 1\n', ":3: ptrace: unknown key 'scop'; valid keys: scope"),
    ('chain = ["ptrace"]\nptrace.scope = 5\n', ":2: ptrace.scope: bad value 5; valid values: 0, 1, 2, 3"),
    ('chain = ["ptrace"]\n[nomod]\nx = 1\n', ":2: unknown module 'nomod'; valid modules: ptrace, hardlinks"),
    ('chain = ["ptrace"]\n\n[ptrace\n', ":3: "),
])
def test_profile_errors_name_file_line_key_and_valid_values(env, text, message):
    bad = write(user_dir(env) / "bad.toml", text)
    for args in (("--profile", "bad", "true"), ("--show-profile", "bad")):
        r = yama_run(*args, env=env)
        assert r.returncode == 125, r.stderr
        assert f"{bad}{message}" in r.stderr


def test_introspection_runs_no_program_and_any_program_name_still_runs(env, tmp_path):
    r = yama_run("--list-profiles", "true", env=env)
    assert r.returncode == 125 and "run no program" in r.stderr
    # a program called like an option's word is just a program
    prog = tmp_path / "list-profiles"
    prog.write_text("#!/bin/sh\necho ran $1\n")
    prog.chmod(0o755)
    r = yama_run(prog, "--show-profile", env=env)
    assert r.returncode == 0 and r.stdout == "ran --show-profile\n"


def test_list_profiles_shows_names_paths_and_aliases(env):
    write(user_dir(env) / "viewer.toml", 'aliases = ["cat", "tac"]\nchain = []\n')
    listing = show(env, "--list-profiles")
    assert re.search(rf"^viewer\s+user\s+{re.escape(str(user_dir(env)))}/viewer.toml\s+cat, tac$",
                     listing, re.M)
    assert re.search(rf"^default\s+bundled\s+{re.escape(str(BUNDLED))}/default.toml", listing, re.M)


def test_show_profile_of_a_program_without_one_says_default(env):
    shown = show(env, "--show-profile", "/usr/bin/some-program")
    assert shown.startswith(f"# profile default: {BUNDLED / 'default.toml'} (bundled)\n"
                            "# chosen because: no profile for some-program\n")


# -- the bundled application profiles --------------------------------------------

APPS = {"firefox": ["firefox-esr", "firefox-bin"],
        "chromium": ["chromium-browser", "google-chrome", "chrome"],
        "thunderbird": [], "signal-desktop": [], "evince": ["okular", "zathura"],
        "make": ["gmake", "ninja"]}


@needs_path_modules
@pytest.mark.parametrize("name", sorted(APPS))
def test_bundled_profiles_load_and_are_found_by_their_aliases(env, name):
    for program in [name, *APPS[name]]:
        shown = show(env, "--show-profile", f"/usr/bin/{program}")
        assert shown.startswith(f"# profile {name}: {BUNDLED / name}.toml (bundled)\n")
        assert "ptrace" in shown and f"{BUNDLED / name}.toml:" in origin(shown, "scope = 1")


@needs_path_modules
@pytest.mark.parametrize("name", ["firefox", "chromium", "thunderbird", "signal-desktop"])
def test_networked_apps_get_every_protection_at_an_explicit_level(env, name):
    shown = show(env, "--show-profile", name)
    for setting in ("scope = 1", "protected = 1", "protected = 2", "protect_creation = true"):
        assert setting in shown
    assert '"auto"' not in shown
    assert 'chain = ["contain", "ptrace", "hardlinks", "symlinks", "fifos", "regular"]' in shown
    assert "enabled = true" in shown


def test_every_bundled_profile_explains_its_values():
    """Each table carries a comment: above its header or on its lines.
    (default.toml, owned with the path modules, explains them as a group.)"""
    for path in BUNDLED.glob("*.toml"):
        text = path.read_text()
        assert text.lstrip().startswith("#"), f"{path}: no header comment"
        if path.name == "default.toml":
            continue
        sections = re.split(r"\n(?=\[)", text)
        for previous, section in zip(sections, sections[1:]):
            above = previous.rstrip().splitlines()[-1]
            assert above.startswith("#") or "#" in section, \
                f"{path}: {section.splitlines()[0]} has no reason"


# -- third-party modules ---------------------------------------------------------

def entry_points(tmp_path: Path, env: dict, lines: dict[str, str]) -> dict:
    """Put a dist-info with these yama_run.modules entry points (and the
    example package) on the child's sys.path: what `pip install` would write."""
    site = tmp_path / "site"
    dist = site / "yama_run_example-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: yama-run-example\n"
                                   "Version: 0.1.0\n")
    (dist / "entry_points.txt").write_text(
        "[yama_run.modules]\n" + "".join(f"{k} = {v}\n" for k, v in lines.items()))
    env = dict(env)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(EXAMPLE), env["PYTHONPATH"]])
    return env


def one_module_env(tmp_path: Path, name: str, cls: str, source: str) -> dict:
    """The environment in which yama-run (this tree's) finds one third-party
    module: NAME_module.py with this source, installed as the entry point
    NAME -> NAME_module:CLS."""
    pkg = tmp_path / "mods"
    pkg.mkdir()
    (pkg / f"{name}_module.py").write_text(source)
    root = Path(__file__).resolve().parent.parent
    env = entry_points(tmp_path, dict(os.environ, PYTHONPATH=str(root)),
                       {name: f"{name}_module:{cls}"})
    env["PYTHONPATH"] = f"{pkg}{os.pathsep}{env['PYTHONPATH']}"
    return env


PTRACER_ANY = ("import ctypes; libc = ctypes.CDLL(None, use_errno=True)\n"
               "for tracer in (2**64 - 1, 1):\n"
               "    ctypes.set_errno(0)\n"
               "    r = libc.prctl(0x59616d61, ctypes.c_ulong(tracer), 0, 0, 0)\n"
               "    print(r, ctypes.get_errno())\n")


def test_entry_point_module_denies_with_an_audit_line(env, tmp_path):
    """The example package's module, found through the entry-point group,
    refuses PR_SET_PTRACER_ANY (EPERM, audited with its name and reason) and
    lets a declaration of one pid through to the ptrace module (emulated: 0)."""
    env = entry_points(tmp_path, env, {"no_ptracer_any": "yama_run_example:NoPtracerAny"})
    profile = write(tmp_path / "p.toml", 'chain = ["no_ptracer_any", "ptrace"]\n')
    log = tmp_path / "audit.jsonl"
    r = yama_run("--profile", profile, "--audit-log", log, "-v",
                 sys.executable, "-c", PTRACER_ANY, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == ["-1 1", "0 0"]          # EPERM; then allowed
    records = [json.loads(line) for line in log.read_text().splitlines()]
    denied = [r for r in records if r["action"] == "deny"]
    assert len(denied) == 1
    assert [r["action"] for r in records if r not in denied] == ["emulated"]   # the allowed one
    record = denied[0]
    assert (record["module"], record["hook"], record["syscall"], record["errno"],
            record["action"]) == ("no_ptracer_any", "task_prctl", "prctl", "EPERM", "deny")
    assert record["reason"] == "PR_SET_PTRACER_ANY would let any process attach"
    assert "no_ptracer_any: denied PR_SET_PTRACER ANY by" in r.stderr
    # its setting works like a bundled module's, from --set too
    r = yama_run("--profile", profile, "--set", "no_ptracer_any.allow=true",
                 sys.executable, "-c", PTRACER_ANY, env=env)
    assert r.stdout.split("\n")[:2] == ["0 0", "0 0"]
    listing = show(env, "--list-modules")
    assert "no_ptracer_any (yama-run-example 0.1.0)" in listing
    assert "no_ptracer_any.allow = false  (valid: false, true)" in listing


def test_unknown_module_lists_the_valid_ones_including_installed(env, tmp_path):
    env = entry_points(tmp_path, env, {"no_ptracer_any": "yama_run_example:NoPtracerAny"})
    r = yama_run("--set", "nosuch.x=1", "true", env=env)
    assert r.returncode == 125
    assert "unknown module 'nosuch'; valid modules: ptrace, hardlinks" in r.stderr
    assert "no_ptracer_any" in r.stderr


@pytest.mark.parametrize("target, message", [
    ("yama_run_example.nosuch:X", "failed to load: ModuleNotFoundError: No module named "
     "'yama_run_example.nosuch'"),
    ("yama_run_example:Nothing", "failed to load: AttributeError"),
    ("os:path", "is <module "),
    ("yama_run_example:NoPtracerAny", "calls itself 'no_ptracer_any'"),
])
def test_a_module_that_fails_to_load_is_a_clear_125(env, tmp_path, target, message):
    env = entry_points(tmp_path, env, {"broken": target})
    profile = write(tmp_path / "p.toml", 'chain = ["broken"]\n')
    r = yama_run("--profile", profile, "true", env=env)
    assert r.returncode == 125, r.stderr
    assert f"{profile}:1: chain: module 'broken' (entry point broken = {target} " \
           f"(group yama_run.modules))" in r.stderr
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_a_module_hooking_an_unrouted_point_is_refused(env, tmp_path):
    pkg = tmp_path / "mods"
    pkg.mkdir()
    (pkg / "odd_module.py").write_text(
        "from sandbox.modules import Module\n"
        "class Odd(Module):\n    name = 'odd'\n    def hooks(self):\n"
        "        return {'file_open'}\n")
    env = entry_points(tmp_path, env, {"odd": "odd_module:Odd"})
    env["PYTHONPATH"] = f"{pkg}{os.pathsep}{env['PYTHONPATH']}"
    r = yama_run("--profile", write(tmp_path / "p.toml", 'chain = ["odd"]\n'), "true", env=env)
    assert r.returncode == 125
    assert "module 'odd' hooks file_open, which yama-run does not route; valid hooks: " \
           in r.stderr


def test_a_bundled_name_cannot_be_taken_over_by_an_entry_point(env, tmp_path):
    env = entry_points(tmp_path, env, {"ptrace": "yama_run_example:NoPtracerAny"})
    r = yama_run("-v", "--set", "ptrace.scope=3", "true", env=env)
    assert r.returncode == 0 and "ptrace(scope=3)" in r.stderr


# -- what the bundled profiles enforce ------------------------------------------

def enforcement(stderr: str) -> dict[str, str]:
    """-v's per-module lines: module -> the rest of the line."""
    out = {}
    for line in stderr.splitlines():
        m = re.match(r"yama-run: (symlinks|fifos|regular|hardlinks): (.*)", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


@needs_path_modules
@requires_root
def test_browser_levels_are_enforced_by_yama_run_even_where_the_kernel_does(env, sysctl):
    """Explicit levels (firefox) are yama-run's own whatever the host says;
    "auto" (make) leaves them to a kernel that already enforces them."""
    for name, value in (("fs.protected_symlinks", 1), ("fs.protected_fifos", 2),
                        ("fs.protected_regular", 2), ("fs.protected_hardlinks", 1)):
        sysctl(name, value)
    firefox = enforcement(yama_run("-v", "--profile", "firefox", "true", env=env).stderr)
    assert {module: line.split(" (")[0] for module, line in firefox.items()} == {
        "hardlinks": "level 1 enforced by yama-run", "symlinks": "level 1 enforced by yama-run",
        "fifos": "level 2 enforced by yama-run", "regular": "level 2 enforced by yama-run"}
    make = enforcement(yama_run("-v", "make", "--version", env=env).stderr)
    assert make["symlinks"] == "level 1 enforced by the kernel (fs.protected_symlinks=1)"
    assert make["regular"] == "level 2 enforced by the kernel (fs.protected_regular=2)"


@needs_path_modules
@requires_root
def test_firefox_profile_refuses_a_planted_symlink_in_a_sticky_directory(env, tmp_path, sysctl):
    """With the kernel's own protection off, the firefox profile still refuses
    to follow another user's symlink in a sticky world-writable directory."""
    sysctl("fs.protected_symlinks", 0)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    tmp_path.chmod(0o755)
    secret = tmp_path / "secret"
    secret.write_text("mine\n")
    link = shared / "download.pdf"
    link.symlink_to(secret)
    os.lchown(link, 1001, 1001)
    assert subprocess.run(["cat", link], capture_output=True, text=True).stdout == "mine\n"
    log = tmp_path / "audit.jsonl"
    r = yama_run("--profile", "firefox", "--audit-log", log, "cat", link, env=env)
    assert r.returncode == 1 and "Permission denied" in r.stderr
    (record,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert (record["module"], record["hook"], record["errno"]) == ("symlinks", "follow_link",
                                                                  "EACCES")
    assert yama_run("--profile", "firefox", "--", "cat", secret, env=env).stdout == "mine\n"


@needs_path_modules
@pytest.mark.skipif(not (shutil.which("make") and shutil.which("cc")), reason="needs make and cc")
def test_make_builds_and_runs_a_program_under_its_profile(env, tmp_path):
    """The build-tool profile, found by name, leaves a compile (its
    temporaries kept beside the object), a link and a test run working, with
    nothing denied."""
    (tmp_path / "hello.c").write_text('#include <stdio.h>\nint main(void)'
                                      '{ puts("built"); return 0; }\n')
    (tmp_path / "Makefile").write_text("check: hello\n\t./hello > out.txt\n"
                                       "hello: hello.c\n\tcc -save-temps=obj -o hello hello.c\n")
    r = yama_run("-v", "--audit-log", tmp_path / "audit.jsonl", "make", "-C", tmp_path, env=env,
                 timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"profile make ({BUNDLED / 'make.toml'}, bundled; named make)" in profile_line(r.stderr)
    assert (tmp_path / "out.txt").read_text() == "built\n"
    assert (tmp_path / "audit.jsonl").read_text() == ""


@pytest.mark.parametrize("named", [None, "strict"])
def test_a_profile_directory_the_user_cannot_read_is_an_error_not_an_absence(
        as_user, named):  # noqa: F811
    """uid 1001 with a HOME it cannot search (another user's, as sudo may
    keep it): a profile there would have applied, so yama-run says which
    file it could not read and exits 125 instead of running the program
    under whatever it found elsewhere (before: a traceback, exit 1)."""
    where = Path(tempfile.mkdtemp(prefix="yama-run-home-"))
    try:
        where.chmod(0o755)
        home, out = where / "home", where / "out"
        (home / ".config").mkdir(parents=True)
        home.chmod(0o700)                   # root's: uid 1001 cannot search it
        out.mkdir()
        out.chmod(0o1777)
        args = ["--profile", named] if named else []
        r = as_user.run(*args, "--", "touch", out / "ran", env={"HOME": str(home)})
        assert r.returncode == 125, r.stderr
        assert f"cannot read {home}/.config/yama-run/profiles" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr and not (out / "ran").exists()
        r = as_user.run(*args, "--", "touch", out / "ran")      # its own HOME: it runs
        assert r.returncode == 0 and (out / "ran").exists(), r.stderr
    finally:
        shutil.rmtree(where, ignore_errors=True)


# -- profiles yama-run does not trust, and a profile's text ----------------------

def home_env(home: Path, **extra) -> dict:
    """An environment whose user profile directory is HOME's (no XDG_*)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env.update(HOME=str(home), **extra)
    return env


def plant(home: Path, uid: int = 1001, mode: int = 0o755) -> Path:
    """HOME/.config/yama-run/profiles of uid, holding a strict.toml and a
    default.toml that take every protection away (review 11-D, finding 1)."""
    profiles = home / ".config" / "yama-run" / "profiles"
    profiles.mkdir(parents=True)
    write(profiles / "strict.toml", 'chain = ["ptrace"]\n[ptrace]\nscope = 0\n')
    write(profiles / "default.toml", "chain = []\n")
    for path in (home, *profiles.parents[:3][::-1], profiles, *profiles.iterdir()):
        os.chown(path, uid, uid)
    profiles.chmod(mode)
    return profiles


@requires_root
def test_root_with_another_users_home_refuses_its_profiles(tmp_path):
    """root run with uid 1001's HOME (sudo -E, su -m): uid 1001's profiles
    would have made firefox (include = "strict") and every other program run
    without protections; yama-run refuses, naming the directory, and runs
    nothing (before: ptrace(scope=0) and an empty chain)."""
    profiles = plant(tmp_path / "h1001")
    ran = tmp_path / "ran"
    for args in (("--profile", "firefox"), ("--profile", "strict"), ()):
        r = yama_run("-v", *args, "touch", ran, env=home_env(tmp_path / "h1001"))
        assert r.returncode == 125, r.stderr
        assert f"{profiles} is not a directory of uid 0 or root that only its owner can " \
               f"write: not trusted" in r.stderr
        assert not ran.exists() and "Traceback" not in r.stderr
    r = yama_run("--list-profiles", env=home_env(tmp_path / "h1001"))
    assert r.returncode == 125 and "not trusted" in r.stderr


@requires_root
@pytest.mark.parametrize("case", ["group-writable directory", "another user's file"])
def test_profiles_another_user_may_write_are_refused(tmp_path, case):
    """root's own profile directory, but writable by a group of others (gid
    1234, no one's own), or holding a file of uid 1001 (which that uid may
    rewrite): refused, as plans are."""
    profiles = plant(tmp_path / "home", uid=0)
    if case == "group-writable directory":
        os.chown(profiles, 0, 1234)
        profiles.chmod(0o775)
        what = f"{profiles} is not a directory"
    else:
        os.chown(profiles / "strict.toml", 1001, 1001)
        what = f"{profiles / 'strict.toml'} is not a file"
    r = yama_run("--profile", "strict", "cat", "/proc/self/status",
                 env=home_env(tmp_path / "home"))
    assert r.returncode == 125 and f"{what} of uid 0 or root" in r.stderr, r.stderr
    profiles.chmod(0o755)
    os.chown(profiles, 0, 0)
    os.chown(profiles / "strict.toml", 0, 0)
    r = yama_run("-v", "--profile", "strict", "cat", "/proc/self/status",
                 env=home_env(tmp_path / "home"))
    assert r.returncode == 0 and seccomp_mode(r.stdout) == "2" and "ptrace(scope=0)" in r.stderr


@requires_root
def test_a_profile_directory_writable_by_its_owners_own_group_is_taken(tmp_path):
    """Where users have groups of their own, their umask is 002 and the
    directory they make is group-writable by that group alone: taken (root's
    and group root's here: root's primary group, listing no member), where
    every run of such a user ended 125."""
    import grp
    import pwd
    if pwd.getpwuid(0).pw_gid != 0 or grp.getgrgid(0).gr_mem:
        pytest.skip("group root here is not root's alone")
    profiles = plant(tmp_path / "home", uid=0)
    for path in (profiles, *profiles.iterdir()):
        path.chmod(0o775 if path.is_dir() else 0o664)
    r = yama_run("-v", "--profile", "strict", "cat", "/proc/self/status",
                 env=home_env(tmp_path / "home"))
    assert r.returncode == 0 and "ptrace(scope=0)" in r.stderr, r.stderr


def _acl_for_1002(path: Path) -> None:
    """What setfacl -m u:1002:rwx does (setfacl may not be installed): the
    access ACL's xattr, its mask the group bits the mode shows."""
    import struct
    mode = path.stat().st_mode
    entries = [(0x01, mode >> 6 & 7, -1), (0x02, 7, 1002), (0x04, mode >> 3 & 5, -1),
               (0x10, 7, -1), (0x20, mode & 7, -1)]
    os.setxattr(path, "system.posix_acl_access", struct.pack("<I", 2) + b"".join(
        struct.pack("<HHI", tag, perm, uid & 0xffffffff) for tag, perm, uid in entries))


GROUP_CASES = {
    "private": ("", ""),
    "another user's primary group": ("bob:x:1002:1001::/:/bin/sh\n", ""),
    "a second entry of the gid lists another": ("", "project:x:1001:bob\n"),
    "an ACL lets another write": ("", ""),
}


@requires_root
@pytest.mark.parametrize("case", GROUP_CASES)
def test_the_owners_group_others_can_write_through_is_not_private(as_user, case):  # noqa: F811
    """uid 1001's umask-002 profile directory and files, group 1001 (its
    primary group) writable: taken only where that group is uid 1001's alone.
    Another user of primary gid 1001 (openSUSE's users all have gid 100; here
    nobody, _apt and sync share 65534), a second group entry of gid 1001
    listing bob (initgroups grants it), or an ACL giving uid 1002 write (the
    group bits are then its mask) let another rewrite the profile: refused,
    125 (before: taken, ptrace scope 0; review 11-H, finding 1). The user
    database is a copy bind-mounted in a mount namespace of its own."""
    passwd_extra, group_extra = GROUP_CASES[case]
    root = Path(tempfile.mkdtemp(prefix="yama-run-group-"))
    try:
        root.chmod(0o755)
        passwd = write(root / "passwd", Path("/etc/passwd").read_text()
                       + "alice:x:1001:1001::/:/bin/sh\n" + passwd_extra)
        group = write(root / "group", Path("/etc/group").read_text() + "alice:x:1001:\n"
                      + group_extra)
        profiles = plant(root / "home")
        for path in (profiles, *profiles.iterdir()):
            path.chmod(0o775 if path.is_dir() else 0o664)
            if case == "an ACL lets another write":
                _acl_for_1002(path)
        script = 'mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && shift 2 ' \
                 '&& exec "$@"'
        r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                            str(passwd), str(group),
                            *as_user.command("-v", "--profile", "strict", "cat",
                                             "/proc/self/status")],
                           env=as_user.env({"HOME": str(root / "home")}), cwd=str(root),
                           capture_output=True, text=True, timeout=60)
        if case == "private":
            assert r.returncode == 0 and "ptrace(scope=0)" in r.stderr, r.stderr
        else:
            assert r.returncode == 125, r.stderr
            assert f"{profiles} is not a directory of uid 1001 or root that only its owner " \
                   "can write: not trusted" in r.stderr
    finally:
        shutil.rmtree(root, ignore_errors=True)


def hostile_cwd() -> Path:
    """A directory of uid 1002 that others run yama-run from, holding
    ~/.config/yama-run/profiles and rel/yama-run/profiles, each with an empty
    strict and default (review 11-D, finding 2)."""
    cwd = Path(tempfile.mkdtemp(prefix="yama-run-cwd-"))
    for profiles in (cwd / "~" / ".config" / "yama-run" / "profiles",
                     cwd / "rel" / "yama-run" / "profiles"):
        profiles.mkdir(parents=True)
        write(profiles / "strict.toml", "chain = []\n")
        write(profiles / "default.toml", "chain = []\n")
    subprocess.run(["chown", "-R", "1002:1002", str(cwd)], check=True)
    cwd.chmod(0o755)
    return cwd


@requires_root
def test_no_home_takes_no_profile_directory_from_the_cwd(as_user):  # noqa: F811
    """uid 1001 without HOME and without a passwd entry, run from uid 1002's
    directory: its ./~/.config/yama-run/profiles is nobody's profile
    directory; the bundled strict and default apply (before: both empty, no
    filter)."""
    cwd = hostile_cwd()
    try:
        env = {k: v for k, v in as_user.env().items() if k != "HOME"}
        for args, name in ((["--profile", "strict"], "strict"), ([], "default")):
            r = subprocess.run(as_user.command("-v", *args, "cat", "/proc/self/status"),
                               env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            assert f"profile {name} ({as_user.path}/profiles/{name}.toml, bundled" \
                in profile_line(r.stderr)
            assert seccomp_mode(r.stdout) == "2"
    finally:
        shutil.rmtree(cwd, ignore_errors=True)


@requires_root
def test_a_relative_xdg_config_home_is_ignored_and_no_plan_carries_it(as_user):  # noqa: F811
    """XDG_CONFIG_HOME=rel (relative: the XDG spec says to ignore it) from
    uid 1002's directory: the bundled strict, never ./rel/...; and the plan
    made there, used from / later, is the bundled strict's (before: the empty
    profile, kept and used from every cwd)."""
    cwd = hostile_cwd()
    try:
        for where in (cwd, "/", cwd):
            r = as_user.run("-v", "--profile", "strict", "cat", "/proc/self/status",
                            cwd=where, env={"XDG_CONFIG_HOME": "rel"})
            assert r.returncode == 0, r.stderr
            assert f"profile strict ({as_user.path}/profiles/strict.toml, bundled" \
                in r.stderr, r.stderr
            assert seccomp_mode(r.stdout) == "2"
    finally:
        shutil.rmtree(cwd, ignore_errors=True)


def test_show_profile_escapes_the_description(env):
    """A description holding a newline forged a `chain = [...]` line in the
    "usable as a profile" output; it is escaped, so the one chain line is
    the profile's own."""
    write(user_dir(env) / "firefox.toml",
          'description = "Firefox\\nchain = [\\"contain\\", \\"ptrace\\"]\\u202e"\n'
          'aliases = ["firefox-esr"]\nchain = []\n')
    shown = show(env, "--show-profile", "firefox")
    assert [line.split("#")[0].strip() for line in shown.splitlines()
            if line.startswith("chain")] == ["chain = []"]
    assert '# Firefox\\nchain = ["contain", "ptrace"]\\u202e\n' in shown
    assert "\u202e" not in shown


def test_list_profiles_and_profile_errors_escape_names_and_paths(env):
    """A planted file's name and aliases could rewrite the listing's line,
    and an include's path an error's; both are escaped."""
    write(user_dir(env) / "z\r.toml", 'aliases = ["x\\u202e"]\nchain = []\n')
    listing = show(env, "--list-profiles")
    assert "\r" not in listing and "\u202e" not in listing
    assert re.search(r"^z\\r\s+user\s+\S+/z\\r\.toml\s+x\\u202e$", listing, re.M), listing
    write(user_dir(env) / "default.toml", 'include = "\\ryama-run: ok.toml"\nchain = []\n')
    r = yama_run("true", env=env)
    assert r.returncode == 125 and "\r" not in r.stderr
    assert f"({user_dir(env)}/\\ryama-run: ok.toml)" in r.stderr


@pytest.mark.parametrize("profile, message", [
    ("x = " + "[" * 100000 + "]" * 100000 + "\n", "nested too deeply to be a profile"),
    (None, "larger than a profile (68719476736 bytes; at most 1048576): not read"),
])
def test_a_profile_too_deep_or_too_large_is_a_named_error(env, profile, message):
    """(before: RecursionError and MemoryError tracebacks, exit 1)"""
    path = user_dir(env) / "default.toml"
    if profile is None:
        with open(path, "wb") as f:
            f.truncate(64 << 30)                # sparse: never read
    else:
        write(path, profile)
    r = yama_run("true", env=env)
    assert r.returncode == 125, r.stderr
    assert f"{path}: {message}" in r.stderr and "Traceback" not in r.stderr


def test_an_include_chain_too_deep_is_a_named_error(tmp_path):
    """1,000 profiles, each including the next: a named error and 125, not a
    RecursionError traceback and 1 (a review); 64 files deep still load."""
    for i in range(1000):
        body = f'include = ["p{i + 1}.toml"]\n' if i < 999 else 'chain = ["ptrace"]\n'
        (tmp_path / f"p{i}.toml").write_text(body)
    r = yama_run("--profile", tmp_path / "p0.toml", "true")
    assert r.returncode == 125 and "includes nested deeper than 64 files" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    r = yama_run("--profile", tmp_path / "p936.toml", "true")
    assert r.returncode == 0, r.stderr
