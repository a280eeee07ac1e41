#!/usr/bin/env bash
# Train on a Cloud TPU pod slice: the same command runs on every worker; jax.distributed.initialize()
# finds the other workers through the TPU metadata.
#
# Variables:
#   TPU_NAME  the TPU VM name (required)      ZONE     its zone (required)      PROJECT  GCP project (optional)
#   CONFIG    config file (default configs/market.py)
#   WORKDIR   a gs:// bucket path (Orbax and TensorBoard write there from every worker) (required)
#   REPO_DIR  where the repository is checked out on the workers (default ~/rfgen_jax)
#   SETUP=1   first run: copy the repository to every worker and install "jax[tpu]" and the requirements
#   EXTRA     more flags
# Preemption: a spot/preemptible TPU VM gets SIGTERM before it is reclaimed; all workers agree on a step
# (JAX's preemption sync), save a checkpoint there and exit with status 75. Run this script again once the
# slice is back to resume (docs/scaling.md, "Preemption").
set -euo pipefail
: "${TPU_NAME:?set TPU_NAME}" "${ZONE:?set ZONE}" "${WORKDIR:?set WORKDIR (gs://...)}"
CONFIG=${CONFIG:-configs/market.py}
REPO_DIR=${REPO_DIR:-'~/rfgen_jax'}
GCLOUD=(gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" --worker=all ${PROJECT:+--project="$PROJECT"})
if [[ "${SETUP:-0}" == 1 ]]; then
  gcloud compute tpus tpu-vm scp --recurse "$(dirname "$0")/.." "$TPU_NAME":"$REPO_DIR" \
      --zone="$ZONE" --worker=all ${PROJECT:+--project="$PROJECT"}
  "${GCLOUD[@]}" --command="cd $REPO_DIR && python3 -m venv .venv && . .venv/bin/activate && \
      pip install -r requirements.txt && pip install -U 'jax[tpu]'"
fi
"${GCLOUD[@]}" --command="cd $REPO_DIR && . .venv/bin/activate && RFGEN_DISTRIBUTED=1 \
    python -m rfgen_jax.main --config=$CONFIG --workdir=$WORKDIR ${EXTRA:-} 2>&1 | tee -a train.log"
