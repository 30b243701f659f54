"""The "database down until T" circuit, on a clock the test moves."""

from __future__ import annotations

from app.db.circuit import ConnectCircuit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _circuit() -> tuple[ConnectCircuit, Clock]:
    clock = Clock()
    return ConnectCircuit(open_for=1.0, probe_for=3.0, clock=clock), clock


def test_a_closed_circuit_lets_every_caller_connect():
    circuit, _ = _circuit()
    assert all(circuit.admit() for _ in range(5))
    assert not circuit.is_open


def test_after_a_failed_connect_callers_fail_fast_until_the_circuit_opens_for_a_probe():
    circuit, clock = _circuit()
    circuit.failed()
    assert not circuit.admit()
    clock.now += 0.9
    assert not circuit.admit()
    clock.now += 0.2
    assert circuit.admit()


def test_one_caller_probes_while_the_others_keep_failing_fast():
    circuit, clock = _circuit()
    circuit.failed()
    clock.now += 1.5
    assert circuit.admit()  # the probe
    assert not circuit.admit()
    clock.now += 2.0
    assert not circuit.admit()  # the probe may still be connecting


def test_a_probe_that_never_reports_back_is_replaced_after_its_connect_time():
    circuit, clock = _circuit()
    circuit.failed()
    clock.now += 1.5
    assert circuit.admit()
    clock.now += 3.1
    assert circuit.admit()


def test_a_successful_connect_closes_the_circuit():
    circuit, clock = _circuit()
    circuit.failed()
    clock.now += 1.5
    assert circuit.admit()
    circuit.succeeded()
    assert not circuit.is_open
    assert circuit.admit() and circuit.admit()


def test_a_failed_probe_opens_it_again():
    circuit, clock = _circuit()
    circuit.failed()
    clock.now += 1.5
    assert circuit.admit()
    circuit.failed()
    assert not circuit.admit()


def test_retry_after_is_the_whole_seconds_until_the_next_probe_and_at_least_one():
    circuit, clock = _circuit()
    assert circuit.retry_after() == 1
    circuit.open_for = 2.5
    circuit.failed()
    assert circuit.retry_after() == 3
    clock.now += 2.4
    assert circuit.retry_after() == 1
