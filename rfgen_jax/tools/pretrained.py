r"""Released models: list them, verify one, and release a finished training run (docs/pretrained.md).

    python -m rfgen_jax.tools.pretrained --list
    python -m rfgen_jax.tools.pretrained --verify NAME|FOLDER
    python -m rfgen_jax.tools.pretrained --release --workdir=RUN --name=NAME --description "one line" \
        [--command "the training command"]... [--machine "where it trained"] [--notes "..."] \
        [--out_dir pretrained] [--check_tuples 8] [--data_root DIR] [--tfds_data_dir DIR] [--overwrite]

`--list` prints each release in `pretrained/`: name, resolution, K, steps, size, description.
`--verify` checks every file of a release against its manifest (exit status 2 naming a damaged file).

`--release` turns a finished run into `<out_dir>/<NAME>/` (the format: `rfgen_jax/runtime/pretrained.py`):
the EMA generator parameters of the run's latest checkpoint (`inference.restore_generator`) as
`params.safetensors`, `RUN/config.json` byte for byte, `RUN/eval/samples_K<K>.png` as `samples.png`
(K = `data.num_sources`, the training K), `examples/` (the images and keypoints of the first evaluation
tuple, to try the model without any data), `MODEL_CARD.md` and the manifest `card.json`. The run must
have been evaluated at its last step (`RUN/eval/metrics.json`, `eval/table.md`: `--mode=eval`). The
card's facts come from the run: the config, the eval table, the training's wall time read from the
run's TensorBoard event files (from each file's first event to its last: compilation and steps, not the
data preparation or the final evaluation; the trainer records no other duration), and what the flags
state (`--command`, `--machine`, `--notes`), marked as stated by the releaser.

The release is checked before it is kept: read back through `pretrained.load_release`, the generator
remakes the run's own evaluation images of the first `--check_tuples` tuples (the largest difference, in
8-bit levels, goes in the card), and its SSIM / PSNR / L1 on those tuples are stored in the card's
`check`, which tests/test_pretrained.py recomputes. The check reads the test split of the config's data
set (`--data_root`, `--tfds_data_dir` point elsewhere; the synthetic data are generated if absent).
"""
from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
from typing import Sequence

import jax
import ml_collections
import numpy as np
from PIL import Image

from rfgen_jax import cli
from rfgen_jax import config_utils
from rfgen_jax import data
from rfgen_jax import errors
from rfgen_jax import inference
from rfgen_jax import models
from rfgen_jax.evaluation import image_files
from rfgen_jax.evaluation import loop
from rfgen_jax.runtime import pretrained
from rfgen_jax.runtime import sharding

CHECK_EVALUATORS = ("ssim_psnr_l1", "pngs")
# Two programs compiled differently (the run's evaluation and this check) round differently: measured 1
# level on the demo; a model that computes something else is tens of levels apart.
MAX_LEVEL_DIFFERENCE = 4
EXAMPLES = "examples"


# ------------------------------------------------------------------------------------------ listing
def describe(name: str) -> dict:
  """One release's line for `--list`: name, resolution, K, steps, MB, description (from its card.json)."""
  directory = pretrained.resolve(name)
  card = pretrained.read_manifest(directory)
  model, training = card.get("model", {}), card.get("training", {})
  h, w = model.get("image_size", ["?", "?"])
  return {"name": card.get("name", name), "resolution": f"{h}x{w}", "K": model.get("train_num_sources", "?"),
          "steps": training.get("steps", "?"), "mb": pretrained.folder_bytes(directory) / 1e6,
          "description": card.get("description", "")}


def format_list(rows: Sequence[dict]) -> str:
  """The table `--list` prints."""
  if not rows:
    return f"No released models in {pretrained.releases_dir()}."
  header = ("name", "resolution", "K", "steps", "size", "description")
  cells = [header] + [(r["name"], r["resolution"], str(r["K"]), str(r["steps"]), f"{r['mb']:.1f} MB",
                       r["description"]) for r in rows]
  widths = [max(len(c[i]) for c in cells) for i in range(len(header) - 1)]
  return "\n".join("  ".join(c[i].ljust(widths[i]) for i in range(len(widths))) + "  " + c[-1]
                   for c in cells)


