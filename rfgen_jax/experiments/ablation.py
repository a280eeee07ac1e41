r"""The paper's ablation (Lu et al., AAAI 2022, Table 4): Full against w/o res, w/o occ, w/o attn, Baseline.

    python -m rfgen_jax.experiments.ablation --config=configs/ablation.py --workdir=DIR \
        [--variants=full,wo_res,wo_occ,wo_attn,baseline] [--seeds=0,1 --seed_variants=full,baseline] \
        [--parallel=N] [--config.KEY=VALUE ...]

Every run (a variant at a seed) is `python -m rfgen_jax.main --config=<the same config and overrides>
--config.model.<switch>=False ... --workdir=DIR/runs/<variant>_s<seed>` in a subprocess: the project's own
train and eval entry points (`rfgen_jax/train/trainer.py: train_and_evaluate`, then
`rfgen_jax/evaluation/evaluator.py: evaluate` at K = `eval.num_sources`), on the same data, with the same
seed and steps. The switches (`configs/common.py`, `rfgen_jax/models/rf_block.py`):

| variant | overrides |
| --- | --- |
| `full` | none |
| `wo_res` | `model.residual_flow=False` (the estimator's flow is used unrefined) |
| `wo_occ` | `model.occlusion=False` (no occlusion mask: warped features only) |
| `wo_attn` | `model.attention=False` (sources averaged with equal weights) |
| `baseline` | all three False (warped features averaged) |

A seed `S` sets `train.seed` and `data.shuffle_seed` (initialisation and data order); the data set and
the evaluation tuples stay the same. `--seeds` lists the seeds; the first is used by every variant, the
others only by `--seed_variants`.

Resuming: each run has its own workdir. A run whose `eval/metrics.json` is at `train.total_steps` with
every K is skipped; any other resumes from its latest Orbax checkpoint (the trainer does that) and is
then evaluated. Interrupt the study at any time (Ctrl-C stops the runs) and rerun the same command.

Output in DIR: `table4.md`, `table4.json`, `table4.png` (`rfgen_jax/experiments/report.py`),
`study.json` (the plan), `runs/<run>/` (a normal workdir plus `log.txt`, the run's output, and
`command.txt`). One progress line on stderr: runs done, the active runs' steps, steps/s and the ETA of
the whole study.

Side by side (`--parallel N`): N runs at once, each pinned to its share of the local devices: GPUs by
`CUDA_VISIBLE_DEVICES` (several runs on one GPU split its memory by `XLA_PYTHON_CLIENT_MEM_FRACTION`),
CPU cores by `sched_setaffinity`. TPU is refused (see `_TPU_PARALLEL`). The data set is generated and
prepared once, before any run starts (`--prepare_only` does just that).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional, Sequence

from absl import app, flags
from ml_collections import config_flags

from rfgen_jax import cli, errors
from rfgen_jax.experiments import report

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The study's flags; defined only when it runs, so importing the module defines none."""
  config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/ablation.py[:tiny].",
                                  lock_config=True)
  flags.DEFINE_string("workdir", None, "Folder of the study: runs/<variant>_s<seed>/, table4.{md,json,png}.")
  flags.DEFINE_list("variants", None, "Variants to run (default: study.variants of the config); any of "
                    "full, wo_res, wo_occ, wo_attn, baseline.")
  flags.DEFINE_list("seeds", None, "Seeds (default: study.seeds). The first is run by every variant, the "
                    "others by --seed_variants only.")
  flags.DEFINE_list("seed_variants", None, "Variants trained at every seed (default: study.seed_variants).")
  flags.DEFINE_integer("parallel", None, "Runs side by side, each on its share of the devices (default: "
                       "study.parallel).")
  flags.DEFINE_boolean("prepare_only", False, "Only generate and prepare the data set (used before the runs).")
  flags.DEFINE_boolean("report_only", False, "Only write the table and plot from the finished runs.")
  flags.mark_flags_as_required(["config", "workdir"])


