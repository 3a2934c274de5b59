"""Each trial in its own process, so a study's memory does not grow from trial to trial.

Why: on the TensorFlow backend every trial's traced graphs (Keras' train/predict functions, one
``cond`` branch pair per optimizer slot, ~390 FuncGraphs for an EfficientNet) stay alive in
TensorFlow's C++ runtime after ``keras.backend.clear_session()``: +108 MiB a trial, measured over
20 trials (bench/README.md, "Memory across trials"; tensorflow/tensorflow#61791). No Python-side
release frees them; a process that exits does.

How: :class:`TrialRunner` runs each trial in a fresh child process. The children are forked
from a fork server (``multiprocessing``'s "forkserver") that imported TensorFlow, Keras and
this package once and never runs a TensorFlow op itself, so a child starts in milliseconds with
a clean runtime (``KC_TRIAL_START=spawn`` starts each from scratch instead: ~10 s of imports a
trial). The child loads the dataset itself (same arguments, same seed, so the same examples),
builds the model, trains it with :func:`runner.train_trial`, saves the trained model and sends
back the metrics; the parent writes the row. One spare child is started ahead ("prefork") so
that its data loading overlaps the running trial. Where the study knows its next trial (it
returns it from ``meanwhile``), the spare also builds and compiles that model while the current
trial trains, and starts training the moment the current one is measured, while that one saves
its model (:class:`_Handoff`; on a CPU only: ``ahead``). Same numbers as in one process: the tests
compare the losses of an isolated and an in-process study. ``study search`` uses the same
runner with its own ``work`` (``keras_convnets.tuning.search_task``: keras-tuner's build, fit
and checkpoint of one trial) and ``setup`` (its data and hypermodel); the oracle stays in the
parent.

Failure semantics: a child that dies (killed, out of memory, a crash in C++) is a failed trial
with its exit code, and the study goes on. Ctrl-C reaches the parent (the children ignore SIGINT),
which stops the children and lets the study end as an interrupted one (finished rows kept). A
killed parent takes its children with it (``PR_SET_PDEATHSIG`` on Linux), so no orphan goes on
training.

``isolate=False`` runs the trials in this process (the old behaviour: faster to start, memory
grows on TensorFlow); tests of the study logic use it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import multiprocessing
import os
import signal
import sys
import time
from typing import Any, Callable

__all__ = ["TrialRunner", "rss_mb", "peak_rss_mb", "user_specs", "start_server", "stop_server"]

# Where a child's start is quieter: TensorFlow's C++ start-up banners once per trial are noise.
_CHILD_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3"}


def rss_mb() -> float | None:
    """This process's resident memory now (Linux), in MiB."""
    try:
        with open("/proc/self/statm") as f:
            return round(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return None


def peak_rss_mb() -> float | None:
    """This process's peak resident memory so far, in MiB."""
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)
    except (ImportError, OSError):
        return None


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies (a killed study leaves no orphan)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


def run_task(task: dict, dataset) -> dict:
    """One ``study scale`` trial: build the registered model, train and evaluate it
    (``runner.train_trial``)."""
    from keras_convnets.study import runner

    recipe = runner.Recipe(**task["recipe"])
    build_kwargs = task["build"]

    def build():
        return runner.build_registered(**build_kwargs)

    handoff = _HANDOFF or _Handoff(None, ahead=False)
    started = time.perf_counter()
    metrics = runner.train_trial(build, dataset, recipe, save_path=task.get("save_path"),
                                 before_fit=handoff.before_fit, measured=handoff.measured)
    # The trial's own work: waiting for the trial before it to be measured is not part of it.
    metrics["trial_seconds"] = round(time.perf_counter() - started - handoff.waited, 3)
    metrics["prepared_ahead"] = handoff.ahead  # built while the trial before it trained
    metrics["handoff_wait_seconds"] = round(handoff.waited, 3)
    metrics.update({k: round(v, 3) for k, v in handoff.times.items()})
    metrics.update(memory_mb=rss_mb(), peak_memory_mb=peak_rss_mb(), trial_pid=os.getpid())
    return metrics


