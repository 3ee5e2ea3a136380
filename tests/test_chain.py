"""The chain walk: order, first deny wins, permissive mode, a failing module
denies, and what the audit log records for each."""
from __future__ import annotations

import errno
import io
import json
import os

from sandbox.audit import Audit
from sandbox.chain import Chain, Deny
from sandbox.requests import Caller, PtraceAccess


class Recorder:
    def __init__(self, name, verdict, calls):
        self.name, self.verdict, self.calls = name, verdict, calls

    def hooks(self):
        return {"ptrace_access_check"}

    def ptrace_access_check(self, request):
        self.calls.append(self.name)
        if isinstance(self.verdict, Exception):
            raise self.verdict
        return self.verdict


def _request():
    me = os.getpid()
    return PtraceAccess(Caller(me, me, 0), "ptrace", "PTRACE_ATTACH", me, me)


def _chain(tmp_path, verdicts, permissive=False):
    calls, stream = [], io.StringIO()
    log = tmp_path / "audit.jsonl"
    audit = Audit(str(log), verbose=True, stream=stream)
    modules = [Recorder(f"m{i}", v, calls) for i, v in enumerate(verdicts)]
    return Chain(modules, audit, permissive), calls, log, stream, audit


def _records(log):
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_first_deny_wins_and_is_attributed(tmp_path):
    chain, calls, log, stream, audit = _chain(
        tmp_path, [None, Deny(errno.EPERM, "first"), Deny(errno.EACCES, "second")])
    verdict = chain.walk("ptrace_access_check", _request())
    audit.close()
    assert verdict == Deny(errno.EPERM, "first")
    assert calls == ["m0", "m1"]                      # m2 never asked
    [record] = _records(log)
    assert record["module"] == "m1" and record["errno"] == "EPERM"
    assert record["action"] == "deny" and record["reason"] == "first"
    assert "yama-run: m1: denied PTRACE_ATTACH of" in stream.getvalue()


def test_permissive_asks_everyone_records_all_and_allows(tmp_path):
    chain, calls, log, stream, audit = _chain(
        tmp_path, [Deny(errno.EPERM, "a"), None, Deny(errno.EACCES, "b")], permissive=True)
    assert chain.walk("ptrace_access_check", _request()) is None
    audit.close()
    assert calls == ["m0", "m1", "m2"]
    records = _records(log)
    assert [(r["module"], r["action"], r["errno"]) for r in records] == [
        ("m0", "would-deny", "EPERM"), ("m2", "would-deny", "EACCES")]
    assert "would deny" in stream.getvalue()


def test_a_module_that_raises_denies_with_its_traceback(tmp_path):
    chain, calls, log, stream, audit = _chain(tmp_path, [RuntimeError("boom"), None])
    verdict = chain.walk("ptrace_access_check", _request())
    audit.close()
    assert verdict.errno == errno.EPERM and "boom" in verdict.reason
    assert calls == ["m0"]
    records = _records(log)
    assert records[0]["action"] == "module-error" and "RuntimeError: boom" in records[0]["traceback"]
    assert records[1]["action"] == "deny" and records[1]["module"] == "m0"
    # -v: one line naming the error; the traceback only in the log
    assert "RuntimeError: boom" in stream.getvalue() and "Traceback" not in stream.getvalue()


def test_a_module_returning_nonsense_denies(tmp_path):
    chain, _, _, _, audit = _chain(tmp_path, [True])
    verdict = chain.walk("ptrace_access_check", _request())
    audit.close()
    assert verdict is not None and verdict.errno == errno.EPERM


def test_unhooked_requests_pass(tmp_path):
    chain, calls, _, _, audit = _chain(tmp_path, [Deny(errno.EPERM, "x")])
    assert chain.walk("path_link", _request()) is None
    audit.close()
    assert calls == []
