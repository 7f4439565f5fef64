"""A warm interpreter: one env's Python with Prefect's engine imported, forking flow runs.

A cold run pays an interpreter start and `import prefect` (2-3 s here) before the engine reads
its run. This process pays them once per env: `sunbeam-run` (warm.py) starts it with the env's
interpreter and, for each later run on that env, asks it over a Unix socket to fork the run's
process, which then runs the same engine program the cold path execs (`_engine_main.py`).

Not imported by the agent: the env's interpreter runs this file by path through `python -c`
(never as a script, whose folder would put the agent's modules on its sys.path), so it may
only use the standard library and that env's `prefect` (any 3.x), through public names.
Arguments: SOCKET IDLE_SECONDS WATCH_PID AFTER_PID (0: none; else the cold start it was
started beside, whose end it waits for, at most 30 s, before importing) [LENDER_KEY]. The lease on the env (a shared flock that
keeps `gc` away) is an inherited open file, kept open for life.

Lent to another env: with LENDER_KEY (a digest of the base interpreter and the Prefect settings),
once ready it writes SOCKET.card: that key, its env and site-packages, and each file of
site-packages it has imported, with its device and inode. A launcher whose env has no warm
interpreter yet, and in which every one of those files is the same file (a sibling env sharing
uv's cache entries: a branch that added a package), asks this one to fork its run with a
"switch" to that env: the child puts the other env's site-packages on sys.path and takes its
prefix and executable before the program runs. The files already imported are the same bytes
either way; what is imported later comes from the other env.

One connection per run. The launcher sends b"R" + the length of a JSON body {"cwd", "env",
"program"} with its stdin, stdout and stderr attached (SCM_RIGHTS), then the body. We fork; the
child takes those descriptors, that directory and environment, and runs the program as
`__main__`. We answer {"pid"} and, when the child ends, {"status"} (its wait status). A launcher
that goes away first (killed) takes its run with it: the child is killed.

Its environment is the one the run's process would get, minus what differs between runs
(PREFECT__*, SUNBEAM_*, PYTHONPATH), which the launcher hashes into the socket's name: a run
whose Prefect settings differ never reaches an interpreter that imported Prefect under others.
It ends when idle for IDLE_SECONDS, when WATCH_PID (the worker) is gone, or on SIGTERM
(eviction), in each case once no child of it is running.
"""

import builtins
import contextlib
import fcntl
import importlib
import json
import os
import select
import selectors
import signal
import socket
import struct
import sys
import time
import types

_CHECK_SECONDS = 2.0
_AFTER_AT_MOST = 30.0
_REQUEST_TIMEOUT = 10.0
_HEADER = struct.Struct("!cI")
_PR_SET_PDEATHSIG = 1
_STATE_BYTES = 64  # the lock file's record: "PID STATE", space-padded (warm.py reads 64 bytes)


def _own_lock(address, state):
    """The address's lock, held for life; None if another interpreter holds it."""
    fd = os.open(address + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    _state(fd, state)
    return fd


def _state(fd, state):
    """Tell launchers what we are doing (warm.py reads it): "waiting", "importing", "ready".
    One write of the whole record, padded, never a truncate first: a reader between the two
    would find no pid and take us for gone."""
    record = f"{os.getpid()} {state}".encode()[:_STATE_BYTES].ljust(_STATE_BYTES)
    os.pwrite(fd, record, 0)


def _after(pid, at_most):
    """Wait until process `pid` (the cold start this interpreter was started beside) has ended,
    or for `at_most` seconds: two imports of Prefect at once on a small host take each of them
    twice as long, and that one is a run starting."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:  # gone already
        return
    try:
        select.select([pidfd], [], [], at_most)
    finally:
        os.close(pidfd)


def _listen(address):
    """Bind beside the address, then rename onto it: a client never meets a half-made socket."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    temporary = f"{address}.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary)
    listener.bind(temporary)
    listener.listen(16)
    os.rename(temporary, address)
    return listener


def _receive(conn):
    """One request: (its JSON, the three descriptors) or None if malformed."""
    conn.settimeout(_REQUEST_TIMEOUT)
    head, fds, _flags, _addr = socket.recv_fds(conn, _HEADER.size, 3)
    if len(head) != _HEADER.size or len(fds) != 3:
        for fd in fds:
            os.close(fd)
        return None
    kind, size = _HEADER.unpack(head)
    body = b""
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            break
        body += chunk
    if kind != b"R" or len(body) != size:
        for fd in fds:
            os.close(fd)
        return None
    conn.settimeout(None)
    return json.loads(body), fds


