"""A job-control shell in miniature, run as the session leader of a pty (tests/
test_job_control.py): it starts COMMAND as a foreground job in a process group of its
own and waits for it with WUNTRACED, as bash does, then, by MODE:

  fg      once the job has stopped, takes the terminal back, gives it to the job
          again and continues it with SIGCONT to the job's process (`fg`); prints
          "exit N" when it exits
  hangup  once the job has stopped, takes the terminal back and exits, as a shell
          killed with its window: the job's process group is orphaned then
  kill    once the job has stopped, SIGKILLs the program (the job's process's
          grandchild) and waits for the job to end, without continuing it;
          prints "exit N" (or "still stopped" after 10 s)

It prints "stopped SIG" (or "never stopped" after 10 s) and, in hangup mode,
"pids FRONT SUPERVISOR PROGRAM" (the job's process, its child, the child's)."""
import os
import signal
import sys
import time

TTY = 0


def start(argv: list[str]) -> int:
    pid = os.fork()
    if pid == 0:
        os.setpgid(0, 0)
        os.tcsetpgrp(TTY, os.getpid())
        signal.signal(signal.SIGTTOU, signal.SIG_DFL)
        os.execvp(argv[0], argv)
    try:
        os.setpgid(pid, pid)
        os.tcsetpgrp(TTY, pid)
    except OSError:
        pass                    # the child did it first (and may have exec'd)
    return pid


def wait_stopped(job: int) -> int:
    """The stop signal, 0 if the job was not seen stopped within 10 s."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pid, status = os.waitpid(job, os.WUNTRACED | os.WNOHANG)
        if pid and os.WIFSTOPPED(status):
            return os.WSTOPSIG(status)
        if pid:
            print(f"exited early {os.waitstatus_to_exitcode(status)}", flush=True)
            os._exit(1)
        time.sleep(0.02)
    return 0


def children(pid: int) -> list[int]:
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            found += map(int, f.read().split())
    return found


def main() -> None:
    mode, argv = sys.argv[1], sys.argv[2:]
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)   # as a shell: it moves the terminal
    job = start(argv)
    sig = wait_stopped(job)
    print(f"stopped {sig}" if sig else "never stopped", flush=True)
    supervisor = children(job)[0]
    if mode == "hangup":
        print(f"pids {job} {supervisor} {children(supervisor)[0]}", flush=True)
    os.tcsetpgrp(TTY, os.getpgrp())
    if mode == "hangup":
        os._exit(0)
    if mode == "kill" and sig:
        os.kill(children(supervisor)[0], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            pid, status = os.waitpid(job, os.WNOHANG)
            if pid:
                print(f"exit {os.waitstatus_to_exitcode(status)}", flush=True)
                return
            time.sleep(0.02)
        print("still stopped", flush=True)
    if not sig:
        os.kill(job, signal.SIGKILL)    # the supervisor kills the program then
    else:
        os.tcsetpgrp(TTY, job)
        os.kill(job, signal.SIGCONT)
    _, status = os.waitpid(job, 0)
    os.tcsetpgrp(TTY, os.getpgrp())
    print(f"exit {os.waitstatus_to_exitcode(status)}", flush=True)


main()
