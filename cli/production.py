"""The production server behind `flask serve`: gunicorn workers for the API, the timer service once, beside them.

    flask serve --workers N --threads T     (the same as `gunicorn -w N --threads T 'app:create_app()'`
                                             plus one `flask timers run`, in one command)

Process tree, started by `run(...)` in the `flask serve` process after the
schema is upgraded, the processes deployed and the instance's clock installed:

    flask serve            (supervisor: the embedded timer service and outbox dispatcher, exactly once)
    └── gunicorn master    (its own process group; forks and re-forks the workers)
        ├── worker 1       (T threads, its own database pool)
        └── worker N

The workers are forked from the process that created the app, so they serve
the very app `flask serve` prepared, on the same clock (a demo's sped-up one
too). The database pool is disposed before any fork. The timer service runs
in the supervisor, never in a worker, so it runs once however many workers
there are; it starts only after the fork (no thread is ever forked).

Shutdown: SIGTERM or SIGINT (Ctrl-C) to `flask serve` sends SIGTERM to the
gunicorn master, which stops accepting connections and lets each worker
finish its requests in flight (up to `graceful_timeout` seconds); then the
timer service stops (its leases released) and `flask serve` exits with the
master's status. Ctrl-C reaches only the supervisor (gunicorn has its own
process group), so it too is a graceful stop. Should the master die, the
supervisor stops the timers and exits non-zero. Should the supervisor die
without a word (SIGKILL, the OOM killer), the master is sent SIGTERM by the
kernel (Linux's parent-death signal) and stops gracefully in turn, so no
orphaned API keeps the port and serves without a timer service; the master
then removes the metrics directory the supervisor made, as the supervisor
would have.

Garbage collection: just before the fork the supervisor's heap (the modules,
the app, the loaded definitions and organisation: some 230,000 objects that
live as long as the process) is moved to the collector's permanent generation
(`gc.freeze()`, as the Python documentation advises for a server that forks
its workers). A full collection in a worker then walks only what the worker
made itself: on this machine about 20-30 ms instead of 120-180 ms, a pause that
every thread of the worker waits through; and the frozen pages stay shared
with the supervisor instead of being copied when the collector touches them.

Metrics: before forking, PROMETHEUS_MULTIPROC_DIR is pointed at a new empty
directory (unless set; in /dev/shm where there is one, as the workers'
heartbeat files are: both are touched on every request or loop), where each
worker keeps its counters (api.ops); a worker that exits is marked dead
there, so `livesum` gauges drop it.
"""
from __future__ import annotations

import gc
import os
import shutil
import signal
import sys
import tempfile

import click


SHM = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None  # None: the default


def prepare_metrics_dir() -> str | None:
    """A fresh PROMETHEUS_MULTIPROC_DIR for this run, unless one is set; returns the one we made (to remove)."""
    if "prometheus_client" in sys.modules and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Too late to switch this process to multiprocess mode; the workers import nothing new.
        click.echo("note: prometheus_client was imported before serve; /metrics counts per worker", err=True)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
        os.makedirs(path, exist_ok=True)
        for name in os.listdir(path):  # counters of an earlier run would be summed with ours
            if name.endswith(".db"):
                os.unlink(os.path.join(path, name))
        return None
    # Every request writes its counters to these memory-mapped files: in memory, not on a disk-backed /tmp.
    path = tempfile.mkdtemp(prefix="dispute-metrics-", dir=SHM)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    click.echo(f"metrics: the workers' counters in {path} (removed at exit)", err=True)
    return path


def gunicorn_application(app, options: dict):
    from gunicorn.app.base import BaseApplication

    class Application(BaseApplication):
        def load_config(self):
            for key, value in options.items():
                if key in self.cfg.settings:
                    self.cfg.set(key, value)

        def load(self):
            return app

    return Application()


def _child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def options(app, host: str, port: int, workers: int, threads: int, graceful_timeout: int) -> dict:
    def post_fork(_server, _worker):
        from app import db

        with app.app_context():
            db.engine.dispose(close=False)  # the parent's connections (if any) are not this worker's

    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread" if threads > 1 else "sync",
        "graceful_timeout": graceful_timeout,
        "timeout": 120,
        "keepalive": 5,
        "post_fork": post_fork,
        "child_exit": _child_exit,
        "proc_name": "dispute-api",
        "control_socket_disable": True,  # one per user by default: two servers on a machine would share it
        # Each worker's heartbeat touches a file on every loop; on a disk-backed /tmp that can stall the
        # worker behind the disk's journal (gunicorn's FAQ, "Blocking OS calls"): keep it in memory.
        "worker_tmp_dir": SHM,
    }


def stop_with_parent(parent: int) -> None:
    """In a forked child: have the kernel send it SIGTERM when `parent` dies, however it dies (Linux only).

    prctl(PR_SET_PDEATHSIG) is Linux's; elsewhere this does nothing and a killed supervisor leaves the
    master running (stop it with its process group). Should the parent have died before the call took
    effect, SystemExit(1) at once.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0) != 0:
        click.echo(f"note: prctl(PR_SET_PDEATHSIG) failed (errno {ctypes.get_errno()}): the API server "
                   "will outlive a killed `flask serve`", err=True)
    if os.getppid() != parent:
        raise SystemExit(1)


def freeze_startup_heap() -> int:
    """Collect once, then move every object alive now to the permanent generation; returns how many.

    Called once the process has loaded all it keeps for its lifetime, before it forks or starts serving.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def run(app, opts: dict, start_timers) -> int:
    """Fork the gunicorn master, run `start_timers()` (a stop callable, or None) here; returns the exit status."""
    from app import db

    with app.app_context():
        db.engine.dispose()
    made = prepare_metrics_dir()
    sys.stdout.flush()
    sys.stderr.flush()
    supervisor = os.getpid()
    freeze_startup_heap()
    pid = os.fork()
    if pid == 0:  # the gunicorn master
        code = 0
        try:
            os.setpgid(0, 0)
            stop_with_parent(supervisor)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            gunicorn_application(app, opts).run()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        finally:
            if made and os.getppid() != supervisor:  # the supervisor died without a word: its cleanup is ours
                shutil.rmtree(made, ignore_errors=True)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def forward(signum, _frame):
        try:  # SIGHUP: gunicorn restarts its workers gracefully; anything else: a graceful stop
            os.kill(pid, signal.SIGHUP if signum == signal.SIGHUP else signal.SIGTERM)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    stop = None
    try:
        try:
            stop = start_timers()
        except BaseException:
            forward(signal.SIGTERM, None)
            os.waitpid(pid, 0)
            raise
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
    finally:
        if stop is not None:
            stop()
        if made:
            shutil.rmtree(made, ignore_errors=True)
    click.echo(f"API server stopped (status {code})", err=True)
    return code if code >= 0 else 128 - code
