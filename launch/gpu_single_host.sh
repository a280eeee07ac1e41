#!/usr/bin/env bash
# Train on every GPU of one machine: one process drives all local GPUs (the mesh's `data` axis spans them).
#
# Variables:
#   CONFIG   config file (default configs/market.py)
#   WORKDIR  run folder (default workdirs/<config name>)
#   GPUS     CUDA_VISIBLE_DEVICES to use (default: all)
#   EXTRA    more flags, e.g. "--config.train.batch_size=32 --config.model.dtype=bfloat16"
# Requires the CUDA build of JAX: pip install -U "jax[cuda12]" (see README, "Installing for GPU/TPU").
# SIGTERM (e.g. `docker stop`, Kubernetes eviction) saves a checkpoint after the current step and exits with
# status 75; run the script again to resume (a Kubernetes Job with restartPolicy OnFailure does so itself).
# See docs/scaling.md, "Preemption".
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${CONFIG:-configs/market.py}
WORKDIR=${WORKDIR:-workdirs/$(basename "${CONFIG%%:*}" .py)}
if [[ -n "${GPUS:-}" ]]; then export CUDA_VISIBLE_DEVICES=$GPUS; fi
# Let XLA take GPU memory as needed instead of pre-allocating 75%, so the input workers can share the host.
export XLA_PYTHON_CLIENT_PREALLOCATE=${XLA_PYTHON_CLIENT_PREALLOCATE:-false}
exec python -m rfgen_jax.main --config="$CONFIG" --workdir="$WORKDIR" ${EXTRA:-}
