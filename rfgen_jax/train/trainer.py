"""The training loop, top to bottom: setup, mesh, input, model, sharded state, steps, checkpoints, loop.

`Trainer(config, workdir, mesh).run()` trains both stages (flow warm-up, then end to end), resuming
from the latest checkpoint of `workdir`; without one, from drawn parameters or those `train.init_from`
names (`init_from.py`). The job around it (evaluation during and after training, the
closing summary) is `rfgen_jax/job.py`: this layer does not import `rfgen_jax/evaluation/`
(docs/design.md, "Layers").

Keeping the device busy: the host never waits for a step except when it logs, samples or saves. Whether
a step's losses are finite is recorded on the device (`steps.record_finiteness`) and read only at log and
checkpoint steps (before saving, so a checkpoint never holds a non-finite update); the next global batch
is read and put on the devices while the current step runs; at most `_MAX_IN_FLIGHT` steps are queued.
Preemption (SIGTERM): `preemption.py`. Several processes: every process reads its own rows of each
global batch (`data.create_train_iterator`), and everything it writes but the checkpoints is written by
process 0.
"""
from __future__ import annotations

import collections
import itertools
import os
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from clu import metric_writers, periodic_actions
from jax.experimental import multihost_utils

from rfgen_jax import data, inference, models, multihost, visualize
from rfgen_jax.nets import vgg19
from rfgen_jax.train import preemption, progress as progress_lib
from rfgen_jax.runtime import checkpointing, sharding, state as state_lib
from rfgen_jax.train import flow_scalars, init_from, steps

_MAX_IN_FLIGHT = 2   # steps dispatched but not finished: enough to hide the host's per-step work

# evaluate_during_training(step, generate, params, writer, mesh): the periodic evaluation (eval.every_steps).
EvaluateFn = Callable[[int, Callable, Any, Any, jax.sharding.Mesh], None]


class NonFiniteLossError(FloatingPointError):
  """A loss term became NaN or infinite; training stopped."""


def write_config(config, workdir: str) -> None:
  """Writes every config key to `<workdir>/config.json` and logs where (the config is not logged)."""
  if jax.process_index() == 0:
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "config.json")
    with open(path, "w") as f:
      f.write(config.to_json_best_effort(indent=2, sort_keys=True))
    logging.info("Config (every key, overrides applied): %s", path)


def create_writer(workdir: str):
  """TensorBoard event files in `workdir` (process 0; the others write none). No log lines: the
  progress line (`progress.py`) shows the main losses, TensorBoard has every scalar."""
  writers = [metric_writers.SummaryWriter(workdir)] if jax.process_index() == 0 else []
  return metric_writers.AsyncMultiWriter(writers)


def check_health(health: dict, checkpoint_dir: str, last_saved: int | None) -> None:
  """Raises NonFiniteLossError naming the first bad step and its non-finite terms.

  Args:
    health: a host copy of a `steps.record_finiteness` record: {"step": first bad step or -1, "metrics"}.
  """
  step = int(health["step"])
  if step < 0:
    return
  bad = {k: float(v) for k, v in health["metrics"].items() if not np.isfinite(v)}
  kept = (f"the last good checkpoint (step {last_saved}) is kept in {checkpoint_dir}"
          if last_saved is not None else "no checkpoint had been written yet")
  raise NonFiniteLossError(
      f"Non-finite loss at step {step}: " + ", ".join(f"{k}={v}" for k, v in sorted(bad.items())) +
      f". Training stopped; {kept}. Try a lower --config.train.learning_rate or "
      "--config.train.grad_clip_norm.")


