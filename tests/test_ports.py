"""Ports for local viewer commands: never one port for two live jobs (a burst found two)."""
from __future__ import annotations

import socket
import threading

import pytest

from swampd.vruntask import ports
from swampd.vruntask.ports import PortPool


def test_a_port_the_kernel_offers_again_is_not_given_to_a_second_job(monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel may offer a port again before the first job's command has bound it.
    offers = iter([40001, 40001, 40001, 40002])
    monkeypatch.setattr(ports, "free_port", lambda: next(offers))
    pool = PortPool()
    assert pool.take() == 40001
    assert pool.take() == 40002


def test_a_released_port_may_be_given_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "free_port", lambda: 40010)
    pool = PortPool()
    assert pool.take() == 40010
    with pytest.raises(OSError, match="no free port"):
        pool.take()
    pool.release(40010)
    assert pool.take() == 40010


def test_an_adopted_jobs_port_is_held(monkeypatch: pytest.MonkeyPatch) -> None:
    offers = iter([40020, 40021])
    monkeypatch.setattr(ports, "free_port", lambda: next(offers))
    pool = PortPool()
    pool.hold(40020)
    assert pool.take() == 40021
    assert len(pool) == 2


def test_many_threads_taking_at_once_get_distinct_free_ports() -> None:
    pool, got, lock = PortPool(), [], threading.Lock()

    def take() -> None:
        for _ in range(50):
            port = pool.take()
            with lock:
                got.append(port)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 400 and len(set(got)) == 400
    with socket.socket() as sock:  # what the pool hands out is bindable
        sock.bind(("127.0.0.1", got[0]))