# ------------------------------------------------------------------------------------------ the run
def _read_json(path: str, what: str) -> dict:
  if not os.path.isfile(path):
    raise errors.MissingFileError(f"{path} does not exist; {what}.")
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise errors.BadInputError(f"{path} cannot be read ({cli.one_line(e)}); {what}.") from None


def training_wall_time(workdir: str) -> dict:
  """The wall time the run's TensorBoard event files span.

  Returns:
    {"seconds": sum over the event files (one per training session: a resumed run writes another) of
    the last event's wall time minus the first's, or None without event files; "files": their count}.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  (heavy; clu's writers import it already)
  total, paths = 0.0, sorted(glob.glob(os.path.join(workdir, "events.out.tfevents.*")))
  for path in paths:
    times = [event.wall_time for event in tf.compat.v1.train.summary_iterator(path)]
    if times:
      total += max(times) - min(times)
  return {"seconds": round(total, 1) if paths else None, "files": len(paths)}


def format_duration(seconds: float) -> str:
  """1202.9 -> '20 min 3 s'; 3725 -> '1 h 2 min 5 s'."""
  s = int(round(seconds))
  h, rest = divmod(s, 3600)
  m, s = divmod(rest, 60)
  return " ".join(p for p in ((f"{h} h" if h else ""), (f"{m} min" if h or m else ""), f"{s} s") if p)


def _git_commit() -> str | None:
  """The repository's HEAD commit (short), or None outside a git clone."""
  try:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=pretrained.repository_root(),
                         capture_output=True, text=True, timeout=10, check=False)
  except (OSError, subprocess.SubprocessError):
    return None
  return out.stdout.strip() or None


def _cpu_name() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


# ------------------------------------------------------------------------------------------ the check
def check_config(config, num_sources: int, num_tuples: int, data_root: str | None = None,
                 tfds_data_dir: str | None = None) -> ml_collections.ConfigDict:
  """A copy of `config` evaluating only the first `num_tuples` tuples of K = `num_sources`."""
  config = ml_collections.ConfigDict(config.to_dict())
  config.eval.num_sources = [int(num_sources)]
  config.eval.max_tuples = int(num_tuples)
  if data_root:
    config.data.root = data_root
  if tfds_data_dir:
    config.data.tfds_data_dir = tfds_data_dir
  return config


def check_metrics(config, params, num_sources: int, num_tuples: int, out_dir: str | None = None,
                  data_root: str | None = None, tfds_data_dir: str | None = None) -> dict:
  """SSIM, PSNR, L1 (and their person-region forms) of the first `num_tuples` evaluation tuples of K.

  The evaluation's own loop (`rfgen_jax.evaluation.loop.evaluate_generator`: the fixed seeded tuples,
  generation, 8-bit quantisation, the metrics), on one device.

  Args:
    config: the model's config (data set, image size, tuple seed).
    params: the generator's params tree (host or device arrays).
    num_sources, num_tuples: K and how many of the first tuples.
    out_dir: where `images_K<K>/*.png` of the generated images go (None: not written).
    data_root, tfds_data_dir: the data set's folders when not the config's.

  Returns:
    {"num_sources": K, "tuples": [[source names..., target name]], "metrics": {name: float}}.
  """
  config = check_config(config, num_sources, num_tuples, data_root, tfds_data_dir)
  data.ensure_dataset(config)
  mesh = sharding.make_mesh((1, 1), devices=jax.local_devices()[:1])
  generator = models.build_generator(config)
  rep, batch_sharding = sharding.replicated(mesh), sharding.data_sharded(mesh)
  generate = jax.jit(
      lambda p, b: generator.apply({"params": p}, b["source_images"], b["source_poses"],
                                   b["target_pose"])["image"].astype(np.float32),
      in_shardings=(rep, batch_sharding), out_shardings=batch_sharding)
  params = jax.device_put(params, rep)
  evaluators = CHECK_EVALUATORS if out_dir else CHECK_EVALUATORS[:1]
  report = loop.evaluate_generator(config, generate, params, 0, out_dir, evaluators, mesh)
  tuples = data.create_eval_batches(config, num_sources, 0, 1).names
  return {"num_sources": int(num_sources), "tuples": [list(t) for t in tuples],
          "metrics": {k: float(v) for k, v in sorted(report["results"][str(num_sources)].items())}}


