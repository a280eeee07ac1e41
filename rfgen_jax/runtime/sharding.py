"""One mesh over all devices: a `data` axis for the batch, and a `model` axis that must have size 1.

The train state is replicated on every device and batches are split on `data` only, so a `model` axis of
size > 1 would make its devices repeat each other's work: `make_mesh` refuses it. docs/scaling.md gives the
memory per device that makes replication the right choice for this model (parameter sharding would save
less than a tenth of a GPU's memory at the paper's largest config).

Several processes: `to_global_batch` assembles the global batch from each process's rows (process p holds
rows [p * B / P, (p + 1) * B / P) of the global batch of B, its local devices' slices).
"""
from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"
MODEL_AXIS = "model"


def make_mesh(mesh_shape=(-1, 1), devices=None) -> Mesh:
  """Builds a (data, model) mesh; -1 in `mesh_shape` takes the remaining devices.

  Axis types are Auto (sharding propagated by XLA), set explicitly since `jax.make_mesh` defaults to
  Explicit.
  """
  devices = np.asarray(jax.devices() if devices is None else devices)
  shape = list(mesh_shape)
  if shape.count(-1) > 1:
    raise ValueError(f"--config.train.mesh_shape={tuple(mesh_shape)} may hold at most one -1.")
  known = int(np.prod([s for s in shape if s != -1]))
  if -1 in shape:
    shape[shape.index(-1)] = devices.size // known
  if int(np.prod(shape)) != devices.size:
    raise ValueError(
        f"--config.train.mesh_shape={tuple(mesh_shape)} does not cover the {devices.size} devices.")
  if shape[1] != 1:
    raise ValueError(
        f"--config.train.mesh_shape={tuple(mesh_shape)} has a `model` axis of {shape[1]} devices; only 1 "
        "is supported (parameters are replicated, the batch is split on `data`: a larger `model` axis "
        "would repeat work). Use (-1, 1); docs/scaling.md explains why there is no parameter sharding.")
  auto = (jax.sharding.AxisType.Auto,) * 2
  return jax.make_mesh(tuple(shape), (DATA_AXIS, MODEL_AXIS), axis_types=auto, devices=devices.ravel())


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def data_sharded(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over `data`."""
  return NamedSharding(mesh, P(DATA_AXIS))


def to_global_batch(local_batch: dict, mesh: Mesh) -> dict:
  """Turns this host's numpy batch into global arrays sharded on the `data` axis.

  Each process passes its own slice (per-host batch = global batch / process count).
  """
  sharding = data_sharded(mesh)
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)),
                      local_batch)