VARIANTS = {   # name -> (Table 4's label, overrides)
    "baseline": ("Baseline", {"model.residual_flow": False, "model.occlusion": False,
                              "model.attention": False}),
    "wo_res": ("w/o res", {"model.residual_flow": False}),
    "wo_occ": ("w/o occ", {"model.occlusion": False}),
    "wo_attn": ("w/o attn", {"model.attention": False}),
    "full": ("Full", {}),
}
ORDER = tuple(VARIANTS)   # Table 4's row order, Full last
_TPU_PARALLEL = (
    "--parallel > 1 is not supported on TPU: libtpu lets one process per host open the chips (a second "
    "process fails on the TPU lock), and splitting a host's chips between processes needs per-process "
    "TPU_VISIBLE_CHIPS / TPU_PROCESS_BOUNDS / ports that this runner does not set up. Use --parallel=1 (one "
    "run after the other, each on all chips) or one study per host with --variants.")


class UsageError(errors.UserError):
  """A bad flag or config value: reported in one line, exit status 2 (`cli.run`)."""


# -------------------------------------------------------------------------------------------- plan
@dataclasses.dataclass
class Run:
  variant: str
  seed: int
  workdir: str
  overrides: Dict[str, object]

  @property
  def name(self) -> str:
    return f"{self.variant}_s{self.seed}"


def plan_runs(workdir: str, variants: Sequence[str], seeds: Sequence[int],
              seed_variants: Sequence[str]) -> List[Run]:
  """The runs in order: every variant at seeds[0], then the --seed_variants at the other seeds."""
  unknown = [v for v in list(variants) + list(seed_variants) if v not in VARIANTS]
  if unknown:
    raise UsageError(f"unknown variant(s) {unknown} in --variants/--seed_variants; accepted: {list(VARIANTS)}.")
  if not variants:
    raise UsageError("--variants is empty; give at least one of " + ", ".join(VARIANTS) + ".")
  if not seeds:
    raise UsageError("--seeds is empty; give at least one integer seed, e.g. --seeds=0.")
  if len(set(seeds)) != len(seeds):
    raise UsageError(f"--seeds has repeats: {list(seeds)}.")
  ordered = [v for v in ORDER if v in variants]
  runs = []
  for i, seed in enumerate(seeds):
    for v in ordered if i == 0 else [v for v in ORDER if v in seed_variants and v in variants]:
      overrides = dict(VARIANTS[v][1])
      overrides.update({"train.seed": int(seed), "data.shuffle_seed": int(seed)})
      runs.append(Run(v, int(seed), os.path.join(workdir, "runs", f"{v}_s{seed}"), overrides))
  return runs


def finished(run: Run, total_steps: int, ks: Sequence[int]) -> Optional[dict]:
  """The run's metrics.json if it is complete (at `total_steps`, every K), else None."""
  try:
    with open(os.path.join(run.workdir, "eval", "metrics.json")) as f:
      m = json.load(f)
    if int(m["step"]) == int(total_steps) and all(str(k) in m["results"] for k in ks):
      return m
  except (OSError, ValueError, KeyError, TypeError):
    pass
  return None


def latest_checkpoint(run: Run) -> int:
  """The latest saved step of the run (0 when none)."""
  try:
    return max([int(n) for n in os.listdir(os.path.join(run.workdir, "checkpoints")) if n.isdigit()] or [0])
  except OSError:
    return 0


def _config_args(argv: Sequence[str]) -> List[str]:
  """The `--config=FILE[:arg]` and `--config.KEY=VALUE` items of the command line, in their order."""
  out, i = [], 0
  while i < len(argv):
    a = argv[i]
    if a == "--config" or (a.startswith("--config.") and "=" not in a):
      out += [a + "=" + argv[i + 1]] if i + 1 < len(argv) else [a]
      i += 2
      continue
    if a.startswith("--config=") or a.startswith("--config."):
      out.append(a)
    i += 1
  return out


def _value(v) -> str:
  return str(v) if not isinstance(v, (tuple, list)) else "(" + ",".join(map(str, v)) + ("," if len(v) == 1 else "") + ")"


def study_overrides(config, workdir: str) -> Dict[str, object]:
  """Overrides that every run of the study shares: data under the study's folder, eval at the end."""
  out = {"train.eval_at_end": True}
  if config.study.data_in_workdir:
    out["data.root"] = os.path.join(os.path.abspath(workdir), "data")
    out["data.tfds_data_dir"] = os.path.join(os.path.abspath(workdir), "tfds")
  return out


