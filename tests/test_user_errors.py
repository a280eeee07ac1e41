"""A user's mistake at an entry point ends in one line on stderr and exit status 2, without a traceback, and a
run that could not start leaves no file behind (docs/design.md, "### Entry points"; rfgen_jax/errors.py).

Every case runs its entry point as `python -m <module> ARGS` would: one interpreter imports the libraries the
programs share (jax, TensorFlow, flax, ...; ~6 s) and the project once, then forks a child per case that runs
the module with `runpy` (the pattern of tests/test_entry_points.py), two at a time. Each case writes only
under its own folder, which must hold no file afterwards (or not exist, when the run was to create it).
"""
import json
import os

import numpy as np
from PIL import Image
import pytest

from rfgen_jax import cli, errors
from tests import data_fixtures
from tests import forked_runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = "configs/synthetic.py:tiny"
MARKET = "configs/market.py:runlocal"



def _write_inputs(d: str) -> dict:
  """The files the cases read: a Market-layout fixture, an empty folder, a photo with its keypoints, a
  malformed keypoint CSV, an unreadable weight file, existing outputs. Returns {name: path}."""
  p = {name: os.path.join(d, name) for name in (
      "market", "empty_root", "photo.png", "kp.csv", "bad_kp.csv", "garbage.npz", "taken.png", "taken.gif",
      "taken.jaxexport", "taken.csv", "dataset_out", "real")}
  data_fixtures.write_market_fixture(p["market"])
  os.makedirs(p["empty_root"])
  Image.fromarray(np.full((64, 32, 3), 128, np.uint8)).save(p["photo.png"])
  ys, xs = list(range(5, 59, 3)), [16] * 18
  with open(p["kp.csv"], "w") as f:
    f.write(f"name:keypoints_y:keypoints_x\nphoto.png: {json.dumps(ys)}: {json.dumps(xs)}\n")
  with open(p["bad_kp.csv"], "w") as f:
    f.write("name:keypoints_y:keypoints_x\nphoto.png: [1, 2, 3]: [4, 5]\n")
  for name in ("garbage.npz", "taken.png", "taken.gif", "taken.jaxexport", "taken.csv"):
    with open(p[name], "w") as f:
      f.write("not what the program expects\n")
  os.makedirs(os.path.join(p["dataset_out"], "train"))
  os.makedirs(p["real"])
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(os.path.join(p["real"], "a.png"))
  return p


