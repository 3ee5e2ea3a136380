"""yama-run's Python part, run by bin/yama-run (csrc/launcher.c) as `python3 -IS
yama-run.py FD:PID:IGNORED NAME ARG...`. A script is compiled at every run, so this one
only finds the package; sandbox/entry.py, cached as bytecode, does the rest."""
import posix
import sys

prefix = sys.executable.rpartition("/")[0].rpartition("/")[0]
if not posix.access(prefix + "/pyvenv.cfg", posix.F_OK):
    prefix = sys.prefix                 # not a venv's (only `site` makes sys.prefix a venv's)
site_packages = "/python%d.%d/site-packages" % sys.version_info[:2]
packages = [path for path in dict.fromkeys((prefix + "/" + sys.platlibdir + site_packages,
                                            prefix + "/lib" + site_packages))
            if posix.access(path, posix.F_OK) and path not in sys.path]
sys.path += packages
try:
    from sandbox import entry
except ImportError:                     # pip install -e: found only through its own .pth
    for path in packages:
        for name in posix.listdir(path):
            if name.startswith("__editable__.yama_run-") and name.endswith(".pth"):
                for line in open(path + "/" + name, encoding="utf-8").read().splitlines():
                    if line.startswith("import"):
                        exec(line)      # its finder's install()
                    elif line:
                        sys.path.append(line)   # a directory (editable_mode=strict)
    from sandbox import entry
entry.main(packages)
