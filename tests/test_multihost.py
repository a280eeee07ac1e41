"""`rfgen_jax.multihost.barrier`: a coordination-service barrier (not a collective) with unique ids.

The barrier itself is exercised by the two-process run (`tests/test_multiprocess.py`, in the default run); here its
contract with JAX's distributed client is checked with a recording client.
"""
import jax
from jax._src import distributed

from rfgen_jax import multihost
from rfgen_jax.data import prepare
from rfgen_jax.evaluation import evaluators


import pytest


@pytest.fixture(autouse=True)
def _backend_first():
  jax.devices()    # the CPU backend starts before the recording client is put in place (it would use it)


class _RecordingClient:
  def __init__(self):
    self.calls = []

  def wait_at_barrier(self, barrier_id, timeout_in_ms):
    self.calls.append((barrier_id, timeout_in_ms))


def test_one_process_does_nothing(monkeypatch):
  client = _RecordingClient()
  monkeypatch.setattr(distributed.global_state, "client", client)
  multihost.barrier("x")
  assert client.calls == []


def test_several_processes_wait_at_unique_coordination_barriers(monkeypatch):
  client = _RecordingClient()
  monkeypatch.setattr(distributed.global_state, "client", client)
  monkeypatch.setattr(jax, "process_count", lambda: 2)
  multihost.barrier("train steps compiled")
  multihost.barrier("train steps compiled", timeout_s=2.5)
  prepare.barrier("rfgen_jax data: prepare synthetic")       # data preparation waits at the same kind
  (a, ta), (b, tb), (c, _) = client.calls
  assert a != b and "train steps compiled" in a and "train steps compiled" in b   # a name may recur
  assert ta == multihost.DEFAULT_TIMEOUT_S * 1000 and tb == 2500
  assert "prepare synthetic" in c


def test_evaluation_gather_meets_first(monkeypatch):
  events = []
  monkeypatch.setattr(multihost, "barrier", lambda name, **_: events.append(name))
  x = jax.numpy.arange(4)
  assert evaluators.gather(x).tolist() == [0, 1, 2, 3] and events == ["evaluation gather"]
