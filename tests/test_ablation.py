"""The ablation study runner (rfgen_jax/experiments/ablation.py: study_plan, study_devices, study_progress,
study_scheduler) and its report (report.py)."""
import io
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from rfgen_jax import config_utils
from rfgen_jax.experiments import report
from rfgen_jax.experiments import study_devices
from rfgen_jax.experiments import study_plan
from rfgen_jax.experiments import study_progress

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _metrics(step, values):
  """A metrics.json dict: values = {K: {metric: value}}."""
  return {"step": step, "results": {str(k): dict(v) for k, v in values.items()}}


# ------------------------------------------------------------------------------------------- plan
def test_variants_switch_exactly_the_model_keys():
  config = config_utils.load_config(os.path.join(ROOT, "configs/ablation.py"))
  for name, (_, overrides) in study_plan.VARIANTS.items():
    for key in overrides:
      assert isinstance(config_utils.lookup(config, key), bool) and config_utils.lookup(config, key)
  assert study_plan.VARIANTS["full"][1] == {}
  assert study_plan.VARIANTS["baseline"][1] == {"model.residual_flow": False, "model.occlusion": False,
                                              "model.attention": False}
  assert study_plan.ORDER[-1] == "full"
  # The study's data are misaligned; the demo's are not.
  assert dict(config.data.synthetic_misalign)["roll"] > 0
  demo = config_utils.load_config(os.path.join(ROOT, "configs/synthetic.py"))
  assert set(dict(demo.data.synthetic_misalign).values()) == {0.0}


def test_plan_runs(tmp_path):
  runs = study_plan.plan_runs(str(tmp_path), ["full", "wo_res", "baseline"], [0, 1, 2], ["full", "baseline"])
  assert [r.name for r in runs] == ["baseline_s0", "wo_res_s0", "full_s0", "baseline_s1", "full_s1",
                                    "baseline_s2", "full_s2"]
  assert runs[1].overrides == {"model.residual_flow": False, "train.seed": 0, "data.shuffle_seed": 0}
  assert runs[-1].workdir == os.path.join(str(tmp_path), "runs", "full_s2")
  for bad in (dict(variants=["full", "wo_foo"], seeds=[0]), dict(variants=[], seeds=[0]),
              dict(variants=["full"], seeds=[]), dict(variants=["full"], seeds=[1, 1])):
    with pytest.raises(study_plan.UsageError):
      study_plan.plan_runs(str(tmp_path), seed_variants=[], **bad)


def test_forwarded_config_args_and_command():
  argv = ["--config=configs/ablation.py:tiny", "--workdir=/x", "--config.train.total_steps=3",
          "--config.model.width", "0.5", "--parallel=2"]
  args = study_plan.config_flag_args(argv)
  assert args == ["--config=configs/ablation.py:tiny", "--config.train.total_steps=3",
                  "--config.model.width=0.5"]
  cmd = study_plan.run_command(args, {"model.attention": False, "eval.num_sources": (1, 2)}, "/w")
  assert cmd[1:3] == ["-m", "rfgen_jax.main"]
  assert cmd[-3:] == ["--config.model.attention=False", "--config.eval.num_sources=(1,2)", "--workdir=/w"]


def test_device_slots():
  assert study_devices.device_slots(1, "gpu", 8) == [{"env": {}, "cpus": None}]
  gpus = study_devices.device_slots(2, "gpu", 4)
  assert [s["env"]["CUDA_VISIBLE_DEVICES"] for s in gpus] == ["0,1", "2,3"]
  shared = study_devices.device_slots(3, "gpu", 1)
  assert {s["env"]["CUDA_VISIBLE_DEVICES"] for s in shared} == {"0"}
  assert float(shared[0]["env"]["XLA_PYTHON_CLIENT_MEM_FRACTION"]) * 3 <= 0.9 + 1e-9
  cpu = study_devices.device_slots(2, "cpu", 1)
  assert len(cpu) == 2 and all(s["cpus"] for s in cpu)
  with pytest.raises(study_plan.UsageError, match="TPU"):
    study_devices.device_slots(2, "tpu", 4)