def check_release(release: pretrained.Release, data_root: str | None = None,
                  tfds_data_dir: str | None = None) -> dict:
  """`check_metrics` of a release on the tuples its card's `check` names (what tests recompute)."""
  check = release.card["check"]
  return check_metrics(release.config, release.params, check["num_sources"], len(check["tuples"]),
                       data_root=data_root, tfds_data_dir=tfds_data_dir)


def max_level_difference(generated_dir: str, run_dir: str, tuples: Sequence[Sequence[str]]) -> int:
  """The largest |difference| in 8-bit levels between the PNGs of `tuples` in two `images_K<K>` folders."""
  worst, used = 0, set()
  for row in tuples:
    name = image_files.png_name(row, used)
    paths = [os.path.join(generated_dir, name), os.path.join(run_dir, name)]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
      raise errors.MissingFileError(f"{missing[0]} does not exist: the run's evaluation images do not match "
                                    "its tuples; evaluate the run again (--mode=eval).")
    a, b = (np.asarray(Image.open(p).convert("RGB"), np.int16) for p in paths)
    worst = max(worst, int(np.abs(a - b).max()))
  return worst


# ------------------------------------------------------------------------------------------ examples
def write_examples(config, directory: str, num_sources: int, data_root: str | None = None,
                   tfds_data_dir: str | None = None) -> dict:
  """`examples/`: the first evaluation tuple's K source images and target image (PNG, the model's size)
  and `keypoints.csv` of all of them (annotation format, (y, x) at the model's size, -1 missing).

  Returns {"sources": [file names], "target": file name, "keypoints": "keypoints.csv"}."""
  config = check_config(config, num_sources, 1, data_root, tfds_data_dir)
  batches = data.create_eval_batches(config, num_sources, 0, 1)
  batch, names = next(iter(batches)), batches.names[0]
  os.makedirs(directory, exist_ok=True)
  to_u8 = lambda x: np.clip(np.round((np.asarray(x, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)
  images = list(batch["source_images"][0]) + [batch["target_image"][0]]
  keypoints = list(batch["source_keypoints"][0]) + [batch["target_keypoints"][0]]
  files = [os.path.basename(n) for n in names]
  lines = ["name:keypoints_y:keypoints_x"]
  for file, image, kp in zip(files, images, keypoints):
    Image.fromarray(to_u8(image)).save(os.path.join(directory, file))
    kp = np.asarray(kp, np.float64)
    lines.append(f"{file}: {json.dumps([float(v) for v in kp[:, 0]])}: {json.dumps([float(v) for v in kp[:, 1]])}")
  with open(os.path.join(directory, "keypoints.csv"), "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")
  return {"sources": files[:-1], "target": files[-1], "keypoints": "keypoints.csv"}


# ------------------------------------------------------------------------------------------ the card
def _table_lines(table_md: str) -> list[str]:
  """The eval table's heading line and its markdown table rows."""
  lines = table_md.splitlines()
  return [l for l in lines if l.startswith("|")]


def model_card_markdown(card: dict, table_md: str) -> str:
  """MODEL_CARD.md of a release (every fact from `card`, the eval table from the run's table.md)."""
  name, model, training, ev, check = card["name"], card["model"], card["training"], card["eval"], card["check"]
  rel = f"pretrained/{name}"
  ex = card["examples"]
  h, w = model["image_size"]
  k = model["train_num_sources"]
  wall = training["wall_time"]
  wall_text = (f"{format_duration(wall['seconds'])} ({wall['seconds']} s), from the run's "
               f"{wall['files']} TensorBoard event file(s): the span of their events (compilation and "
               "the training steps; not the data preparation or the final evaluation)"
               if wall["seconds"] is not None else
               "not recorded: the run has no TensorBoard event files, and the trainer writes no other duration")
  machine = training.get("machine") or "not recorded (the run does not record its machine; no --machine was given)"
  commands = training.get("commands") or []
  sources = ",".join(f"{rel}/{EXAMPLES}/{s}" for s in ex["sources"])
  skipped = ", ".join(s["metric"] for s in ev.get("skipped", []))
  lines = [
      f"# {name}", "",
      card["description"], "",
      "A released model of rfgen_jax (format and commands: [docs/pretrained.md](../../docs/pretrained.md)). "
      "The files are verified against `card.json` on load.", "",
      "## Try it", "",
      "```bash",
      f"python -m rfgen_jax.tools.generate --pretrained={name} --sources {sources} \\",
      f"    --keypoints {rel}/{EXAMPLES}/{ex['keypoints']} --target_pose {ex['target']} --out out.png",
      f"python -m rfgen_jax.tools.animate --pretrained={name} --test_tuple 0 --out walk.mp4",
      f"python -m rfgen_jax.tools.app --pretrained={name}          # needs requirements-app.txt",
      f"python -m rfgen_jax.tools.export --pretrained={name} --out {name}.jaxexport",
      f"python -m rfgen_jax.main --mode=eval --pretrained={name} --workdir=workdirs/{name}-eval",
      "```", "",
      f"`examples/` holds the first evaluation tuple of K = {k} ({', '.join(ex['sources'])} -> "
      f"{ex['target']}, the target's real image included) and their keypoints; the animation, the app and "
      "the evaluation read the data set the config names"
      + (" (the synthetic people are generated on first use, in seconds)." if model["data"] == "synthetic" else "."),
      "",
      "## Model", "",
      "| | |", "| --- | --- |",
      f"| data | `{model['data']}` (`data.root` = `{model['data_root']}`) |",
      f"| resolution | {h}x{w} |",
      f"| pose | {model['pose_kind']} ({model['pose_channels']} channels) |",
      f"| K | trained with K = {k}; runs with any K >= 1 |",
      f"| generator | width {model['width']}, fusion levels {model['levels']}, {model['parameters']:,} parameters "
      "(the EMA of the weights) |",
      f"| training | {training['steps']:,} steps: {training['flow_warmup_steps']:,} flow warm-up, "
      f"{training['steps'] - training['flow_warmup_steps']:,} end to end; batch {training['batch_size']}, "
      f"lr {training['learning_rate']}, EMA decay {training['ema_decay']} |",
      f"| wall time | {wall_text} |",
      f"| machine | {machine} |",
      "", "The full config is `config.json` (the run's own file).", "",
      "## Commands", "",
      "Training (as stated by the releaser):", "",
      "```bash", *(commands or ["# not stated (no --command was given)"]), "```", "",
      "Release (recorded):", "", "```bash", card["released"]["command"], "```", "",
  ]
  if training.get("notes"):
    lines += ["Notes (the releaser's):", "", training["notes"], ""]
  lines += [
      "## Evaluation", "",
      f"The run's `eval/table.md` at step {ev['step']} ({', '.join(f'K = {kk}: {n} tuples' for kk, n in ev['num_tuples'].items())}"
      "; \"person\" = over the target pose's limb mask):", "",
      *_table_lines(table_md), "",
  ]
  if skipped:
    lines += [f"Skipped: {skipped} (their weight files were not set; "
              "[docs/evaluation.md](../../docs/evaluation.md)).", ""]
  metrics = check["metrics"]
  lines += [
      f"**Check** (`card.json` `check`, recomputed by tests/test_pretrained.py): the first "
      f"{len(check['tuples'])} tuples of K = {check['num_sources']}, generated from the released file: "
      + ", ".join(f"{m} {v:.4f}" for m, v in metrics.items())
      + f"; they remake the run's own evaluation images to within {check['max_level_difference_vs_run']} "
      "8-bit level(s).", "",
      "## Samples", "",
      f"The run's evaluation samples at step {ev['step']}, K = {k} (each row: "
      + " | ".join([f"source {i + 1}" for i in range(k)] + ["target pose", "generated", "ground truth"]) + "):", "",
      "![samples](samples.png)", "",
      "## Released", "",
      f"{card['released']['date']}, rfgen_jax {card['released']['commit'] or '(not a git clone)'}, "
      f"jax {card['released']['jax']}, {card['released']['cpu']} (the check's numbers are from this machine).", "",
  ]
  return "\n".join(lines)


def _model_facts(config, params) -> dict:
  leaves = jax.tree.leaves(params)
  return {
      "data": config.data.name, "data_root": config.data.root,
      "image_size": [int(s) for s in config.data.image_size],
      "pose_kind": data.pose_kind(config), "pose_channels": int(config.data.pose_channels),
      "train_num_sources": int(config.data.num_sources), "width": float(config.model.width),
      "levels": [int(l) for l in config.model.levels],
      "parameters": int(sum(int(np.size(x)) for x in leaves)),
  }


def release_run(workdir: str, name: str, description: str, out_dir: str | None = None,
                commands: Sequence[str] = (), machine: str | None = None, notes: str | None = None,
                check_tuples: int = 8, data_root: str | None = None, tfds_data_dir: str | None = None,
                overwrite: bool = False, command_line: str = "") -> str:
  """Writes the release `<out_dir>/<name>/` of a finished, evaluated run (module docstring); returns its
  folder. Nothing is left behind on an error (the files are written into a temporary folder first)."""
  if not pretrained.NAME_PATTERN.match(name or ""):
    raise errors.BadInputError(f"--name={name!r}: use lower-case letters, digits, '.', '_' and '-' "
                               "(e.g. people-128x64), starting with a letter or digit.")
  if not description or "\n" in description:
    raise errors.BadInputError("--description must be one line saying what the model is.")
  if check_tuples < 1:
    raise errors.BadInputError(f"--check_tuples must be >= 1, got {check_tuples}.")
  out_dir = os.path.abspath(out_dir or pretrained.releases_dir())
  final = os.path.join(out_dir, name)
  if os.path.exists(final) and not overwrite:
    raise errors.OutputExistsError(f"{final} already exists; pass --overwrite to replace it, or choose "
                                   "another --name.")
  if not os.path.isdir(workdir):
    raise errors.MissingFileError(f"--workdir={workdir} does not exist; give a finished training run's folder.")
  # The run's config.json, keys added since it trained filled with their defaults (as a release is read
  # back); the check below shows whether they change what the model computes.
  config = pretrained.complete_config(
      _read_json(os.path.join(workdir, "config.json"), "give a training run's folder (it writes config.json)"),
      os.path.join(workdir, "config.json"))
  k = int(config.data.num_sources)
  evaluated = "evaluate the run first: python -m rfgen_jax.main --mode=eval --config=... --workdir=" + workdir
  metrics = _read_json(os.path.join(workdir, "eval", "metrics.json"), evaluated)
  table_path = os.path.join(workdir, "eval", "table.md")
  samples_path = os.path.join(workdir, "eval", f"samples_K{k}.png")
  run_images = os.path.join(workdir, "eval", f"images_K{k}")
  for path in (table_path, samples_path, run_images):
    if not os.path.exists(path):
      raise errors.MissingFileError(f"{path} does not exist; {evaluated}.")
  _, params, step = inference.restore_generator(config, workdir, None, use_ema=True)
  if int(metrics.get("step", -1)) != int(step):
    raise errors.BadInputError(f"{workdir}/eval/metrics.json is of step {metrics.get('step')} but the latest "
                               f"checkpoint is step {step}; {evaluated}.")
  params = jax.tree.map(lambda a: np.asarray(jax.device_get(a), np.float32), params)
  with open(table_path, encoding="utf-8") as f:
    table_md = f.read()
  os.makedirs(out_dir, exist_ok=True)
  staging = tempfile.mkdtemp(prefix=f".{name}.", dir=out_dir)
  try:
    pretrained.save_params(os.path.join(staging, pretrained.PARAMS_FILE), params,
                           {"name": name, "step": str(step)})
    shutil.copyfile(os.path.join(workdir, "config.json"), os.path.join(staging, pretrained.CONFIG_FILE))
    shutil.copyfile(samples_path, os.path.join(staging, pretrained.SAMPLES_FILE))
    examples = write_examples(config, os.path.join(staging, EXAMPLES), k, data_root, tfds_data_dir)
    # The check reads the release back as a user would get it: the written file and config.json.
    loaded_config = pretrained.read_config(staging)
    loaded = pretrained.load_params(os.path.join(staging, pretrained.PARAMS_FILE))
    pretrained.check_params(loaded, loaded_config, pretrained.PARAMS_FILE)
    with tempfile.TemporaryDirectory() as scratch:
      check = check_metrics(loaded_config, loaded, k, check_tuples, out_dir=scratch, data_root=data_root,
                            tfds_data_dir=tfds_data_dir)
      check["max_level_difference_vs_run"] = max_level_difference(
          os.path.join(scratch, f"images_K{k}"), run_images, check["tuples"])
    if check["max_level_difference_vs_run"] > MAX_LEVEL_DIFFERENCE:
      missing = config_utils.keys_missing_from(
          _read_json(os.path.join(workdir, "config.json"), "give a training run's folder"))
      raise errors.BadInputError(
          f"The released parameters do not remake the run's evaluation images ({workdir}/eval/images_K{k}: "
          f"up to {check['max_level_difference_vs_run']} 8-bit levels apart, more than "
          f"{MAX_LEVEL_DIFFERENCE}): today's code computes another model from config.json"
          + (f" (keys added since, read with their defaults: {', '.join(missing)})" if missing else "")
          + "; release it with the rfgen_jax that trained it, or evaluate the run again.")
    train = config.train
    card = {
        "name": name, "description": description,
        "model": _model_facts(config, params),
        "training": {
            "steps": int(step), "flow_warmup_steps": int(train.flow_warmup_steps),
            "batch_size": int(train.batch_size), "learning_rate": float(train.learning_rate),
            "ema_decay": float(train.ema_decay), "wall_time": training_wall_time(workdir),
            "machine": machine, "commands": list(commands), "notes": notes,
            "workdir": os.path.abspath(workdir),
        },
        "eval": {"step": int(metrics["step"]), "results": metrics["results"],
                 "num_tuples": metrics.get("num_tuples", {}),
                 "skipped": [{"metric": s["metric"]} for s in metrics.get("skipped", [])],
                 **{key: v for key, v in metrics.items() if key.startswith("source_use")}},
        "check": check,
        "examples": examples,
        "released": {"date": datetime.date.today().isoformat(), "commit": _git_commit(),
                     "jax": jax.__version__, "cpu": _cpu_name(), "command": command_line},
    }
    with open(os.path.join(staging, pretrained.CARD_FILE), "w", encoding="utf-8") as f:
      f.write(model_card_markdown(card, table_md))
    pretrained.write_manifest(staging, card)
    pretrained.verify(staging)
    if os.path.exists(final):
      shutil.rmtree(final)
    os.replace(staging, final)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  return final


# ------------------------------------------------------------------------------------------ main
@cli.exit_2_on_user_error   # a user error: one line on stderr, exit status 2 (rfgen_jax/errors.py)
def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m rfgen_jax.tools.pretrained",
                                   description="List, verify and release pretrained models.")
  action = parser.add_mutually_exclusive_group(required=True)
  action.add_argument("--list", action="store_true", help="list the released models in pretrained/")
  action.add_argument("--verify", metavar="NAME", default=None, help="verify a release's checksums")
  action.add_argument("--release", action="store_true", help="release a finished training run")
  parser.add_argument("--workdir", default=None, help="--release: the finished, evaluated run")
  parser.add_argument("--name", default=None, help="--release: the release's name, e.g. people-128x64")
  parser.add_argument("--description", default=None, help="--release: one line saying what the model is")
  parser.add_argument("--command", action="append", default=[],
                      help="--release: a command that trained the run (repeatable), for the card")
  parser.add_argument("--machine", default=None, help="--release: where the run trained, for the card")
  parser.add_argument("--notes", default=None, help="--release: a paragraph for the card")
  parser.add_argument("--out_dir", default=None, help="--release: where the release folder goes "
                                                       "(default: the repository's pretrained/)")
  parser.add_argument("--check_tuples", type=int, default=8, help="--release: evaluation tuples checked")
  parser.add_argument("--data_root", default=None, help="--release: the data set's folder for the check "
                                                         "(default: the run's data.root)")
  parser.add_argument("--tfds_data_dir", default=None, help="--release: the TFDS folder for the check")
  parser.add_argument("--overwrite", action="store_true", help="--release: replace an existing release")
  args = parser.parse_args(argv)
  if args.list:
    print(format_list([describe(n) for n in pretrained.available()]))
    return 0
  if args.verify:
    card = pretrained.verify(pretrained.resolve(args.verify))
    print(f"{card.get('name')}: {len(card['files'])} files verified against their sha256 in "
          f"{pretrained.MANIFEST}.")
    return 0
  for flag in ("workdir", "name", "description"):
    if not getattr(args, flag):
      raise errors.BadInputError(f"--release needs --{flag}.")
  command_line = "python -m rfgen_jax.tools.pretrained " + " ".join(
      shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
  final = release_run(args.workdir, args.name, args.description, args.out_dir, args.command, args.machine,
                      args.notes, args.check_tuples, args.data_root, args.tfds_data_dir, args.overwrite,
                      command_line)
  print(f"Released {args.workdir} as {final} ({pretrained.folder_bytes(final) / 1e6:.1f} MB).")
  return 0


if __name__ == "__main__":
  sys.exit(main())
