"""Evaluators as parts: the folder scorer equals the in-training evaluator, no silent drops, test pairs.

A stand-in generator (a fixed blend of the first source and the target, jitted) replaces a trained
model: the evaluation code under test is the same, and nothing is trained. The metric networks carry
random weights (He-normal Inception and AlexNet, random LPIPS heads) written as converted files, so
every evaluator runs; the Inception resize is shrunk from 299 to 75 pixels (the smallest input) by
patching `InceptionFeatures.load`, which both paths share.
"""
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfgen_jax import config_utils, data
from rfgen_jax.evaluation import evaluators, image_files, loop, metrics, tables, test_pairs
from rfgen_jax.nets import alexnet as alexnet_lib
from rfgen_jax.nets import inception as inception_lib
from rfgen_jax.tools import score_folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALL = ("fid_gfla", "fid_pytorch", "lpips", "mask_lpips", "ssim_psnr_l1", "pngs", "samples")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
  base = tmp_path_factory.mktemp("evaluators")
  config = config_utils.load_config(os.path.join(ROOT, "configs/synthetic.py:tiny"))
  config.data.root = str(base / "root")
  config.data.tfds_data_dir = str(base / "tfds")
  config.data.image_size = (64, 64)            # LPIPS needs >= 63 pixels
  config.eval.batch_size = 4
  config.eval.max_tuples = 7                   # two batches, the last one padded
  config.eval.num_sources = (1, 2)
  config.eval.test_pairs = os.path.join(config.data.root, "market-pairs-test.csv")
  weights = {}
  for variant, key in (("gfla", "gfla_inception_weights"), ("pytorch_fid", "inception_weights")):
    weights[key] = str(base / f"{variant}.npz")
    inception_lib.save_params(weights[key], inception_lib.random_params(seed=len(variant)), variant=variant)
  weights["alexnet_weights"] = str(base / "lpips.npz")
  heads = {f"lin{i}": np.random.default_rng(i).uniform(0, 1, c).astype(np.float32)
           for i, c in enumerate(alexnet_lib.CHANNELS)}
  alexnet_lib.save_npz(weights["alexnet_weights"], alexnet_lib.random_alexnet_params(0), heads)
  for key, value in weights.items():
    config.eval[key] = value
  data.ensure_dataset(config)
  return config, weights, base


@pytest.fixture(autouse=True)
def small_inception(monkeypatch):
  def load(cls, path, variant="pytorch_fid"):
    return cls(inception_lib.load_params(path, variant=variant), resize_to=75, variant=variant)
  monkeypatch.setattr(metrics.InceptionFeatures, "load", classmethod(load))
  monkeypatch.setattr(evaluators, "_NETWORKS", {})


@jax.jit
def stand_in(params, batch):
  return jnp.clip(params * batch["source_images"][:, 0] + (1 - params) * batch["target_image"], -1.0, 1.0)


def run_eval(config, out_dir, names=ALL, generate=stand_in, params=0.3):
  return loop.evaluate_generator(config, generate, jnp.float32(params), 7, out_dir, names)


def test_folder_scorer_equals_the_evaluator(setup, tmp_path):
  """Same images, same numbers: eval's PNGs scored from disk against the real files and train folder.

  For K = 2 only: each K is the same code on other tuples, and each FID costs two eigendecompositions of
  a 2048 x 2048 covariance (~2 s on the 2-core VM); K = 1 tuples are checked in
  `test_pairs_are_the_k1_tuples_and_nested`."""
  config, weights, _ = setup
  config = config.copy_and_resolve_references()
  config.eval.num_sources = (2,)
  out_dir = str(tmp_path / "eval")
  report = run_eval(config, out_dir)
  assert not report["skipped"]
  from rfgen_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  train_dir = tmp_path / "train"       # the training split's images (the split leaves some files out)
  train_dir.mkdir()
  for name in pipeline.open_split(config, "train").names:
    shutil.copy(os.path.join(config.data.root, "train", name), train_dir / name)
  assert sorted(report["results"]) == ["2"]
  for k in ("2",):
    row, counts = report["results"][k], report["counts"][k]
    assert counts["tuples"] == counts["scored"] == 7 and counts["unreadable"] == 0
    assert counts["pngs_written"] == 7 and counts["fid_real_images"] == len(os.listdir(train_dir))
    assert set(row) == {"fid", "fid_pytorch", "lpips", "mask_lpips", "ssim", "psnr", "l1", "ssim_person",
                        "l1_person"}
    scored = score_folder.score(os.path.join(out_dir, f"images_K{k}"), os.path.join(config.data.root, "test"),
                                str(train_dir), os.path.join(config.data.root, "market-annotation-test.csv"),
                                batch_size=4, weights=weights, k=int(k))
    again = scored["results"][k]
    assert set(again) == set(row)
    # The same 8-bit images scored by two code paths (the evaluator on its generated batches, the scorer
    # on the PNG files read back), whose metric programs may round differently by host: measured on
    # this AVX2 host, SSIM, PSNR and L1 equal to the bit, FID and LPIPS up to 6e-8 relative. 2e-5
    # leaves 300x that for another CPU's rounding.
    for name, value in row.items():
      np.testing.assert_allclose(again[name], value, rtol=2e-5, atol=1e-6, err_msg=name)
    assert scored["counts"][k]["scored"] == 7
  assert os.path.exists(os.path.join(out_dir, "samples_K2.png"))