def test_progress_line_and_eta(tmp_path):
  runs = study_plan.plan_runs(str(tmp_path), ["full", "baseline"], [0], [])
  out = io.StringIO()
  p = study_progress.Progress(runs, total=100, parallel=1, stream=out, every=0)
  p.started("baseline_s0")
  assert p.eta() is None   # no rate measured yet
  t = 1000.0
  p.state["baseline_s0"]["t0"] = t - 10
  for i, step in enumerate((10, 20, 30, 40)):
    p.state["baseline_s0"]["marks"].append((t + 5 * i, step))
  p.line("baseline_s0", "I1203 08:16:03.1 1 logging_writer.py:48] [40] loss=1.0, steps_per_sec=2")
  p.state["baseline_s0"]["marks"][-1] = (t + 15, 40)
  p.line("baseline_s0", "I1203 08:16:03.1 1 logging_writer.py:48] [40] loss=1.0")   # rate: 20 steps / 10 s
  assert p.rate() == pytest.approx(20 / ((t + 15) - (t + 5)), rel=1e-6) or p.rate() > 0
  rate = p.rate()
  # Remaining: 60 steps of this run and 100 of the queued one, plus start-up/eval overheads (>= 0).
  assert p.eta() >= 160 / rate
  p.print(force=True)
  line = out.getvalue().strip().splitlines()[-1]
  assert line.startswith("study: 0/2 runs done | baseline_s0 train 40/100 |") and "ETA " in line
  p.line("baseline_s0", "I1203 evaluator.py:60] eval K=2: batch 1/2, 3.0 images/s, ETA 1 s")
  assert "baseline_s0 eval K=2" in p.status()


# ------------------------------------------------------------------------------------------- report
def _fake_runs():
  ks = (1, 2, 3)
  runs = {}
  rng = np.random.default_rng(0)
  for v, base in (("baseline", 0.50), ("wo_res", 0.55), ("full", 0.60)):
    seeds = (0, 1) if v in ("full", "baseline") else (0,)
    runs[v] = {s: _metrics(10, {k: {"ssim": base + 0.01 * k + 0.004 * s, "l1_person": 1 - base + 0.002 * s,
                                    "psnr": 20 + rng.random()} for k in ks}) for s in seeds}
  return runs, ks


def test_summary_and_orderings():
  runs, ks = _fake_runs()
  summary = report.summarise(runs, ks, ["ssim", "l1_person"])
  e = summary["full"]["2"]["ssim"]
  assert e["n"] == 2 and e["mean"] == pytest.approx(0.622) and e["min"] == pytest.approx(0.62)
  assert e["std"] == pytest.approx(np.std([0.62, 0.624], ddof=1))
  ords = report.orderings(summary, "full", ks, ["ssim", "l1_person"])
  assert set(ords) == {"baseline", "wo_res"}
  o = ords["baseline"]["1"]["ssim"]
  assert o["gain"] == pytest.approx(0.1) and o["spread"] == pytest.approx(0.004) and o["verdict"] == "yes"
  assert ords["baseline"]["1"]["l1_person"]["gain"] == pytest.approx(0.1)   # lower is better: + = Full
  # A difference inside the spread is "within".
  close = {"full": runs["full"], "baseline": {s: _metrics(10, {k: {"ssim": 0.61 + 0.01 * k + 0.004 * s}
                                                              for k in ks}) for s in (0, 1)}}
  summary = report.summarise(close, ks, ["ssim"])
  assert report.orderings(summary, "full", ks, ["ssim"])["baseline"]["1"]["ssim"]["verdict"] == "no"
  same = report.summarise({"full": runs["full"], "baseline": runs["full"]}, ks, ["ssim"])
  assert report.orderings(same, "full", ks, ["ssim"])["baseline"]["1"]["ssim"]["verdict"] == "within"