def _cases(i: dict, w) -> list:
  """(name, module, argv, words the message must hold, whether the case's folder existed before).

  `w(name)` is the case's own folder (for workdirs and outputs); `i` the inputs of `_write_inputs`.
  """
  main, gen = "rfgen_jax.main", "rfgen_jax.tools.generate"
  photo = ["--sources", i["photo.png"], "--keypoints", i["kp.csv"], "--target_pose", "photo.png"]
  return [
      # ------------------------------------------------------------------ rfgen_jax.main, eval and train
      ("eval_no_checkpoint", main, [f"--config={TINY}", f"--workdir={w('eval_no_checkpoint')}", "--mode=eval"],
       ["No checkpoint in", "train first"], True),
      ("train_missing_data_root", main,
       [f"--config={MARKET}", f"--workdir={w('train_missing_data_root')}/run", "--config.data.root=/nonexistent/m",
        "--config.losses.allow_random_vgg=True"],
       ["Market-1501 was not found at /nonexistent/m", "--config.data.root"], False),
      ("train_empty_data_root", main,
       [f"--config={MARKET}", f"--workdir={w('train_empty_data_root')}/run", f"--config.data.root={i['empty_root']}",
        "--config.losses.allow_random_vgg=True"],
       ["is incomplete", "market-annotation-train.csv", "--config.data.root"], False),
      ("train_missing_folder_root", main,   # your own images (configs/folder.py)
       [f"--config=configs/folder.py:tiny", f"--workdir={w('train_missing_folder_root')}/run",
        "--config.data.root=/nonexistent/photos", "--config.losses.allow_random_vgg=True"],
       ["The image folder was not found at /nonexistent/photos"], False),
      ("eval_missing_data_root", main,   # eval needs a checkpoint first: that is what it names
       [f"--config={MARKET}", f"--workdir={w('eval_missing_data_root')}", "--mode=eval",
        "--config.data.root=/nonexistent/m"], ["No checkpoint in"], True),
      ("train_no_vgg_weights", main,
       [f"--config={MARKET}", f"--workdir={w('train_no_vgg_weights')}/run", f"--config.data.root={i['market']}"],
       ["No VGG19 weights file configured", "--config.losses.vgg19_weights", "convert_vgg19"], False),
      ("train_unreadable_vgg_weights", main,
       [f"--config={MARKET}", f"--workdir={w('train_unreadable_vgg_weights')}/run",
        f"--config.data.root={i['market']}", f"--config.losses.vgg19_weights={i['garbage.npz']}"],
       ["garbage.npz", "cannot be read", "--config.losses.vgg19_weights"], False),
      ("train_k0", main, [f"--config={TINY}", f"--workdir={w('train_k0')}/run", "--config.data.num_sources=0"],
       ["--config.data.num_sources", ">= 1"], False),
      # ------------------------------------------------------------------ rfgen_jax.experiments.ablation
      ("ablation_missing_data_root", "rfgen_jax.experiments.ablation",
       ["--config=configs/ablation.py:tiny", f"--workdir={w('ablation_missing_data_root')}/study",
        "--config.data.name=market", "--config.study.data_in_workdir=False", "--config.data.root=/nonexistent/m",
        "--variants=baseline", "--seeds=0"],
       ["Market-1501 was not found at /nonexistent/m", "--config.data.root"], False),
      # ------------------------------------------------------------------ tools
      ("generate_k0", gen, [f"--workdir={w('generate_k0')}", f"--config={TINY}", "--sources=",
                            "--keypoints", i["kp.csv"], "--target_pose", "photo.png",
                            "--out", f"{w('generate_k0')}/out.png"], ["K = 0", "--sources"], True),
      ("generate_bad_pose_file", gen,
       [f"--workdir={w('generate_bad_pose_file')}", f"--config={TINY}", "--sources", i["photo.png"],
        "--keypoints", i["bad_kp.csv"], "--target_pose", "photo.png", "--out", f"{w('generate_bad_pose_file')}/o.png"],
       ["bad_kp.csv, line 2", "expected 18"], True),
      ("generate_no_checkpoint", gen,
       [f"--workdir={w('generate_no_checkpoint')}", f"--config={TINY}", *photo,
        "--out", f"{w('generate_no_checkpoint')}/o.png"], ["No checkpoint in"], True),
      ("generate_existing_out", gen,
       [f"--workdir={w('generate_existing_out')}", f"--config={TINY}", *photo, "--out", i["taken.png"]],
       ["taken.png (--out) already exists", "--overwrite"], True),
      ("export_no_checkpoint", "rfgen_jax.tools.export",
       [f"--workdir={w('export_no_checkpoint')}", f"--config={TINY}", "--out", f"{w('export_no_checkpoint')}/m"],
       ["No checkpoint in"], True),
      ("export_k0", "rfgen_jax.tools.export",
       [f"--workdir={w('export_k0')}", f"--config={TINY}", "--num_sources=0", "--out", f"{w('export_k0')}/m"],
       ["--num_sources must be >= 1"], True),
      ("export_existing_out", "rfgen_jax.tools.export",
       [f"--workdir={w('export_existing_out')}", f"--config={TINY}", "--out", i["taken.jaxexport"]],
       ["taken.jaxexport (--out) already exists"], True),
      ("animate_k0", "rfgen_jax.tools.animate",
       [f"--workdir={w('animate_k0')}", f"--config={TINY}", "--test_tuple=0", "--num_sources=0",
        "--out", f"{w('animate_k0')}/a.gif"], ["--num_sources must be >= 1"], True),
      ("animate_no_checkpoint", "rfgen_jax.tools.animate",
       [f"--workdir={w('animate_no_checkpoint')}", f"--config={TINY}", "--test_tuple=0",
        "--out", f"{w('animate_no_checkpoint')}/a.gif"], ["No checkpoint in"], True),
      ("animate_existing_out", "rfgen_jax.tools.animate",
       [f"--workdir={w('animate_existing_out')}", f"--config={TINY}", "--test_tuple=0", "--out", i["taken.gif"]],
       ["taken.gif (--out) already exists"], True),
      ("score_folder_missing_folder", "rfgen_jax.tools.score_folder",
       ["--generated", f"{w('score_folder_missing_folder')}/none", "--real", i["real"],
        "--output", f"{w('score_folder_missing_folder')}/r.json"], ["/none does not exist"], True),
      ("compare_runs_missing_workdir", "rfgen_jax.tools.compare_runs",
       [f"{w('compare_runs_missing_workdir')}/a", f"{w('compare_runs_missing_workdir')}/b"],
       ["compare_runs_missing_workdir/a", "no such workdir"], True),
      ("convert_vgg19_missing_input", "rfgen_jax.tools.convert_vgg19",
       ["--input", "/nonexistent/vgg19.pth", "--output", f"{w('convert_vgg19_missing_input')}/v.npz"],
       ["Weight file not found: /nonexistent/vgg19.pth"], True),
      ("convert_vgg19_unreadable_input", "rfgen_jax.tools.convert_vgg19",
       ["--input", i["garbage.npz"], "--output", f"{w('convert_vgg19_unreadable_input')}/v.npz"],
       ["garbage.npz cannot be read"], True),
      ("convert_inception_missing_input", "rfgen_jax.tools.convert_inception",
       ["--input", "/nonexistent/inception.pth", "--output", f"{w('convert_inception_missing_input')}/i.npz"],
       ["Weight file not found"], True),
      ("convert_lpips_missing_input", "rfgen_jax.tools.convert_lpips",
       ["--alexnet", "/nonexistent/alexnet.pth", "--output", f"{w('convert_lpips_missing_input')}/l.npz"],
       ["Weight file not found"], True),
      ("pose_keypoints_missing_images", "rfgen_jax.tools.pose_keypoints",
       ["--images", "/nonexistent/photos", "--out", f"{w('pose_keypoints_missing_images')}/a.csv"],
       ["Image folder not found: /nonexistent/photos", "--images"], True),
      ("pose_keypoints_existing_out", "rfgen_jax.tools.pose_keypoints",
       ["--images", i["real"], "--out", i["taken.csv"]], ["taken.csv (--out) already exists"], True),
      ("video_to_dataset_existing_out", "rfgen_jax.tools.video_to_dataset",
       ["--video", f"{w('video_to_dataset_existing_out')}/v.mp4", "--out", i["dataset_out"]],
       ["dataset_out (--out) already holds a data set", "--overwrite"], True),
  ]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """{case: (CompletedProcess, case folder, existed before, words)} of every case, run in one zygote."""
  base = tmp_path_factory.mktemp("user_errors")
  inputs = _write_inputs(str(base / "inputs"))
  folder = lambda name: str(base / "cases" / name)
  cases = _cases(inputs, folder)
  for name, _, _, _, existed in cases:
    if existed:
      os.makedirs(folder(name))
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3",
         "TFDS_DATA_DIR": str(base / "tfds")}   # nothing is prepared, but never into the user's home
  results = forked_runs.run_cases([(name, module, argv) for name, module, argv, _, _ in cases], ROOT, env,
                                  preload=("rfgen_jax.train.trainer", "rfgen_jax.evaluation.evaluator",
                                           "rfgen_jax.tools.generate"))
  return {name: (results[name], folder(name), existed, words)
          for name, module, argv, words, existed in cases}


