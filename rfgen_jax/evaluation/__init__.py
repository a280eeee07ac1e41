"""Evaluation: metrics, evaluators registered by name, the loop, the `--mode=eval` entry and test pairs.

`run_evaluators(config, generate_fn, params, step, writer, workdir)` is the trainer's periodic hook
(`loop.py`); `evaluator.evaluate(config, workdir)` is `--mode=eval`.
"""
from rfgen_jax.evaluation.loop import run_evaluators  # noqa: F401
