"""Per-host input: process p of P reads rows [p * B / P, (p + 1) * B / P) of every global batch, so the
global batches do not depend on the process count; a `model` mesh axis > 1 is refused."""
import grain
import jax
import numpy as np
import pytest

from rfgen_jax.data import pipeline
from rfgen_jax.runtime import sharding


@pytest.mark.parametrize("process_count, global_batch", [(2, 8), (4, 8), (3, 6)])
def test_hosts_read_contiguous_rows_of_each_global_batch(process_count, global_batch):
  source = grain.MapDataset.range(10**6).map(lambda i: i * 7 % 1000003)   # any random-access stream
  per_host = global_batch // process_count
  hosts = [pipeline._HostRows(source, p, process_count, per_host)          # pylint: disable=protected-access
           for p in range(process_count)]
  for t in range(5):   # global batch t = the concatenation of the hosts' batch t
    rows = [hosts[p][t * per_host + j] for p in range(process_count) for j in range(per_host)]
    assert rows == [source[t * global_batch + r] for r in range(global_batch)]
  batches = [next(iter(h.to_iter_dataset().batch(per_host))) for h in hosts]
  np.testing.assert_array_equal(np.concatenate(batches), [source[r] for r in range(global_batch)])


def test_model_axis_is_refused():
  devices = jax.devices() * 4          # only the shape matters for the check
  assert dict(sharding.make_mesh((-1, 1), devices=devices[:1]).shape) == {"data": 1, "model": 1}
  with pytest.raises(ValueError, match=r"mesh_shape=\(2, 2\) has a `model` axis of 2 devices"):
    sharding.make_mesh((2, 2), devices=devices)
  with pytest.raises(ValueError, match=r"mesh_shape=\(-1, 4\) has a `model` axis"):
    sharding.make_mesh((-1, 4), devices=devices)