def load_data(dataset_kwargs: dict):
    """The default ``setup`` of a trial process: the study's dataset, loaded with the parent's
    arguments (same seed, so the same examples)."""
    from keras_convnets import data

    return data.load_dataset(**dataset_kwargs)


def _register(specs) -> None:
    """Models the parent registered beyond the built-in ones (a user's own builder, a test's toy
    family): a trial process imports only this package, so they are registered again here."""
    from keras_convnets import registry

    for spec in specs:
        if spec.name not in registry.list_models():
            registry.register(**{f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)})


class _Handoff:
    """A trial process's side of the handoff between consecutive trials.

    A task comes as ``("run", task)``: train now. Or, while the trial before it still trains in
    its own process, as ``("prepare", task)``: build and compile the model (single-threaded Python,
    which runs beside the other trial's graph tracing on a second core), then wait for ``go``,
    which the study sends the moment the trial before is measured, so that this one trains
    while that one saves its model. Two trials never train at once. ``measured`` tells
    the study this trial has its figures and the next may start."""

    def __init__(self, conn, ahead: bool):
        self.conn, self.ahead, self.waited = conn, ahead, 0.0
        self.times: dict[str, float] = {}  # the trial's timeline (Unix time), for the study's rows

    def before_fit(self) -> None:
        """Called once a task, when its model is ready to train."""
        self.times["prepared_at"] = time.time()
        if self.ahead:
            started = time.perf_counter()
            try:
                go = self.conn.recv()
            except EOFError:
                go = None
            self.waited = time.perf_counter() - started
            if go != "go":  # the study ended (or dropped this trial) while it waited
                raise SystemExit(0)
        self.times["fit_started_at"] = time.time()

    def measured(self) -> None:
        self.times["measured_at"] = time.time()
        if self.conn is not None:
            self.conn.send(("measured", None))


_HANDOFF: _Handoff | None = None  # the trial process's, while its task runs


def _child_main(conn, setup: Callable[[], Any], work: Callable[[dict, Any], dict], specs=()) -> None:
    """A trial process: make the trials' context (the data), wait for one task, run it, send the
    metrics."""
    global _HANDOFF
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if os.getppid() == 1:  # the parent died before PDEATHSIG was armed
        return
    try:
        _register(specs)
        context = setup()
    except Exception as e:  # noqa: BLE001 - reported to the parent as the trial's error
        conn.send(("error", f"setting up the trial process (its data) failed: {type(e).__name__}: {e}"))
        return
    conn.send(("ready", None))
    try:
        message = conn.recv()
    except EOFError:  # the parent closed the spare: nothing to do
        return
    if message is None:
        return
    mode, task = message
    _HANDOFF = _Handoff(conn, ahead=mode == "prepare")
    if work is not run_task:  # another work function has no hooks: it waits for its turn whole
        _HANDOFF.before_fit()
    conn.send(("done", work(task, context)))


# What a trial process imports before its first line of work: a fork server preloads them once,
# so each trial's process starts in milliseconds instead of ~10 s of imports.
PRELOAD = ["tensorflow", "keras", "keras_convnets.models", "keras_convnets.data", "keras_convnets.study.runner",
           "keras_convnets.flops"]


def _context(preload: tuple[str, ...] = ()):
    method = os.environ.get("KC_TRIAL_START", "forkserver")
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        from keras_convnets.data import keras_backend

        ctx.set_forkserver_preload([m for m in [*PRELOAD, *preload]
                                    if m != "tensorflow" or keras_backend() == "tensorflow"])
    return ctx


def start_server(preload: tuple[str, ...] = ()) -> None:
    """Start the trials' fork server now, before this process imports TensorFlow: its own imports
    (~8 s) then run beside this process's (~10 s) instead of after them, at the first trial. A
    no-op unless trials start from a fork server (``KC_TRIAL_START``)."""
    if os.environ.get("KC_TRIAL_START", "forkserver") != "forkserver":
        return
    _context(preload)
    from multiprocessing import forkserver

    with _child_env():
        forkserver.ensure_running()