def _site_packages():
    """This env's one site-packages folder on sys.path, or None (then it is never lent)."""
    found = [p for p in sys.path if p.startswith(sys.prefix + os.sep) and p.endswith("-packages")]
    return found[0] if len(found) == 1 else None


def _write_card(address, key, site):
    """SOCKET.card (see the module's docstring), written whole: a reader never meets half."""
    files = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and path.startswith(site + os.sep):
            with contextlib.suppress(OSError):
                st = os.stat(path)
                files[path[len(site) + 1 :]] = [st.st_dev, st.st_ino, st.st_size]
    names = os.listdir(site)
    card = {
        "key": key,
        "prefix": sys.prefix,
        "site": site,
        "files": files,
        "pth": {n: _text(os.path.join(site, n)) for n in names if n.endswith(".pth")},
        "dists": sorted(n for n in names if n.endswith(".dist-info")),
    }
    temporary = f"{address}.card.{os.getpid()}"
    with open(temporary, "w") as out:
        json.dump(card, out)
    os.rename(temporary, address + ".card")


def _text(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def _send(conn, message):
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps(message).encode() + b"\n")


class Server:
    def __init__(self, listener, lock, address, idle, watch, site):
        self.listener = listener
        self.site = site  # this env's site-packages, when it may be lent
        self.lock = lock
        self.address = address
        self.inode = os.stat(address).st_ino
        self.idle = idle
        self.watch = watch
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ, ("accept", None))
        self.children = {}  # pid -> (conn, pidfd)
        self.last_used = time.monotonic()
        self.stopping = False

    def serve(self):
        """Serve until done; in a forked child, return what the child must run."""
        signal.signal(signal.SIGTERM, self._stop)
        while not (self.stopping and not self.children):
            for key, _events in self.selector.select(_CHECK_SECONDS):
                kind, pid = key.data
                if kind == "accept":
                    child = self._accept()
                    if child is not None:
                        return child
                elif kind == "exit":
                    self._reap(pid)
                elif kind == "conn":
                    self._launcher_gone(pid)
            self._check()
        return None

    def _stop(self, _signum, _frame):
        self.stopping = True

    def _check(self):
        alive = True
        try:
            os.kill(self.watch, 0)
        except ProcessLookupError:
            alive = False
        except PermissionError:
            pass
        idle = not self.children and time.monotonic() - self.last_used > self.idle
        if (idle or not alive or self.stopping) and self.listener is not None:
            self.stopping = True
            self._close_listener()

    def _close_listener(self):
        self.selector.unregister(self.listener)
        self.listener.close()
        self.listener = None
        with contextlib.suppress(OSError):
            if os.stat(self.address).st_ino == self.inode:  # not a successor's socket
                os.unlink(self.address)
                os.unlink(self.address + ".card")

    def _accept(self):
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return None
        try:
            request = _receive(conn)
        except (OSError, ValueError):
            request = None
        if request is None:
            conn.close()
            return None
        message, fds = request
        self.last_used = time.monotonic()
        with contextlib.suppress(OSError):
            os.utime(self.address + ".lock")  # the least recently used is evicted first
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        pid = os.fork()
        if pid == 0:
            self._leave(conn)
            return message, fds, self.site
        for fd in fds:  # the launcher's pipes must end when its run does, not with us
            os.close(fd)
        pidfd = os.pidfd_open(pid)
        self.children[pid] = (conn, pidfd)
        self.selector.register(pidfd, selectors.EVENT_READ, ("exit", pid))
        self.selector.register(conn, selectors.EVENT_READ, ("conn", pid))
        _send(conn, {"pid": pid})
        return None

    def _leave(self, conn):
        """In the child: drop everything of the server's."""
        self.selector.close()
        os.close(self.lock)  # a process the flow forks must not keep this address taken
        if self.listener is not None:
            self.listener.close()
        for other, pidfd in self.children.values():
            other.close()
            os.close(pidfd)
        conn.close()

    def _reap(self, pid):
        conn, pidfd = self.children.pop(pid)
        self.selector.unregister(pidfd)
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        if conn is not None:
            self.selector.unregister(conn)
            _send(conn, {"status": status})
            conn.close()
        self.last_used = time.monotonic()

    def _launcher_gone(self, pid):
        conn, pidfd = self.children[pid]
        self.selector.unregister(conn)
        conn.close()
        self.children[pid] = (None, pidfd)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _die_with_parent():
    """The child dies if we do (killed): its launcher is told nothing, so nothing must run."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _switch(switch, own_site, base_path):
    """Become a process of the env `switch` names (a lent run): its site-packages where ours
    was on sys.path, its prefix and executable, and the standard library's caches of them."""
    new_site = switch["site"]

    def move(path):
        inside = path == own_site or path.startswith(own_site + os.sep)
        return new_site + path[len(own_site) :] if inside else path

    moved = [move(p) for p in base_path]
    # What was imported is the same files here: its modules say so, and a package's submodules
    # (some installed by another distribution, into this env only) come from this env.
    for module in list(sys.modules.values()):
        where = getattr(module, "__file__", None)
        if isinstance(where, str):
            with contextlib.suppress(AttributeError, TypeError):
                module.__file__ = move(where)
        search = getattr(module, "__path__", None)
        if isinstance(search, list):
            search[:] = [move(p) if isinstance(p, str) else p for p in search]
    sys.prefix = sys.exec_prefix = switch["prefix"]
    sys.executable = switch["executable"]
    # Best effort: a standard library that changed these names still runs the flow.
    with contextlib.suppress(Exception):
        sys.modules["site"].PREFIXES[:] = [sys.prefix, sys.exec_prefix]
    with contextlib.suppress(Exception):  # its paths were computed from the prefix at import
        importlib.reload(sys.modules["sysconfig"])
    with contextlib.suppress(Exception):  # spawned children start the executable it kept
        sys.modules["multiprocessing"].set_executable(sys.executable)
    return moved