def test_report_files(tmp_path):
  runs, ks = _fake_runs()
  labels = {v: study_plan.VARIANTS[v][0] for v in study_plan.VARIANTS}
  out = report.write_report(str(tmp_path), runs, study_plan.ORDER, labels, ks, ["fid", "ssim", "l1_person"],
                            "full", ["ssim", "l1_person"])
  assert out["metrics"] == ["ssim", "l1_person"]   # FID was not computed: no column
  with open(tmp_path / "table4.md") as f:
    md = f.read()
  rows = [l for l in md.splitlines() if l.startswith("| ")]
  assert rows[0].startswith("| Variant | seeds | K=1 SSIM ↑ | K=1 L1 (person) ↓ | K=2 SSIM ↑")
  assert [r.split(" | ")[0] for r in rows[2:5]] == ["| Baseline", "| w/o res", "| Full"]
  assert "0.6120 ± 0.0028" in rows[4] and "+0.1000 (yes)" in md
  with open(tmp_path / "table4.json") as f:
    data = json.load(f)
  assert data["summary"]["wo_res"]["3"]["ssim"]["mean"] == pytest.approx(0.58)
  img = np.asarray(Image.open(tmp_path / "table4.png"))
  assert img.ndim == 3 and img.shape[1] > 600 and len(np.unique(img.reshape(-1, 3), axis=0)) > 4


# ------------------------------------------------------------------------------------------- end to end
def _study(workdir, *extra):
  cmd = [sys.executable, "-m", "rfgen_jax.experiments.ablation", "--config=configs/ablation.py:tiny",
         f"--workdir={workdir}", "--variants=full,baseline", "--seeds=0", "--config.train.total_steps=3",
         "--config.train.flow_warmup_steps=1", "--config.eval.max_tuples=2", *extra]
  return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT))


@pytest.mark.slow   # two tiny runs in subprocesses (compilation dominates): minutes on a 2-core CPU
def test_tiny_study_end_to_end_and_rerun_skips(tmp_path):
  workdir = str(tmp_path / "study")
  first = _study(workdir)
  assert first.returncode == 0, first.stderr[-3000:] + first.stdout[-2000:]
  assert "study: baseline_s0 starts" in first.stderr and "ETA" in first.stderr
  for run in ("full_s0", "baseline_s0"):
    with open(os.path.join(workdir, "runs", run, "eval", "metrics.json")) as f:
      m = json.load(f)
    assert m["step"] == 3 and set(m["results"]) == {"1", "2", "3"}
    with open(os.path.join(workdir, "runs", run, "config.json")) as f:
      cfg = json.load(f)
    assert cfg["model"]["residual_flow"] == (run == "full_s0") and cfg["data"]["synthetic_misalign"]["roll"] > 0
  with open(os.path.join(workdir, "table4.json")) as f:
    table = json.load(f)
  assert table["variants"] == ["baseline", "full"] and "ssim" in table["metrics"]
  assert table["summary"]["full"]["3"]["ssim"]["mean"] == pytest.approx(
      json.load(open(os.path.join(workdir, "runs", "full_s0", "eval", "metrics.json")))["results"]["3"]["ssim"])
  with open(os.path.join(workdir, "table4.md")) as f:
    md = f.read()
  assert "| Baseline | 1 |" in md and "| Full | 1 |" in md
  assert "2 test tuples scored per K" in md     # what was scored (metrics.json), not eval.max_tuples
  assert Image.open(os.path.join(workdir, "table4.png")).size[0] > 300
  stamp = os.path.getmtime(os.path.join(workdir, "runs", "full_s0", "eval", "metrics.json"))

  again = _study(workdir)
  assert again.returncode == 0, again.stderr[-3000:]
  assert again.stderr.count("is finished") == 2 and "starts" not in again.stderr
  assert os.path.getmtime(os.path.join(workdir, "runs", "full_s0", "eval", "metrics.json")) == stamp


def test_bad_flags_exit_2(tmp_path):
  for extra in (["--variants=full,nope"], ["--seeds=a"], ["--config.train.total_stepz=3"], ["--parallel=0"]):
    out = _study(str(tmp_path / "bad"), *extra)
    assert out.returncode == 2, (extra, out.stderr[-2000:])
    assert "Traceback" not in out.stderr
