"""fs.protected_fifos (fs/namei.c: may_create_in_sticky), per sandbox.

protected 1: open with O_CREAT of an existing FIFO in a sticky world-writable
             directory, owned neither by the caller's fsuid nor by the
             directory's owner: EACCES. Root is not exempt.
protected 2: also in sticky group-writable directories.
protected "auto": level 2 enforced here only while the kernel's own
             fs.protected_fifos is lower.
The rule reads only the request's facts: the core tabulates it for C."""
from __future__ import annotations

from .symlinks import Level, Protection
from .sticky import sticky_create_rule


class Fifos(Protection):
    name = "fifos"
    sysctl = "protected_fifos"
    strongest = 2
    kind = "FIFO"
    settings = {
        "protected": Level("auto", (0, 1, 2, "auto"), "fs.protected_fifos: 0 off, 1 sticky "
                           "world-writable dirs, 2 also group-writable, auto"),
    }
    tabulated = {"create_in_sticky"}

    def hooks(self) -> set[str]:
        return {"create_in_sticky"} if self.protected else set()

    def create_in_sticky(self, req):
        if not req.is_fifo:
            return None
        return sticky_create_rule(self.protected, req, self.kind)


MODULE = Fifos