CASE_NAMES = [c[0] for c in _cases({k: k for k in (
    "market", "empty_root", "photo.png", "kp.csv", "bad_kp.csv", "garbage.npz", "taken.png", "taken.gif",
    "taken.jaxexport", "taken.csv", "dataset_out", "real")}, lambda name: name)]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_mistake_is_one_line_exit_2_and_leaves_nothing(runs, case):
  run, folder, existed, words = runs[case]
  module = run.args[0]
  err = run.stderr
  assert run.returncode == 2, f"{case}: exit {run.returncode}\n{err[-3000:]}"
  assert "Traceback" not in err, f"{case}:\n{err[-3000:]}"
  lines = [l for l in err.splitlines() if l.strip()]
  message = lines[-1]
  assert message.startswith(f"{module}: "), f"{case}: the last line is not the program's message:\n{err[-2000:]}"
  assert sum(l.startswith(f"{module}: ") for l in lines) == 1, f"{case}: more than one message line:\n{err}"
  for word in words:
    assert word in message, f"{case}: {word!r} not in {message!r}"
  if existed:
    left = [os.path.join(r, f) for r, ds, fs in os.walk(folder) for f in fs + ds]
    assert not left, f"{case}: the failed run left {left}"
  else:
    assert not os.path.exists(folder), f"{case}: the failed run created {folder}: {list(os.walk(folder))}"