def test_pairs_are_the_k1_tuples_and_nested(setup, tmp_path):
  config, _, _ = setup
  report = run_eval(config, str(tmp_path / "e"), names=("ssim_psnr_l1",))
  pairs = test_pairs.read_pairs(config.eval.test_pairs)[:7]
  k1 = data.read_test_tuples_csv(str(tmp_path / "e" / "test_tuples_K1.csv"))
  k2 = data.read_test_tuples_csv(str(tmp_path / "e" / "test_tuples_K2.csv"))
  assert [tuple(t) for t in k1] == pairs
  assert [(t[0], t[-1]) for t in k2] == pairs and report["test_pairs"] == config.eval.test_pairs


def test_png_names_are_the_tuples(setup, tmp_path):
  config, _, _ = setup
  run_eval(config, str(tmp_path / "e"), names=("pngs",))
  tuples = data.read_test_tuples_csv(str(tmp_path / "e" / "test_tuples_K2.csv"))
  written = sorted(os.listdir(tmp_path / "e" / "images_K2"))
  assert written == sorted(image_files.png_name(t) for t in tuples)
  image = image_files.read_image(str(tmp_path / "e" / "images_K2" / written[0]))
  assert image.dtype == np.uint8 and image.shape == (64, 64, 3)


def test_non_finite_image_stops_the_evaluation_naming_the_tuple(setup, tmp_path):
  config, _, _ = setup

  @jax.jit
  def broken(params, batch):
    image = stand_in(params, batch)
    return image.at[1].set(jnp.nan)        # the second row of every batch

  with pytest.raises(loop.NonFiniteImageError) as info:
    run_eval(config, str(tmp_path / "e"), names=("ssim_psnr_l1",), generate=broken)
  pairs = test_pairs.read_pairs(config.eval.test_pairs)
  assert f"{pairs[1][0]}, {pairs[1][1]}" in str(info.value) and "step 7" in str(info.value)


def test_run_evaluators_writes_scalars_and_a_report(setup, tmp_path):
  config = setup[0].copy_and_resolve_references()
  config.eval.train_evaluators = ("ssim_psnr_l1",)
  written = {}

  class Writer:
    def write_scalars(self, step, scalars):
      written[step] = scalars

  report = loop.run_evaluators(config, stand_in, jnp.float32(0.3), 7, Writer(), str(tmp_path))
  assert set(written[7]) >= {"eval/K1/ssim", "eval/K2/l1", "eval/K2/ssim_person"}
  assert written[7]["eval/K1/ssim"] == report["results"]["1"]["ssim"]
  with open(tmp_path / "eval" / "step_0000007" / "metrics.json") as f:
    assert json.load(f)["results"]["1"]["ssim"] == report["results"]["1"]["ssim"]


@pytest.mark.slow   # a 7-step trainer run with evaluations (~2 min); every evaluator is checked on its own above
def test_trainer_runs_the_evaluators_every_eval_every_steps(tmp_path):
  """train.py's hook: `eval.every_steps` runs `eval.train_evaluators`; scalars and a report per step."""
  from rfgen_jax import job  # pylint: disable=g-import-not-at-top
  config = config_utils.load_config(os.path.join(ROOT, "configs/synthetic.py:tiny"))
  config.data.root, config.data.tfds_data_dir = str(tmp_path / "root"), str(tmp_path / "tfds")
  config.train.total_steps, config.train.flow_warmup_steps = 2, 1
  config.train.eval_at_end, config.checkpoint.async_save = False, False
  config.eval.every_steps, config.eval.num_sources, config.eval.max_tuples = 1, (1,), 2
  config.eval.train_evaluators = ("ssim_psnr_l1",)
  job.train_and_evaluate(config, str(tmp_path / "run"))
  for step in (1, 2):
    with open(tmp_path / "run" / "eval" / f"step_{step:07d}" / "metrics.json") as f:
      report = json.load(f)
    assert report["step"] == step and np.isfinite(report["results"]["1"]["ssim"])


def test_unknown_evaluator_is_named(setup):
  config, _, _ = setup
  with pytest.raises(ValueError, match=r"eval.evaluators: unknown evaluator\(s\) \['fidd'\]"):
    run_eval(config, None, names=("fidd",))


def test_missing_weights_are_skipped_with_the_command(setup, tmp_path):
  config = setup[0].copy_and_resolve_references()
  config.eval.gfla_inception_weights = None
  report = run_eval(config, None, names=("fid_gfla", "ssim_psnr_l1"))
  assert report["skipped"][0]["metric"] == "fid" and "--variant=gfla" in report["skipped"][0]["reason"]
  assert "fid" not in report["results"]["1"]
  tables.write_table(str(tmp_path / "t.md"), report["results"], 7, report["skipped"])
  assert "SSIM" in open(tmp_path / "t.md").read()


