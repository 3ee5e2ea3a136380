"""yama-run: Yama ptrace_scope and fs.protected_* per application, in user space."""

__version__ = "0.1.0"