def user_specs() -> tuple:
    """The registry's entries whose builders live outside this package (registered by the user's
    code in this process); a trial process registers them again (see :func:`_register`)."""
    import pickle

    from keras_convnets import registry
    from keras_convnets.study import StudyError

    specs = []
    for name in registry.list_models():
        spec = registry.get(name)
        if not spec.builder.__module__.startswith("keras_convnets."):
            try:
                pickle.dumps(spec)
            except Exception as e:  # noqa: BLE001 - say which model and why, at the study's start
                raise StudyError(f"model {name!r} is registered here but cannot reach a trial process "
                                 f"({type(e).__name__}: {e}); register a module-level builder, or run the "
                                 "trials in this process (--in-process)") from None
            specs.append(spec)
    return tuple(specs)


@contextlib.contextmanager
def _child_env():
    """:data:`_CHILD_ENV` (where the user has not set them) while a trial process or the fork
    server, which passes its environment on, is started."""
    saved = {k: os.environ.get(k) for k in _CHILD_ENV}
    os.environ.update({k: v for k, v in _CHILD_ENV.items() if saved[k] is None})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)


def stop_server() -> None:
    """Stop the fork server now, when a command ends in an error: started early, it would
    otherwise finish its imports (~10 s) and print TensorFlow's start-up lines after the error
    message. Uses multiprocessing's private server handle; a no-op where it is not there."""
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    pid = getattr(server, "_forkserver_pid", None)
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGKILL)
        server._stop()  # closes its pipe, reaps it, forgets it: the next start_server starts afresh
    except (OSError, AttributeError):
        pass


class _Child:
    def __init__(self, ctx, args: tuple):
        self.conn, child_conn = ctx.Pipe()
        with _child_env():
            self.proc = ctx.Process(target=_child_main, args=(child_conn, *args),
                                    daemon=True, name="keras_convnets-trial")
            self.proc.start()
        child_conn.close()
        self.started = time.perf_counter()
        self.ready = False  # it has made its context (the data) and waits for its task
        self.task: dict | None = None  # the task it was given
        self.released = False  # it may train (its task came as "run", or "go" followed "prepare")

    def send(self, message) -> None:
        try:
            self.conn.send(message)  # buffered by the pipe while the child is still importing
        except OSError:  # it died already (BrokenPipeError): waiting for it reports its exit code
            pass

    def give(self, task: dict, *, ahead: bool) -> None:
        """Its task: to train now, or (``ahead``) to prepare and train when released."""
        self.task, self.released = task, not ahead
        self.send(("prepare" if ahead else "run", task))

    def release(self) -> None:
        if self.task is not None and not self.released:
            self.released = True
            self.send("go")

    def stop(self) -> None:
        try:
            self.conn.close()
        except OSError:
            pass
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)
            if self.proc.is_alive():
                self.proc.kill()
        self.proc.join(1)