# -------------------------------------------------------------------------------------- the mechanism
def test_bugs_keep_their_traceback_and_user_errors_return_2(capsys):
  @cli.exit_2_on_user_error
  def main(argv=None):
    if argv == ["user"]:
      raise errors.MissingFileError("Keypoint file not found: x.csv\n(use --keypoints).")
    raise FileNotFoundError("a bug's own FileNotFoundError")   # not raised as a user error

  assert main(["user"]) == 2
  assert capsys.readouterr().err == f"{__name__}: Keypoint file not found: x.csv (use --keypoints).\n"
  with pytest.raises(FileNotFoundError, match="a bug's own"):
    main(["bug"])


def test_user_errors_are_the_builtin_types_callers_catch(tmp_path):
  from rfgen_jax import inference
  from rfgen_jax.runtime import checkpointing
  from rfgen_jax.tools import pose_sequences
  assert issubclass(inference.NoCheckpointError, FileNotFoundError)
  assert issubclass(inference.NoCheckpointError, errors.UserError)
  assert issubclass(checkpointing.IncompatibleCheckpointError, ValueError)
  assert str(errors.MissingEntryError("No keypoints for 'a.jpg'")) == "No keypoints for 'a.jpg'"   # unquoted
  empty = tmp_path / "sequence.csv"
  empty.write_text("name:keypoints_y:keypoints_x\n")
  with pytest.raises(errors.UserError, match="no keypoint rows"):   # a pose sequence file without rows
    pose_sequences.read_pose_csv(str(empty))


def test_removing_new_empty_folders_keeps_files_and_old_folders(tmp_path):
  old = tmp_path / "old"
  (old / "kept").mkdir(parents=True)
  with pytest.raises(errors.UserError):
    with cli.removing_new_empty_folders(str(old)):
      (old / "new" / "deeper").mkdir(parents=True)
      raise errors.UserError("x")
  assert sorted(os.listdir(old)) == ["kept"]
  fresh = tmp_path / "a" / "b"
  with pytest.raises(errors.UserError):
    with cli.removing_new_empty_folders(str(fresh)):
      (fresh / "checkpoints").mkdir(parents=True)
      (fresh / "config.json").write_text("{}")
      raise errors.UserError("x")
  assert (fresh / "config.json").exists() and not (fresh / "checkpoints").exists()


def test_checkpointer_leaves_no_background_thread_a_removed_workdir_could_break(tmp_path):
  """orbax-checkpoint >= 0.11 cleans up unfinished checkpoint folders in a thread started by the manager's
  constructor; a run whose start failed and whose new workdir was removed made that thread print a
  traceback (CI on jax 0.12, train_missing_data_root). The Checkpointer waits for it."""
  import threading
  from configs import synthetic
  from rfgen_jax.runtime import checkpointing
  before = set(threading.enumerate())
  checkpointer = checkpointing.Checkpointer(str(tmp_path / "run"), synthetic.get_config("tiny"))
  # orbax's futures run in threads of its own class (an idle event-loop thread, a plain Thread, may stay)
  running = [t.name for t in threading.enumerate()
             if t not in before and t.is_alive() and type(t).__module__.startswith("orbax")]
  assert running == [], running
  checkpointer.close()