def run_command(config_args: Sequence[str], overrides: Dict[str, object], workdir: str) -> List[str]:
  return ([sys.executable, "-m", "rfgen_jax.main", *config_args] +
          [f"--config.{k}={_value(v)}" for k, v in overrides.items()] + [f"--workdir={workdir}"])


# -------------------------------------------------------------------------------------------- devices
def probe_devices() -> tuple[str, int]:
  """(platform, local device count), asked of a short subprocess so that this process never holds them."""
  code = "import jax, json; print(json.dumps([jax.default_backend(), jax.local_device_count()]))"
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  platform, count = json.loads(out.stdout.strip().splitlines()[-1])
  return platform, int(count)


def device_slots(parallel: int, platform: str, count: int) -> List[dict]:
  """Per slot: {"env": {...}, "cpus": [..] or None}; see the module docstring."""
  if parallel <= 1:
    return [{"env": {}, "cpus": None}]
  if platform == "tpu":
    raise UsageError(_TPU_PARALLEL)
  slots = []
  if platform == "gpu":
    if count >= parallel:
      per = count // parallel
      for s in range(parallel):
        slots.append({"env": {"CUDA_VISIBLE_DEVICES": ",".join(str(d) for d in range(s * per, (s + 1) * per))},
                      "cpus": None})
    else:
      share = math.ceil(parallel / count)
      for s in range(parallel):
        slots.append({"env": {"CUDA_VISIBLE_DEVICES": str(s % count),
                              "XLA_PYTHON_CLIENT_MEM_FRACTION": f"{0.9 / share:.3f}"}, "cpus": None})
    return slots
  cpus = sorted(os.sched_getaffinity(0))
  per = max(1, len(cpus) // parallel)
  for s in range(parallel):
    chunk = cpus[s * per:(s + 1) * per] or [cpus[s % len(cpus)]]
    slots.append({"env": {}, "cpus": chunk})
  return slots


# -------------------------------------------------------------------------------------------- progress
# A train step of the main job's progress line (rfgen_jax/train/progress.py), or of clu's metric lines.
_STEP = re.compile(r"(?:\bstep |\] \[)(\d+)(?:/\d+ stage |\] )")
_RESUME = re.compile(r"Resuming from step (\d+)")
_EVAL = re.compile(r"eval K=(\d+)")


def _fmt(seconds: Optional[float]) -> str:
  if seconds is None or not math.isfinite(seconds):
    return "?"
  seconds = int(round(seconds))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class Progress:
  """Tracks the runs from their log lines and prints one status line with the ETA of the whole study.

  The ETA: remaining train steps / the measured steps/s, plus per run not yet evaluated the measured
  start-up and evaluation time of the runs finished so far (before any: the current run's start-up),
  divided over the parallel slots.
  """

  def __init__(self, runs: Sequence[Run], total: int, parallel: int, stream=None, every: float = 30.0):
    self.runs = {r.name: r for r in runs}
    self.total, self.parallel = total, max(1, parallel)
    self.state = {r.name: {"phase": "queued", "step": latest_checkpoint(r), "t0": None, "t_train": None,
                           "marks": []} for r in runs}
    self.rates, self.overheads = [], []
    self.stream = stream or sys.stderr
    self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
    self.every, self.last_print = every, 0.0
    self.lock = threading.Lock()
    self.start = time.time()

  def mark_done(self, name: str, skipped: bool = False) -> None:
    with self.lock:
      st = self.state[name]
      st["phase"] = "skipped" if skipped else "done"
      st["step"] = self.total
      if not skipped and st["t0"] is not None:
        wall = time.time() - st["t0"]
        trained = self.total - st.get("first_step", 0)
        rate = self.rate()
        self.overheads.append(max(0.0, wall - (trained / rate if rate else 0.0)))

  def started(self, name: str) -> None:
    with self.lock:
      st = self.state[name]
      st.update(phase="starting", t0=time.time(), first_step=st["step"])

  def failed(self, name: str) -> None:
    with self.lock:
      self.state[name]["phase"] = "failed"

  def line(self, name: str, text: str) -> None:
    """Feeds one output line of run `name`."""
    now = time.time()
    with self.lock:
      st = self.state[name]
      m = _RESUME.search(text)
      if m:
        st["step"] = st["first_step"] = int(m.group(1))
      m = _STEP.search(text)
      if m:
        step = int(m.group(1))
        st["phase"], st["step"] = "train", step
        st["marks"].append((now, step))
        if len(st["marks"]) >= 2:
          (t_a, s_a), (t_b, s_b) = st["marks"][1], st["marks"][-1]   # the first mark includes compilation
          if len(st["marks"]) >= 3 and t_b > t_a:
            st["rate"] = (s_b - s_a) / (t_b - t_a)
      m = _EVAL.search(text)
      if m:
        st["phase"], st["k"] = "eval", int(m.group(1))

  def rate(self) -> Optional[float]:
    """Train steps/s of one run (mean over the runs measured so far)."""
    rates = [st["rate"] for st in self.state.values() if st.get("rate")]
    return sum(rates) / len(rates) if rates else None

  def eta(self) -> Optional[float]:
    rate = self.rate()
    if rate is None:
      return None
    if self.overheads:
      overhead = sum(self.overheads) / len(self.overheads)
    else:
      starts = [st["marks"][0][0] - st["t0"] for st in self.state.values() if st["marks"] and st["t0"]]
      overhead = 2 * max(starts) if starts else 0.0   # start-up, and about as much again for the eval
    work = 0.0
    for st in self.state.values():
      if st["phase"] in ("done", "skipped", "failed"):
        continue
      work += max(0, self.total - st["step"]) / rate
      if st["phase"] == "eval":
        work += overhead / 2
      elif st["phase"] in ("queued", "starting", "train"):
        work += overhead if st["phase"] == "queued" else overhead / 2
    active = sum(1 for st in self.state.values() if st["phase"] not in ("done", "skipped", "failed"))
    return work / max(1, min(self.parallel, active))

  def status(self) -> str:
    with self.lock:
      done = sum(1 for st in self.state.values() if st["phase"] in ("done", "skipped"))
      active = [f"{n} {'eval K=' + str(st.get('k')) if st['phase'] == 'eval' else st['phase']} "
                f"{st['step']}/{self.total}" for n, st in self.state.items()
                if st["phase"] in ("starting", "train", "eval")]
      rate = self.rate()
      eta = self.eta()
    speed = f"{rate:.2f} steps/s" if rate else "- steps/s"
    return (f"study: {done}/{len(self.state)} runs done | {', '.join(active) or '-'} | {speed} | "
            f"elapsed {_fmt(time.time() - self.start)} | ETA {_fmt(eta)}")

  def print(self, force: bool = False) -> None:
    now = time.time()
    if not force and not self.tty and now - self.last_print < self.every:
      return
    self.last_print = now
    text = self.status()
    if self.tty:
      self.stream.write("\r\033[K" + text)
    else:
      self.stream.write(text + "\n")
    self.stream.flush()

  def say(self, text: str) -> None:
    """A line of its own (a run started, finished or failed)."""
    self.stream.write(("\r\033[K" if self.tty else "") + text + "\n")
    self.stream.flush()


# -------------------------------------------------------------------------------------------- running
def _launch(run: Run, cmd: List[str], slot: dict, progress: Progress) -> subprocess.Popen:
  os.makedirs(run.workdir, exist_ok=True)
  with open(os.path.join(run.workdir, "command.txt"), "w") as f:
    env_text = " ".join(f"{k}={v}" for k, v in slot["env"].items())
    f.write((env_text + " " if env_text else "") + " ".join(cmd) + "\n")
  env = dict(os.environ, **slot["env"])
  env.setdefault("PYTHONUNBUFFERED", "1")
  log = open(os.path.join(run.workdir, "log.txt"), "a", buffering=1)   # line-buffered: tail -f works
  log.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n")
  proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                          start_new_session=True, bufsize=1)
  if slot["cpus"]:
    try:
      os.sched_setaffinity(proc.pid, slot["cpus"])
    except OSError:
      pass
  progress.started(run.name)

  def pump():
    for text in proc.stdout:
      log.write(text)
      progress.line(run.name, text)
    log.close()

  proc.pump = threading.Thread(target=pump, daemon=True)
  proc.pump.start()
  return proc


