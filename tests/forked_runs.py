"""Runs many `python -m module args` cases from one interpreter that imports the heavy libraries once.

Starting a fresh interpreter for each entry point costs ~6 s of imports (jax, TensorFlow, flax, ...);
the zygote below imports them once, then for each case forks a child that runs its module as `python -m`
does (`runpy.run_module(..., run_name="__main__", alter_sys=True)`), stdout and stderr in files, two
children at a time. Used by tests/test_entry_points.py (every `--help`) and tests/test_user_errors.py.
"""
import json
import os
import subprocess
import sys

_ZYGOTE = r"""
import json, os, runpy, sys, tempfile
import numpy, jax, flax, optax, ml_collections, absl.app, absl.flags, PIL.Image
import orbax.checkpoint, grain, clu.metric_writers, tensorflow, tensorflow_datasets
import importlib
cases, preload = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for module in preload:
  importlib.import_module(module)
out_dir, running, results = tempfile.mkdtemp(), {}, {}

def child(name, module, argv):
  for fd, kind in ((1, "out"), (2, "err")):
    os.dup2(os.open(os.path.join(out_dir, name + "." + kind), os.O_WRONLY | os.O_CREAT), fd)
  sys.argv = [module] + argv
  code = 0
  try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
  except SystemExit as e:
    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
  except BaseException:
    import traceback
    traceback.print_exc()
    code = 1
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(code)

def reap():
  pid, status = os.wait()
  name = running.pop(pid)
  read = lambda kind: open(os.path.join(out_dir, name + "." + kind), errors="replace").read()
  results[name] = [os.waitstatus_to_exitcode(status), read("out"), read("err")]

for name, module, argv in cases:
  if len(running) >= 2:
    reap()
  sys.stdout.flush()
  pid = os.fork()
  if pid == 0:
    child(name, module, argv)
  running[pid] = name
while running:
  reap()
print(json.dumps(results))
"""


def run_cases(cases, cwd, env, preload=()) -> dict[str, subprocess.CompletedProcess]:
  """Runs `cases` ([(name, module, argv)]) forked from one zygote; `preload`: modules it imports first
  (shared by the children). Returns {name: CompletedProcess(argv, exit status, stdout, stderr)}."""
  run = subprocess.run([sys.executable, "-c", _ZYGOTE, json.dumps([list(c) for c in cases]),
                        json.dumps(list(preload))], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=600, check=False)
  assert run.returncode == 0, run.stderr[-3000:]
  results = json.loads(run.stdout.strip().splitlines()[-1])
  return {name: subprocess.CompletedProcess([module, *argv], *results[name]) for name, module, argv in cases}
