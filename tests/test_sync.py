"""run_sync: a coroutine run to completion from sync code, with or without a running loop."""

from __future__ import annotations

import asyncio
import contextvars
import signal
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from judgealign.sync import run_sync

_REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


class Boom(Exception):
    pass


async def _answer(value: int) -> int:
    await asyncio.sleep(0)
    return value


async def _bounded_gather(n: int, limit: int) -> tuple[list[int], int]:
    """Uses loop-bound objects created inside the coroutine: a Semaphore, a Lock, a Queue."""
    semaphore = asyncio.Semaphore(limit)
    lock = asyncio.Lock()
    queue: asyncio.Queue[int] = asyncio.Queue()
    active = 0
    peak = 0

    async def one(i: int) -> int:
        nonlocal active, peak
        async with semaphore:
            async with lock:
                active += 1
                peak = max(peak, active)
            await asyncio.sleep(0.01)
            await queue.put(i)
            async with lock:
                active -= 1
        return i * i

    results = await asyncio.gather(*(one(i) for i in range(n)))
    assert queue.qsize() == n
    return list(results), peak


# --- no running loop -------------------------------------------------------------------------


def test_plain_call_returns_the_result() -> None:
    assert run_sync(_answer(7)) == 7


def test_plain_call_runs_in_this_thread() -> None:
    async def ident() -> int:
        return threading.get_ident()

    assert run_sync(ident()) == threading.get_ident()


def test_plain_call_accepts_a_factory() -> None:
    assert run_sync(lambda: _answer(3)) == 3


def test_plain_call_propagates_the_exception_unchanged() -> None:
    error = Boom("no")

    async def fail() -> None:
        raise error

    with pytest.raises(Boom) as caught:
        run_sync(fail())
    assert caught.value is error


def test_plain_call_semaphore_created_inside_works() -> None:
    results, peak = run_sync(_bounded_gather(8, limit=2))
    assert results == [i * i for i in range(8)]
    assert 1 <= peak <= 2


# --- inside a running loop (what a Jupyter cell is) -------------------------------------------


async def test_inside_a_running_loop_asyncio_run_would_fail() -> None:
    coro = _answer(1)
    with pytest.raises(RuntimeError, match="running event loop"):
        asyncio.run(coro)
    coro.close()
    assert run_sync(_answer(1)) == 1


async def test_inside_a_running_loop_returns_the_result_from_another_thread() -> None:
    async def where() -> tuple[int, asyncio.AbstractEventLoop]:
        return threading.get_ident(), asyncio.get_running_loop()

    ident, loop = run_sync(where())
    assert ident != threading.get_ident()
    assert loop is not asyncio.get_running_loop()
    assert loop.is_closed()


async def test_inside_a_running_loop_factory_is_called_in_the_worker_loop() -> None:
    outer = asyncio.get_running_loop()
    seen: list[asyncio.AbstractEventLoop] = []

    def factory() -> asyncio.Future[str]:
        loop = asyncio.get_running_loop()  # raises unless called inside a running loop
        seen.append(loop)
        future: asyncio.Future[str] = loop.create_future()
        loop.call_soon(future.set_result, "done")
        return future

    assert run_sync(factory) == "done"
    assert seen and seen[0] is not outer


async def test_inside_a_running_loop_propagates_the_exception_unchanged() -> None:
    error = Boom("from the worker")

    async def fail() -> None:
        await asyncio.sleep(0)
        raise error

    with pytest.raises(Boom) as caught:
        run_sync(fail())
    assert caught.value is error


async def test_inside_a_running_loop_keyboard_interrupt_is_not_swallowed() -> None:
    async def interrupt() -> None:
        await asyncio.sleep(0)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sync(interrupt())


async def test_inside_a_running_loop_semaphore_created_inside_works() -> None:
    results, peak = run_sync(_bounded_gather(8, limit=3))
    assert results == [i * i for i in range(8)]
    assert 1 <= peak <= 3


async def test_inside_a_running_loop_copies_contextvars() -> None:
    _REQUEST_ID.set("req-42")

    async def read() -> str:
        value = _REQUEST_ID.get()
        _REQUEST_ID.set("changed in the worker")  # stays in the worker's copy
        return value

    assert run_sync(read()) == "req-42"
    assert _REQUEST_ID.get() == "req-42"


async def test_inside_a_running_loop_nested_calls_do_not_deadlock() -> None:
    async def inner() -> int:
        return run_sync(_answer(5)) + 1  # a loop runs in this worker thread too

    assert run_sync(inner()) == 6


@pytest.fixture
def usr1_raises_keyboard_interrupt() -> Iterator[None]:
    """SIGUSR1 to the main thread acts as Ctrl+C, without touching the real SIGINT handler."""
    if sys.platform == "win32" or threading.current_thread() is not threading.main_thread():
        pytest.skip("needs POSIX signals delivered to the main thread")

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGUSR1, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGUSR1, previous)


@pytest.mark.usefixtures("usr1_raises_keyboard_interrupt")
async def test_inside_a_running_loop_interrupt_while_waiting_cancels_the_coroutine() -> None:
    started = threading.Event()
    cleaned_up = threading.Event()

    async def slow() -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        finally:
            cleaned_up.set()

    main_thread = threading.main_thread().ident
    assert main_thread is not None

    def interrupt_main() -> None:
        if started.wait(10):
            time.sleep(0.05)  # the main thread is blocked in run_sync's wait by now
            signal.pthread_kill(main_thread, signal.SIGUSR1)

    interrupter = threading.Thread(target=interrupt_main, daemon=True)
    interrupter.start()
    with pytest.raises(KeyboardInterrupt):
        run_sync(slow())
    interrupter.join(10)
    # run_sync waited for the coroutine's cleanup before re-raising.
    assert cleaned_up.is_set()


# --- bad input ---------------------------------------------------------------------------------


def test_rejects_what_is_not_awaitable() -> None:
    with pytest.raises(TypeError, match="awaitable"):
        run_sync(42)  # type: ignore[arg-type]


def test_rejects_a_factory_returning_something_else() -> None:
    with pytest.raises(TypeError, match="not an awaitable"):
        run_sync(lambda: 42)  # type: ignore[arg-type,return-value]


async def test_rejects_an_asyncio_future() -> None:
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    with pytest.raises(TypeError, match="Future or Task"):
        run_sync(future)