def _tail(path: str, n: int = 15) -> str:
  try:
    with open(path) as f:
      return "".join(f.readlines()[-n:])
  except OSError:
    return ""


def run_study(runs: List[Run], config_args: List[str], shared: Dict[str, object], total: int,
              ks: Sequence[int], slots: List[dict], progress: Progress) -> List[str]:
  """Runs what is not finished, `len(slots)` at a time; returns the names of the failed runs."""
  pending = []
  for r in runs:
    if finished(r, total, ks) is not None:
      progress.mark_done(r.name, skipped=True)
      progress.say(f"study: {r.name} is finished ({r.workdir}/eval/metrics.json): skipped.")
    else:
      pending.append(r)
  free = list(range(len(slots)))
  active: Dict[int, tuple] = {}
  failed = []
  try:
    while pending or active:
      while pending and free:
        r, slot = pending.pop(0), free.pop(0)
        cmd = run_command(config_args, {**shared, **r.overrides}, r.workdir)
        step = latest_checkpoint(r)
        progress.say(f"study: {r.name} " + (f"resumes from step {step}" if step else "starts") +
                     f" (log: {r.workdir}/log.txt).")
        active[slot] = (r, _launch(r, cmd, slots[slot], progress))
      for slot, (r, proc) in list(active.items()):
        if proc.poll() is None:
          continue
        proc.pump.join()
        del active[slot]
        free.append(slot)
        if proc.returncode == 0 and finished(r, total, ks) is not None:
          progress.mark_done(r.name)
          progress.say(f"study: {r.name} finished.")
        else:
          progress.failed(r.name)
          failed.append(r.name)
          progress.say(f"study: {r.name} FAILED (exit {proc.returncode}); the end of "
                       f"{r.workdir}/log.txt:\n{_tail(os.path.join(r.workdir, 'log.txt'))}")
      progress.print()
      time.sleep(0.5)
  except BaseException:
    for r, proc in active.values():
      if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    for r, proc in active.values():
      try:
        proc.wait(timeout=60)
      except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    progress.say("study: interrupted; rerun the same command to resume (finished runs are skipped, the "
                 "others resume from their latest checkpoint).")
    raise
  progress.print(force=True)
  if progress.tty:
    progress.stream.write("\n")
  return failed


