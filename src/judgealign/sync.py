"""Run a coroutine to completion from synchronous code, inside a running event loop or not.

`Judge.fit`, `Judge.predict`, `Judge.forget` and `evaluate` are synchronous, but their work is
asynchronous. ``asyncio.run`` refuses to start while an event loop is already running in the
thread, which is always the case in a Jupyter/IPython cell; `run_sync` works in both places.

>>> import asyncio
>>> from judgealign.sync import run_sync
>>> async def double(x: int) -> int:
...     await asyncio.sleep(0)
...     return 2 * x
>>> run_sync(double(21))
42
>>> run_sync(lambda: double(4))  # a factory: the coroutine is created in the loop that runs it
8
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["run_sync"]

T = TypeVar("T")


class _Worker:
    """What the caller needs to cancel the coroutine running on the worker thread's loop."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cancel_requested = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[Any] | None = None

    def cancel(self) -> None:
        with self.lock:
            self.cancel_requested = True
            loop, task = self.loop, self.task
        if loop is not None and task is not None:
            # The loop may have closed in the meantime: then there is nothing left to cancel.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(task.cancel)


def run_sync(main: Awaitable[T] | Callable[[], Awaitable[T]]) -> T:
    """Run ``main`` to completion and return its result, from synchronous code.

    ``main`` is an awaitable (usually a coroutine object) or a callable taking no argument
    that returns one. A factory is called inside the event loop that runs it, so whatever
    needs a running loop at creation works.

    - No event loop running in this thread: ``asyncio.run``.
    - An event loop running in this thread (a Jupyter cell, an ``async def``): ``asyncio.run``
      on a new, short-lived worker thread (one per call, so nested calls cannot deadlock),
      while this thread blocks until it finishes. The worker runs in a copy of the caller's
      ``contextvars`` context. The caller's loop is blocked meanwhile: its other tasks pause.

    The coroutine runs in a fresh event loop either way: create loop-bound objects
    (``asyncio.Semaphore``, ``asyncio.Queue``, HTTP clients) inside it, never hand it objects
    already used by another loop. An ``asyncio.Future`` or ``Task`` is refused: it belongs to
    a loop this call cannot run.

    Exceptions raised by the coroutine propagate unchanged (the same object), including
    ``KeyboardInterrupt`` and ``SystemExit``. A ``KeyboardInterrupt`` in the caller while it
    waits for the worker cancels the coroutine, waits for it to clean up (a second interrupt
    stops waiting), and is re-raised, as ``asyncio.run`` does.
    """
    if isinstance(main, asyncio.Future):
        raise TypeError(
            "run_sync() cannot run an asyncio Future or Task: it is bound to its own event loop; "
            "pass the coroutine (or a function returning it) instead"
        )
    if not inspect.isawaitable(main) and not callable(main):
        raise TypeError(
            f"run_sync() expects an awaitable or a function returning one, "
            f"not {type(main).__name__}"
        )
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_drive(main, None))
    return _run_in_worker_thread(main)


async def _drive(main: Awaitable[T] | Callable[[], Awaitable[T]], worker: _Worker | None) -> T:
    if worker is not None:
        with worker.lock:
            if worker.cancel_requested:
                _close_unstarted(main)
                raise asyncio.CancelledError
            worker.loop = asyncio.get_running_loop()
            worker.task = asyncio.current_task()
    if inspect.isawaitable(main):
        return await main
    awaitable = main()
    if not inspect.isawaitable(awaitable):
        raise TypeError(
            f"run_sync(): the function passed returned {type(awaitable).__name__}, not an awaitable"
        )
    return await awaitable


def _close_unstarted(main: object) -> None:
    """Close a coroutine that will never run, so Python does not warn it was never awaited."""
    if inspect.iscoroutine(main):
        main.close()


def _run_in_worker_thread(main: Awaitable[T] | Callable[[], Awaitable[T]]) -> T:
    future: Future[T] = Future()
    worker = _Worker()
    context = contextvars.copy_context()

    def target() -> None:
        if not future.set_running_or_notify_cancel():
            _close_unstarted(main)
            return
        try:
            result = asyncio.run(_drive(main, worker))
        except BaseException as exc:  # handed to the caller, which re-raises it
            future.set_exception(exc)
        else:
            future.set_result(result)

    # A daemon thread: a coroutine abandoned after a second interrupt never blocks exit.
    thread = threading.Thread(
        target=context.run, args=(target,), name="judgealign-run-sync", daemon=True
    )
    thread.start()
    try:
        return future.result()
    except BaseException:
        if not future.done():  # interrupted while waiting (KeyboardInterrupt): cancel, clean up
            worker.cancel()
            with contextlib.suppress(BaseException):
                future.result()
        raise
