"""Forked processes: one function over a few items at once (for a reader that parses a big source in parts,
:meth:`predport.core.reader.ReadContext.decode_parts`, before the run's worker processes fork), and what every
forked process of predport does (end with its parent) and says (how it died, or the exception it raised)."""

from __future__ import annotations

import contextlib
import mmap
import os
import pickle
import signal
import traceback
from collections.abc import Callable, Iterator, Sequence
from itertools import accumulate, pairwise
from typing import Any, TypeVar

from predport.core.problems import PredportError

T = TypeVar("T")
R = TypeVar("R")


def fork_map(fn: Callable[[T], R], items: Sequence[T], room: int = 0, processes: int | None = None,
             doing: str = "parsing part of the input", waiting: Callable[[], None] | None = None) -> list[R]:
    """``[fn(x) for x in items]`` in ``processes`` processes at once (default: one per item): this one and
    others forked for the call, each taking the next item not taken yet as soon as it is free, this one the first
    item. A forked process's results are pickled back (they should be compact, e.g. numpy columns). Where no
    process can be forked, one after the other here. An exception in a child is raised here as a PredportError
    that says what the child was ``doing`` and names the exception (a PredportError's message as it is); a child
    that dies says how. ``waiting``: called every 0.2 s while this process waits for the others (progress).

    Why items are taken, not dealt: on the development VM one of two processes runs up to 1.5x slower than the
    other in some runs, and this process has more to do (it frees its own intermediate objects and takes the
    others' results); with more items than processes, the faster one takes more of them.

    With ``room`` (bytes), each child puts its results' large buffers (numpy arrays: pickle protocol 5's
    out-of-band buffers) in a memory map of that size shared with this process, and only the rest goes through
    the pipe: 14 MB of columns took 90 ms through a pipe on the development VM, against a few ms this way. Results
    whose buffers do not fit go whole through the pipe. (An anonymous shared map costs only the pages written.)"""
    import multiprocessing
    import multiprocessing.connection

    count = min(len(items), processes or len(items))
    # (a daemonic process, such as a Dask worker, may not start one)
    if count < 2 or not hasattr(os, "fork") or multiprocessing.current_process().daemon:
        return [fn(x) for x in items]

    ctx = multiprocessing.get_context("fork")
    taken = ctx.Value("q", 1)  # (the next item to take: the first is this process's)

    here = os.getpid()

    def alive() -> bool:  # (a child waits: if another dies, this process ends the run, and with it the child)
        return os.getpid() != here or all(proc.is_alive() for proc, _, _ in children)

    def take() -> int:
        with held(taken.get_lock(), alive):
            k: int = taken.value
            taken.value = k + 1
        return k

    def mine() -> dict[int, R]:
        out: dict[int, R] = {}
        while (k := take()) < len(items):
            out[k] = fn(items[k])
        return out

    def child(send: Any, area: mmap.mmap | None) -> None:
        die_with_parent()
        try:
            send.send(_packed(mine(), area))
        except BaseException as e:  # (said by the parent)
            send.send(("error", str(e) if isinstance(e, PredportError) else describe(e), None))
        finally:
            send.close()

    children: list[tuple[Any, Any, mmap.mmap | None]] = []
    try:
        for _ in range(count - 1):
            area = None
            if room > 0:
                with contextlib.suppress(OSError):  # (no memory to map: the results take the pipe)
                    area = mmap.mmap(-1, room)
            receive, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=child, args=(send, area), name="predport-part", daemon=True)
            proc.start()
            send.close()
            children.append((proc, receive, area))
        results = {0: fn(items[0]), **mine()}
        # (whichever child is ready first: one that died is said at once, not after those waiting on it)
        pending: dict[Any, tuple[Any, mmap.mmap | None]] = {receive: (proc, area) for proc, receive, area in children}
        while pending:
            ready: Any
            for ready in multiprocessing.connection.wait(list(pending), timeout=0.2 if waiting else None):
                proc, area = pending.pop(ready)
                try:
                    kind, value, sizes = ready.recv()
                except EOFError:
                    proc.join()
                    raise PredportError(f"a process {doing} {exit_text(proc.exitcode)}") from None
                if kind == "error":
                    raise PredportError(f"{doing} failed: {value}")
                if kind == "shared" and area is not None:
                    bounds = [0, *accumulate(sizes)]
                    whole = memoryview(area)  # (the arrays are read where the child wrote them: no copy)
                    value = pickle.loads(value, buffers=[whole[a:b] for a, b in pairwise(bounds)])
                results.update(value)
            if waiting is not None:
                waiting()
        return [results[k] for k in range(len(items))]
    finally:
        for proc, receive, area in children:
            if proc.is_alive():
                proc.terminate()
            proc.join()
            receive.close()
            if area is not None:
                with contextlib.suppress(BufferError):  # (else the results' arrays still use it: freed with them)
                    area.close()


def _packed(result: Any, area: mmap.mmap | None) -> tuple[str, Any, list[int] | None]:
    """A child's message: its result's out-of-band buffers in ``area`` when they fit, else the whole result."""
    if area is not None:
        buffers: list[pickle.PickleBuffer] = []
        head = pickle.dumps(result, protocol=5, buffer_callback=buffers.append)
        views = [b.raw() for b in buffers]
        sizes = [v.nbytes for v in views]
        if sum(sizes) <= len(area):
            offset = 0
            for v in views:
                area[offset:offset + v.nbytes] = v
                offset += v.nbytes
            return "shared", head, sizes
    return "ok", result, None


def describe(e: BaseException, frames: int = 3) -> str:
    """An exception for the user: type, message and the last frames of its traceback."""
    tb = traceback.extract_tb(e.__traceback__)[-frames:]
    where = "".join(f"\n    {f.filename}:{f.lineno} in {f.name}: {f.line}" for f in tb)
    return f"{type(e).__name__}: {e}" + (f"\n  last frames:{where}" if where else "")


@contextlib.contextmanager
def held(lock: Any, alive: Callable[[], bool], wait: float = 1.0) -> Iterator[None]:
    """``with lock``, for a lock shared with forked processes: one killed while holding it (between acquiring and
    releasing, by the OOM killer say) would leave this process waiting forever. Every ``wait`` seconds
    ``alive()`` is asked whether the processes that share it still run; when one does not, a PredportError
    ends the wait instead of a hang."""
    while not lock.acquire(timeout=wait):
        if not alive():
            raise PredportError("a process that shares the work died while holding its lock")
    try:
        yield
    finally:
        lock.release()


def die_with_parent() -> None:
    """A worker whose parent is killed (even with SIGKILL) ends too, instead of writing on (Linux)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def exit_text(code: int | None) -> str:
    """How a process that sent nothing ended (its exit code, or the signal that killed it)."""
    if code is not None and code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"ended with exit code {code} and sent no report"