class TrialRunner:
    """Runs trials (``run(task) -> metrics``) in fresh child processes or in this one.

    By default a trial is a ``study scale`` one: ``task`` is ``{"build": kwargs of
    runner.build_registered, "recipe": Recipe.to_dict(), "save_path": str | None}``, ``dataset``
    is the parent's loaded dataset (used in-process) and ``dataset_kwargs`` are the
    :func:`keras_convnets.data.load_dataset` arguments that load the same dataset in a child.
    Other trials (``study search``'s) pass ``work(task, context) -> metrics``, the ``context``
    to use in this process, and ``setup()`` that makes the same context in a child (picklable:
    a module-level function or a ``functools.partial`` of one). Models registered in this
    process beyond the built-in ones are registered in the children too (their builders must
    be importable, module-level functions)."""

    def __init__(self, dataset=None, dataset_kwargs: dict | None = None, *, isolate: bool = True,
                 prefork: bool = True, ahead: bool = True, work: Callable[[dict, Any], dict] | None = None,
                 setup: Callable[[], Any] | None = None, preload: tuple[str, ...] = ()):
        self.context, self.isolate, self.prefork = dataset, bool(isolate), bool(prefork)
        # Prepare the next trial while this one trains (see _Handoff): on a CPU only, where both
        # processes hold nothing but memory; on an accelerator each would hold the device.
        # KC_TRIAL_AHEAD=0 switches it off (the runner-overhead bench's comparison).
        self.ahead = (self.isolate and self.prefork and bool(ahead)
                      and os.environ.get("KC_TRIAL_AHEAD", "1") != "0")
        self.work = work or run_task
        if setup is None:
            setup = functools.partial(load_data, {**(dataset_kwargs or {}), "backend": dataset.backend})
        self._args = (setup, self.work, user_specs()) if self.isolate else ()
        self._ctx = _context(preload) if self.isolate else None
        self._spare: _Child | None = None
        self.current: _Child | None = None  # the child running a trial now
        self.children_started = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self._spare is not None:
            self._spare.stop()
            self._spare = None

    def _start(self) -> _Child:
        self.children_started += 1
        return _Child(self._ctx, self._args)

    def run(self, task: dict, *, more: bool = True, meanwhile: Callable[[], dict | None] | None = None) -> dict:
        """Run one trial and return its metrics; ``more`` = another trial follows (start its
        process now). ``meanwhile()`` is called in this process while the trial trains in its
        own (the study plans its next trial there); in-process it is called before the trial. If
        it returns a task, that is the next trial's, and the next ``run`` is expected to be given
        it: its process builds it now and starts training it as soon as this trial is measured,
        while this one saves its model (``ahead``; the default ``work`` only). Given another
        task, the next ``run`` stops that process and starts a fresh one."""
        from keras_convnets.study import runner

        if not self.isolate:
            if meanwhile is not None:
                meanwhile()
            runner.release()  # the previous trial's models (and any ``meanwhile`` built)
            return self.work(task, self.context)
        runner.release()  # models this process built since the last trial (e.g. to match MACs)
        child, self._spare = self._spare, None
        if child is not None and child.task is not None and child.task != task:
            child.stop()  # prepared for another trial than this one
            child = None
        child = self.current = child or self._start()
        try:
            if child.task is None:
                child.give(task, ahead=False)
            child.release()  # given ahead: normally released when the trial before was measured
            if self.prefork and more:
                self._spare = self._start()
            upcoming = meanwhile() if meanwhile is not None else None
            if upcoming is not None and self.ahead and self._spare is not None:
                self._spare.give(upcoming, ahead=True)
            return self._wait(child, task)
        except BaseException:
            self.close()
            raise
        finally:
            child.stop()
            self.current = None

    def _wait(self, child: _Child, task: dict) -> dict:
        recipe = task.get("recipe") or {}
        failed = {"status": "failed", **({"precision": recipe.get("precision"), "jit": recipe.get("jit")} if recipe else {})}
        while True:
            # Read liveness first: whatever a dead child sent before it exited is in the pipe.
            alive = child.proc.is_alive()
            for kind, payload in _messages(child, 0.5 if alive else 0):
                if kind == "ready":
                    child.ready = True
                if kind in ("measured", "done") and self._spare is not None:
                    self._spare.release()  # the next trial trains while this one saves
                if kind == "done":
                    return payload
                if kind == "error":
                    return {**failed, "error": payload}
            if not alive:
                child.proc.join(1)
                code = child.proc.exitcode
                why = {-signal.SIGKILL: " (killed: out of memory?)", -signal.SIGSEGV: " (segmentation fault)"}
                if code == 1 and not child.ready:
                    # Typically Python's own start-up check: a process started from a script that
                    # runs the study at import time (its message is on stderr).
                    why[1] = (" before it started: a study run from your own script must be under "
                              "`if __name__ == '__main__':` (multiprocessing re-imports the script in "
                              "each trial's process), or run its trials in-process (isolate=False)")
                return {**failed, "error": f"the trial's process died with exit code {code}{why.get(code, '')}"}


def _messages(child: _Child, timeout: float):
    """The child's messages that arrive within ``timeout`` (then any already waiting)."""
    try:
        while child.conn.poll(timeout):
            yield child.conn.recv()
            timeout = 0
    except (EOFError, ConnectionError, OSError):  # the child closed its end: wait for it to exit
        child.proc.join(timeout)


def memory_note(metrics: dict[str, Any]) -> str:
    """A short ", peak 1.2 GiB" for progress lines (the trial process's peak memory)."""
    mb = metrics.get("peak_memory_mb")
    return f", peak {mb / 1024:.1f} GiB" if mb else ""