def _become(message, fds, own_site, base_path):
    """The forked child becomes the run's process, as if started cold by the launcher."""
    _die_with_parent()
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    # The stop signals as the launcher hands them to a cold start; the rest as inherited.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if message.get("switch") and own_site:
        base_path = _switch(message["switch"], own_site, base_path)
    os.chdir(message["cwd"])
    os.environ.clear()
    os.environ.update(message["env"])
    extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[:] = ["", *extra, *base_path]
    sys.path_importer_cache.clear()
    importlib.invalidate_caches()
    sys.argv = ["-c"]
    # The program runs prefect.engine as __main__ (runpy), which warns if it is imported already;
    # what it imports stays imported, which is the point.
    sys.modules.pop("prefect.engine", None)
    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = main
    return compile(message["program"], "<string>", "exec"), main.__dict__


def _start(argv):
    """Import, then listen; the server, or None when this one is not needed (its reason stays
    in the lock file's state for a look with `cat`; runs start cold meanwhile)."""
    address, idle, watch, after = argv[0], float(argv[1]), int(argv[2]), int(argv[3])
    key = argv[4] if len(argv) > 4 else ""
    os.chdir(os.path.dirname(address))  # nothing to import here: '' on sys.path finds nothing
    if not hasattr(os, "pidfd_open"):
        return None  # this Python cannot watch its children
    lock = _own_lock(address, "waiting" if after else "importing")
    if lock is None:
        return None  # another one has this address
    if after:
        _after(after, _AFTER_AT_MOST)
    _state(lock, "importing")
    try:
        import prefect
        import prefect.engine
        import prefect.flow_engine  # noqa: F401
    except BaseException as exc:  # a cold start shows the real error on its run
        _state(lock, f"failed {type(exc).__name__}")
        return None
    try:
        os.close(os.pidfd_open(os.getpid()))  # the kernel has pidfds (Linux 5.3)
        listener = _listen(address)
    except OSError as exc:
        _state(lock, f"failed {exc.strerror}")
        return None
    site = _site_packages() if key else None
    if site is not None:
        try:
            _write_card(address, key, site)
        except OSError:
            site = None  # not lent; it serves its own env all the same
    server = Server(listener, lock, address, idle, watch, site)
    _state(lock, "ready")
    return server


def main():
    server = _start(sys.argv[1:])
    return None if server is None else server.serve()


_child = main()
if _child is not None:  # a forked child: the run's program, at the top level, so that it
    # ends this process as it would end a cold one (its exit code, atexit, flushed streams)
    _message, _fds, _site = _child
    _code, _globals = _become(_message, _fds, _site, [p for p in sys.path if p != ""])
    del _child, _message, _fds, _site
    exec(_code, _globals)
