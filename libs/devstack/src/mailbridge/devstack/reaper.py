"""Server supervision for the mail stack: each server runs under a tiny supervisor process.

The supervisor (``supervise_main``) is a child subreaper: it reaps every process the server leaves
behind (Postfix's master does not reap its workers, and PID 1 here reaps orphans only slowly), and
it shuts the server down when its stdin closes, which happens when ``Server.request_stop`` is called
or when the owning Python process dies.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path
from types import FrameType

log = logging.getLogger(__name__)

_GRACE = 10.0
_POLL = 0.05
_PR_SET_CHILD_SUBREAPER = 36
_PROBLEM = re.compile(r"\b(?:warning|error|fatal|panic)\b", re.IGNORECASE)
_REPORT_LINES = 25
_SUPERVISOR = "from mailbridge.devstack.reaper import supervise_main; supervise_main()"


class Server:
    """One server process tree, run under its supervisor."""

    def __init__(self, argv: list[str], *, output: Path, log_file: Path, cwd: Path) -> None:
        self._files = (log_file, output)
        self._offsets = {path: _size(path) for path in self._files}
        with output.open("ab") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _SUPERVISOR, *argv],
                stdin=subprocess.PIPE,
                stdout=sink,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                start_new_session=True,
            )

    def running(self) -> bool:
        return self.process.poll() is None

    def process_ids(self) -> set[int]:
        if not self.running():
            return set()
        return {self.process.pid, *descendants(self.process.pid)}

    def report(self) -> str:
        """What the server logged since it was launched: problems first, then the tail."""
        parts = []
        for path in self._files:
            lines = _read_from(path, self._offsets[path]).replace("\r\n", "\n").splitlines()
            tail = lines[-_REPORT_LINES:]
            earlier = dict.fromkeys(
                line for line in lines[: -len(tail) or None] if _PROBLEM.search(line)
            )
            problems = [line for line in earlier if line not in tail][:_REPORT_LINES]
            shown = [*problems, "...", *tail] if problems else tail
            parts.append(f"--- {path} ---\n" + ("\n".join(shown) if shown else "(empty)"))
        return "\n".join(parts)

    def request_stop(self) -> None:
        """Close the supervisor's stdin: it stops the server and reaps everything."""
        if self.process.stdin is not None:
            with suppress(OSError):
                self.process.stdin.close()

    def wait(self, timeout: float) -> None:
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("supervisor %d did not finish; killing its tree", self.process.pid)
            for pid in descendants(self.process.pid):
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.process.kill()
            self.process.wait()


def descendants(root: int) -> set[int]:
    """Process ids of all live descendants of ``root``, from /proc."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _group, _state) in _process_table().items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    pending = [root]
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


def _process_table() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, process group, state letter) for every process."""
    table: dict[int, tuple[int, int, str]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        state, ppid, pgrp = raw[raw.rindex(")") + 2 :].split()[:3]
        table[int(entry.name)] = (int(ppid), int(pgrp), state)
    return table


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _read_from(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


# --- supervisor process ----------------------------------------------------------------


def supervise_main() -> None:
    """Run ``sys.argv[1:]`` as a server, reap all its processes, stop it on stdin EOF.

    Started by ``_Server`` in a session of its own. Exits once no process of the
    server is left, with the server command's exit status when it failed.
    """
    logging.basicConfig(level=logging.INFO, format="supervisor[%(process)d] %(message)s")
    _become_subreaper()
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    argv = sys.argv[1:]
    leader = os.posix_spawn(
        argv[0], argv, os.environ, file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull, 0, 0)]
    )
    status = _supervise(leader, stopping)
    _terminate_children()
    sys.exit(status)


def _become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def _supervise(leader: int, stopping: threading.Event) -> int:
    """Reap until stop is requested or nothing is left; the leader's failure status."""
    status = 0
    while not stopping.is_set():
        reaped, left = _reap()
        for pid, code in reaped:
            if pid == leader and code != 0:
                log.error("%s exited with status %d", sys.argv[1], code)
                status = code
        if not left:
            return status
        if _owner_gone(_POLL * 4):
            log.info("stop requested")
            break
    return status


def _owner_gone(timeout: float) -> bool:
    """True once our stdin is at EOF: the owner closed it or exited."""
    readable, _, _ = select.select([0], [], [], timeout)
    return bool(readable) and os.read(0, 4096) == b""


def _reap() -> tuple[list[tuple[int, int]], bool]:
    """Reap exited children: ((pid, exit code) list, whether any child is left)."""
    reaped: list[tuple[int, int]] = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped, False
        if pid == 0:
            return reaped, True
        reaped.append((pid, os.waitstatus_to_exitcode(status)))


def _terminate_children() -> None:
    """SIGTERM the server's processes, SIGKILL whatever is left after the grace time.

    Targets are our process group (Dovecot and all its workers: signalling them
    together spares Dovecot's one-second shutdown wait) and our children, which
    include the Postfix master (a session of its own) and every adopted orphan.
    """
    deadline = time.monotonic() + _GRACE
    signalled: set[int] = set()
    me, group = os.getpid(), os.getpgrp()
    while _reap()[1]:
        force = time.monotonic() > deadline
        for pid, (ppid, pgrp, state) in _process_table().items():
            ours = ppid == me or (pgrp == group and pid != me)
            if not ours or state == "Z" or (pid in signalled and not force):
                continue
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL if force else signal.SIGTERM)
            signalled.add(pid)
        time.sleep(0.02)