def write_results(config, workdir: str, runs: List[Run], total: int, ks: Sequence[int]) -> Optional[dict]:
  by_variant: Dict[str, Dict[int, dict]] = {}
  for r in runs:
    m = finished(r, total, ks)
    if m is not None:
      by_variant.setdefault(r.variant, {})[r.seed] = m
  if not by_variant:
    return None
  s = config.study
  scored = sorted({int(n) for seeds in by_variant.values() for m in seeds.values()
                   for n in m.get("num_tuples", {}).values()})   # what was scored, not eval.max_tuples
  tuples_text = " or ".join(str(n) for n in scored) if scored else "?"
  notes = ["", f"{len([r for r in runs if r.variant in by_variant])} runs of {total} steps each "
           f"({config.train.flow_warmup_steps} of flow warm-up), model.width {config.model.width}, "
           f"image {tuple(config.data.image_size)}, batch {config.train.batch_size}, training K = "
           f"{config.data.num_sources}; data {config.data.name} with misalignment "
           f"{dict(config.data.synthetic_misalign) if config.data.name == 'synthetic' else 'n/a'}; "
           f"{tuples_text} test tuples scored per K (eval.max_tuples {config.eval.max_tuples or 'all'})."]
  labels = {v: VARIANTS[v][0] for v in VARIANTS}
  return report.write_report(workdir, by_variant, ORDER, labels, ks, tuple(s.metrics), "full",
                             tuple(s.plot_metrics), extra={"runs": {r.name: r.workdir for r in runs}},
                             notes=notes)