# ------------------------------------------------------------------------------------------ folder scorer
def _folder(path, images, names):
  os.makedirs(path, exist_ok=True)
  for image, name in zip(images, names):
    image_files.write_png(os.path.join(path, name), image)
  return str(path)


def test_score_folder_bad_input_exits_2(tmp_path, capsys):
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
  real = _folder(tmp_path / "real", images, ["a.png", "b.png"])
  gen = _folder(tmp_path / "gen", images, ["x_2_a.png", "y_2_b_vis.png"])
  assert score_folder.main(["--generated", str(tmp_path / "none"), "--real", real]) == 2
  assert "Generated folder" in capsys.readouterr().err
  orphan = _folder(tmp_path / "orphan", images[:1], ["x_2_c.png"])
  assert score_folder.main(["--generated", orphan, "--real", real]) == 2
  assert "x_2_c.png: no real image named 'c'" in capsys.readouterr().err
  small = _folder(tmp_path / "small", images[:, :32], ["a.png", "b.png"])
  assert score_folder.main(["--generated", gen, "--real", small]) == 2
  err = capsys.readouterr().err
  assert "is 32x64, the generated images are 64x64" in err and "Traceback" not in err
  assert score_folder.main(["--generated", gen, "--real", real, "--evaluators", "ssim_psnr_l1"]) == 0
  assert "2 images: l1=0.0000" in capsys.readouterr().out


def test_target_names_follow_gfla_and_ours():
  stems = {"0002_c1s1_000451_03": "0002_c1s1_000451_03.jpg", "a_2_b": "a_2_b.png"}
  assert image_files.target_stem("0001_c1s1_0_00_2_0002_c1s1_000451_03_vis.png", stems) == "0002_c1s1_000451_03"
  assert image_files.target_stem("src_2_a_2_b.png", stems) == "a_2_b"
  used = set()
  first = image_files.png_name(("p/s0.jpg", "s1.jpg", "t.jpg"), used)
  assert first == "s0__s1_2_t.png" and image_files.png_name(("s0.jpg", "s1.jpg", "t.jpg"), used) == "1@" + first
  assert image_files.target_stem("1@" + first, {"t": "t.jpg"}) == "t"


# ------------------------------------------------------------------------------------------ test pairs
def test_pair_tuples_rule():
  names = [f"{i}_{j}.jpg" for i in "ab" for j in range(5)]
  ids = [n[0] for n in names]
  pairs = [("a_0.jpg", "a_1.jpg"), ("b_3.jpg", "b_0.jpg")]
  k1 = test_pairs.pair_tuples(pairs, names, ids, 1, seed=3)
  assert [tuple(names[i] for i in r) for r in k1] == pairs
  k3 = test_pairs.pair_tuples(pairs, names, ids, 3, seed=3)
  k4 = test_pairs.pair_tuples(pairs, names, ids, 4, seed=3)
  np.testing.assert_array_equal(k4[:, :3], k3[:, :3])          # nested: K sources are a prefix of K + 1's
  for row, (a, b) in zip(k4, pairs):
    sources = [names[i] for i in row[:-1]]
    assert sources[0] == a and names[row[-1]] == b and len(set(sources)) == 4
    assert b not in sources and {s[0] for s in sources} == {a[0]}
  np.testing.assert_array_equal(k4, test_pairs.pair_tuples(pairs, names, ids, 4, seed=3))
  assert not np.array_equal(k4, test_pairs.pair_tuples(pairs, names, ids, 4, seed=4))
  k6 = test_pairs.pair_tuples(pairs, names, ids, 6, seed=3)  # only 3 others: filled by cycling
  np.testing.assert_array_equal(k6[:, :4], k4[:, :4])
  with pytest.raises(ValueError, match="'c_0.jpg' is not an image of the test split"):
    test_pairs.pair_tuples([("c_0.jpg", "a_1.jpg")], names, ids, 1, seed=0, source="p.csv")
  with pytest.raises(ValueError, match="different people"):
    test_pairs.pair_tuples([("a_0.jpg", "b_1.jpg")], names, ids, 1, seed=0)


def test_pairs_file_auto_finds_gfla_files(tmp_path):
  config = config_utils.load_config(os.path.join(ROOT, "configs/market.py"))
  config.data.root = str(tmp_path)
  assert test_pairs.pairs_file(config) is None
  (tmp_path / "market-pairs-test.csv").write_text("from,to\na.jpg,b.jpg\n")
  assert test_pairs.pairs_file(config) == str(tmp_path / "market-pairs-test.csv")
  assert test_pairs.read_pairs(str(tmp_path / "market-pairs-test.csv")) == [("a.jpg", "b.jpg")]
  config.eval.test_pairs = ""
  assert test_pairs.pairs_file(config) is None