class Trainer:
  """Holds what the loop needs; `run()` trains to `train.total_steps`."""

  def __init__(self, config, workdir: str, mesh: jax.sharding.Mesh,
               evaluate_during_training: EvaluateFn | None = None):
    """`config` checked and `mesh` made by `config_utils.setup_run` (once per run, by the caller).
    `evaluate_during_training(step, generate, params, writer, mesh)` runs every `eval.every_steps` steps
    (on every process); `rfgen_jax/job.py` passes the evaluators of `rfgen_jax/evaluation/`, which this
    layer does not import."""
    if config.eval.every_steps > 0 and evaluate_during_training is None:
      raise ValueError(f"eval.every_steps={config.eval.every_steps} needs an evaluate_during_training "
                       "callback (rfgen_jax/job.py passes one); or set --config.eval.every_steps=0.")
    self.config = config
    self.workdir = workdir
    self.evaluate_during_training = evaluate_during_training
    # Data, weights and the checkpoint are opened before anything is written: a run that cannot start
    # (a user error, `rfgen_jax/errors.py`) leaves no file in the workdir.

    # ------------------------------------------------------------ mesh
    self.mesh = mesh
    self.replicated = sharding.replicated(self.mesh)
    self.batch_sharding = sharding.data_sharded(self.mesh)
    logging.info("Mesh %s over %d devices (%d processes).", dict(self.mesh.shape), jax.device_count(),
                 jax.process_count())

    # ------------------------------------------------------------ model
    self.generator = models.build_generator(config)
    self.discriminator = models.build_discriminator(config)
    self.vgg, vgg_params = vgg19.load_vgg19(config)
    self.vgg_params = jax.device_put(vgg_params, self.replicated)

    # ------------------------------------------------------------ checkpoint (checked before the input
    # pipeline starts its worker processes)
    # (the data root is checked first, so a missing data set never creates the checkpoint folder)
    data.ensure_dataset(config)
    abstract = state_lib.abstract_state(config, self.generator, self.discriminator)
    self.state_sharding = jax.tree.map(lambda _: self.replicated, abstract)
    self.checkpointer = checkpointing.Checkpointer(workdir, config)
    latest = self.checkpointer.latest_step()
    initial = None        # the variables of train.init_from (init_from.py), for a run that has no checkpoint
    if latest is not None:
      self.checkpointer.check_compatible(latest, config)
      if config.train.init_from:
        logging.info("train.init_from=%s is ignored: the workdir holds a checkpoint (step %d), which the run "
                     "resumes from.", config.train.init_from, latest)
    elif config.train.init_from:
      initial = init_from.load(config, abstract, self.replicated)

    # ------------------------------------------------------------ input
    self.train_iter = data.create_train_iterator(config)   # this process's rows of each global batch

    # ------------------------------------------------------------ state, created sharded
    if latest is not None:
      target = checkpointing.abstract_with_sharding(abstract, self.state_sharding)
      self.state = self.checkpointer.restore(latest, target, config, self.train_iter)
      logging.info("Resuming from step %d.", latest)
    else:   # drawn, or the given variables of train.init_from with fresh optimizer states, at step 0
      given = {} if initial is None else {"gen_params": initial.gen_params,
                                          "disc_variables": initial.disc_variables}
      self.state = state_lib.create_state(config, jax.random.PRNGKey(config.train.seed), self.generator,
                                          self.discriminator, self.state_sharding, **given)
    self.last_saved = latest

    # ------------------------------------------------------------ outputs (the run has started)
    write_config(config, workdir)
    self.writer = create_writer(workdir)

    # ------------------------------------------------------------ steps
    # Traced (for their metric shapes, `_init_health`) and compiled (`compile_steps`) only for the stages a
    # run trains; `steps.StepSpec` makes an equal config reuse the trace of an earlier trainer in this
    # process. Per device under `jax.shard_map` when train.grad_reduction = "fixed_order"
    # (steps.per_device_with_fixed_order_mean).
    self.step_spec = steps.StepSpec.create(config, self.generator, self.discriminator, self.vgg, self.mesh)
    self.train_steps = {}   # {stage: its compiled step (steps.make_train_step)}
    self.generate = inference.make_generate(self.generator, self.replicated, self.batch_sharding)
    # The sample grids, and the flow/* scalars of the same forward pass (flow_scalars.py).
    self.generate_with_flow_scalars = flow_scalars.make_generate_with_flow_scalars(
        self.generator, self.replicated, self.batch_sharding)
    self._sample_batch = None
    self.health = {}        # {stage: its on-device finiteness record (steps.record_finiteness)}, as trained

  def _init_health(self, batch, stages) -> None:
    """Adds to `self.health` the on-device finiteness record of each of `stages` that has none yet,
    replicated (metric shapes from `jax.eval_shape`). Only the stages a run trains: tracing a step for its
    shapes costs seconds (the whole model, forward and backward), and a run that stays in the flow
    warm-up, or resumes in stage 2, never calls the other step."""
    for stage in stages:
      if stage not in self.health:
        self.health[stage] = steps.initial_health(stage, self.step_spec, self.state, batch, self.vgg_params,
                                                  self.replicated)

  # -------------------------------------------------------------- samples
  def sample_batch(self) -> dict:
    """A fixed per-host batch of test tuples showing distinct identities.

    The test tuples are sorted by name, so one eval batch mostly holds one identity: take row 0 of each of
    the first batches, then fill up with the first batch's other rows.
    """
    if self._sample_batch is None:
      n = self.config.eval.batch_size // jax.process_count()
      batches = list(itertools.islice(
          iter(data.create_eval_batches(self.config, self.config.data.num_sources)), n))
      rows = ([(b, 0) for b in batches] + [(batches[0], i) for i in range(1, n)])[:n]
      self._sample_batch = {k: np.stack([b[k][i] for b, i in rows]) for k in batches[0] if k != "valid"}
    return self._sample_batch

  def write_samples(self, step: int) -> None:
    """Writes sources | target pose | generated | ground truth for the sample batch (PNG + TensorBoard)."""
    host = self.sample_batch()
    params = self.state.ema_params if self.config.eval.use_ema else self.state.gen_params
    generated, flow = jax.block_until_ready(
        self.generate_with_flow_scalars(params, sharding.to_global_batch(host, self.mesh)))
    self.writer.write_scalars(step, {k: float(v) for k, v in jax.device_get(flow).items()})
    multihost.barrier("sample batch generated")    # its first call compiles, unevenly across processes
    generated = np.asarray(multihost_utils.process_allgather(generated, tiled=True))
    if jax.process_index() == 0:
      if self.config.eval.inner_maps:   # + each source's flow, occlusion, attention per level
        grid = inference.inner_maps_sample_grid(self.generator, params, host)
      else:
        grid = visualize.sample_grid(host, generated[:host["target_image"].shape[0]])
      visualize.write_png(os.path.join(self.workdir, "samples", f"step_{step:07d}.png"), grid)
      self.writer.write_images(step, {"samples": grid[None]})
    multihost.barrier("samples written")           # process 0's grid (and its compilation) took a while

  # -------------------------------------------------------------- loop
  def next_batch(self) -> dict:
    """The next global batch, put on the devices (this process's rows; the copy runs asynchronously)."""
    return self.device_batch(next(self.train_iter))

  def device_batch(self, host: dict) -> dict:
    """The `steps.batch_keys(config)` of this process's rows `host`, as global arrays on the mesh."""
    return sharding.to_global_batch({key: host[key] for key in steps.batch_keys(self.config)}, self.mesh)

  def check_health(self) -> None:
    """Reads the trained stages' finiteness records (blocks until the dispatched steps are done)."""
    for record in jax.device_get(self.health).values():
      check_health(record, self.checkpointer.directory, self.last_saved)

  def compile_steps(self, batch, stages) -> None:
    """Compiles the train steps of `stages` ahead of time, then waits for every process.

    Each process compiles a step on its own, and one may find it in the persistent compilation cache while
    another compiles for a minute; the first collective of the step (gloo's on CPU hosts, which gives up
    after 30 s) must not start before every process is ready, so they meet at `multihost.barrier` first.
    The compiled executables go into `self.train_steps` (no compilation at the first call).
    """
    for stage in stages:
      if stage not in self.train_steps:
        self.train_steps[stage] = steps.make_train_step(
            stage, self.step_spec, self.state, batch, self.vgg_params, self.health[stage],
            state_sharding=self.state_sharding, batch_sharding=self.batch_sharding,
            replicated_sharding=self.replicated)
    multihost.barrier("train steps compiled")

  def time_steps(self, batch, rounds: int = 3) -> dict:
    """{stage: seconds} of one step of each compiled stage, run on a copy of the state (the steps donate
    their input; the training state is untouched). For the ETA of a stage that has not run yet
    (`progress.py`). The stages take turns for `rounds` rounds, so that both see the host's load of the
    moment; the first round (one-time costs) is dropped, and each stage's fastest later call is kept."""
    state = jax.tree.map(jnp.copy, self.state)   # one copy, passed from step to step
    health = {stage: jax.tree.map(jnp.copy, self.health[stage]) for stage in self.train_steps}
    seconds = collections.defaultdict(list)
    for round_ in range(rounds):
      for stage, step_fn in sorted(self.train_steps.items()):
        start = time.perf_counter()
        state, metrics, health[stage] = step_fn(state, batch, self.vgg_params, health[stage])
        jax.block_until_ready((state, metrics, health[stage]))
        if round_ > 0 or rounds == 1:
          seconds[stage].append(time.perf_counter() - start)
    return {stage: min(times) for stage, times in seconds.items()}

  def run(self) -> None:
    """Trains to `train.total_steps`. Raises `preemption.Preempted` after saving, on SIGTERM."""
    config = self.config
    total = config.train.total_steps
    warmup = config.train.flow_warmup_steps
    first = int(jax.device_get(self.state.step))
    if first >= total:
      logging.info("Step %d >= train.total_steps=%d: nothing to train.", first, total)
      return
    hooks = []
    if config.train.profile_steps > 0 and jax.process_index() == 0:
      hooks.append(periodic_actions.Profile(num_profile_steps=config.train.profile_steps,
                                            first_profile=min(first + 5, total), logdir=self.workdir))
    learning_rates = {"lr/flow_estimator": config.train.learning_rate,
                      "lr/generator": config.train.learning_rate,
                      "lr/discriminator": config.train.disc_learning_rate}
    watch = preemption.PreemptionWatch()
    in_flight = collections.deque()
    start = time.time()
    try:
      batch = self.next_batch()
      stages = ([1] if first < warmup else []) + ([2] if total > warmup else [])
      self._init_health(batch, stages)
      self.compile_steps(batch, stages)
      progress = progress_lib.Progress(total, warmup)
      if stages == [1, 2]:   # stage 2's cost per step is needed for the ETA before it runs
        timed = self.time_steps(batch)
        progress.stage2_minus_stage1 = timed[2] - timed[1]
        logging.info("One step timed: stage 1 %.3f s, stage 2 %.3f s. Until stage 2 runs, the ETA takes "
                     "stage 1's measured time per step + %.3f s for it (rfgen_jax/train/progress.py).",
                     timed[1], timed[2], timed[2] - timed[1])
      logging.info("Progress every %d steps; every scalar goes to TensorBoard: tensorboard --logdir %s",
                   config.train.log_every_steps, self.workdir)
      for step in range(first, total):
        stage = 1 if step < warmup else 2
        if step == first or step == warmup:
          logging.info("Step %d: stage %d (%s).", step, stage,
                       "flow warm-up: flow estimator only, L_flow" if stage == 1
                       else "end to end: generator + discriminator, full loss")
        while len(in_flight) >= _MAX_IN_FLIGHT:
          jax.block_until_ready(in_flight.popleft())
        progress.step_started(step)
        with jax.profiler.StepTraceAnnotation("train", step_num=step):
          self.state, metrics, self.health[stage] = self.train_steps[stage](
              self.state, batch, self.vgg_params, self.health[stage])
        in_flight.append(metrics)
        done = step + 1
        preempted = watch.reached(done)
        log_now = done % config.train.log_every_steps == 0 or done == total
        save_now = done % config.checkpoint.every_steps == 0 or done == total or preempted
        if done < total and not save_now:
          batch = self.next_batch()     # overlaps the running step; at a save, read after saving
        for hook in hooks:
          hook(done)
        if log_now or save_now:         # a checkpoint never holds a non-finite update
          self.check_health()
        if log_now:
          scalars = {k: float(v) for k, v in jax.device_get(metrics).items()}
          line, rate = progress.line(done, scalars)
          logging.info("%s", line)
          scalars.update(learning_rates, stage=stage, steps_per_sec=rate)
          self.writer.write_scalars(done, scalars)
        if done % config.train.sample_every_steps == 0 or done == total:
          self.write_samples(done)
        if config.eval.every_steps > 0 and done % config.eval.every_steps == 0:
          self.evaluate_during_training(done, self.generate, self.state.gen_params, self.writer, self.mesh)
          multihost.barrier("evaluated during training")
        if save_now:
          self.checkpointer.save(done, self.state, self.train_iter, config)
          self.last_saved = done
          if preempted:
            self.checkpointer.wait()
            logging.warning("Preempted: checkpoint of step %d written; exiting.", done)
            raise preemption.Preempted(done, self.checkpointer.directory)
          if done < total:
            batch = self.next_batch()
    finally:
      watch.close()
      self.checkpointer.wait()
      self.writer.flush()
    logging.info("Trained steps %d..%d in %s.", first, total,
                 progress_lib.format_duration(time.time() - start))

  def close(self) -> None:
    self.checkpointer.close()
    self.writer.close()
    # Stop grain's worker processes now rather than in interpreter-exit finalizers (which, after a
    # restored iterator state restarted them, report closed queue handles).
    close_iterator = getattr(self.train_iter, "close", None)
    if close_iterator is not None:
      close_iterator()