def _prepare(config_args: List[str], shared: Dict[str, object]) -> None:
  """Generates and prepares the data set once, in a subprocess (no device is held by this process)."""
  cmd = ([sys.executable, "-m", "rfgen_jax.experiments.ablation", *config_args] +
         [f"--config.{k}={_value(v)}" for k, v in shared.items()] + ["--workdir=.", "--prepare_only"])
  out = subprocess.run(cmd, capture_output=True, text=True)
  if out.returncode == 2:   # a user error (no data at data.root, ...): its one line is the message
    lines = out.stderr.strip().splitlines()
    raise errors.UserError(lines[-1].split(": ", 1)[-1] if lines else "preparing the data set failed.")
  if out.returncode != 0:
    raise RuntimeError("Preparing the data set failed:\n" + (out.stdout + out.stderr)[-3000:])


def main(argv) -> int:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  config = FLAGS.config
  if FLAGS.prepare_only:
    from rfgen_jax import data  # pylint: disable=g-import-not-at-top
    data.ensure_dataset(config)
    return 0
  if "study" not in config:
    raise UsageError(f"--config has no `study` section; use configs/ablation.py (or add its keys).")
  s = config.study
  try:
    seeds = [int(x) for x in (FLAGS.seeds if FLAGS.seeds is not None else s.seeds)]
  except ValueError:
    raise UsageError(f"--seeds must be integers, got {FLAGS.seeds}.") from None
  variants = list(FLAGS.variants if FLAGS.variants is not None else s.variants)
  seed_variants = list(FLAGS.seed_variants if FLAGS.seed_variants is not None else s.seed_variants)
  parallel = int(FLAGS.parallel if FLAGS.parallel is not None else s.parallel)
  if parallel < 1:
    raise UsageError(f"--parallel must be >= 1, got {parallel}.")
  workdir = os.path.abspath(FLAGS.workdir)
  runs = plan_runs(workdir, variants, seeds, seed_variants)
  total, ks = int(config.train.total_steps), tuple(int(k) for k in config.eval.num_sources)
  config_args = _config_args(sys.argv[1:])
  shared = study_overrides(config, workdir)
  failed = []
  if not FLAGS.report_only:
    slots = device_slots(parallel, *(probe_devices() if parallel > 1 else ("", 1)))
    progress = Progress(runs, total, len(slots))
    if any(finished(r, total, ks) is None for r in runs):   # the data are checked before anything is written
      progress.say(f"study: {len(runs)} runs in {workdir}; preparing the data set.")
      _prepare(config_args, shared)
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "study.json"), "w") as f:
    json.dump({"config_args": config_args, "shared_overrides": shared, "total_steps": total, "ks": ks,
               "runs": [dataclasses.asdict(r) for r in runs]}, f, indent=2, default=str)
  if not FLAGS.report_only:
    failed = run_study(runs, config_args, shared, total, ks, slots, progress)
  result = write_results(config, workdir, runs, total, ks)
  if result is not None:
    with open(os.path.join(workdir, "table4.md")) as f:
      print(f.read())
    print(f"Wrote {workdir}/table4.md, table4.json and table4.png.")
  if failed:
    print(f"study: {len(failed)} run(s) failed: {', '.join(failed)} (see their log.txt); rerun to retry.",
          file=sys.stderr)
    return 1
  return 0


def _entry(argv):
  """main; a user error (`errors.UserError`) is one line and exit status 2 (`cli.run`)."""
  try:
    sys.exit(main(argv))
  except KeyboardInterrupt:
    sys.exit(130)


def _parse_flags(argv):
  """absl flag parsing; a mistyped `--config.KEY` is one line and exit status 2 (as `rfgen_jax.main`)."""
  try:
    return app.parse_flags_with_usage(argv)
  except (AttributeError, KeyError) as e:   # raised by the locked ConfigDict for an unknown key
    message = str(e).strip("'\"").replace("\\n", " ").replace("\n", " ")
    print(f"{argv[0]}: unknown config key ({message}). Every key is listed in configs/common.py and "
          "configs/ablation.py.", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  define_flags()
  cli.run(_entry, flags_parser=_parse_flags)
