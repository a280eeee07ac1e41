"""The config of a released model: `--config=configs/pretrained.py:NAME` (docs/pretrained.md).

NAME is a released model's name (`python -m rfgen_jax.tools.pretrained --list`) or its folder. The config
is the release's `config.json` (the training run's own, keys added since filled with their defaults),
read after the release's checksums are verified (`rfgen_jax.runtime.pretrained.release_config`).
`python -m rfgen_jax.main --mode=eval --pretrained=NAME` uses it when no `--config` is given, so
`--config.KEY=VALUE` overrides apply to the release's config (e.g. `--config.data.root`).
"""
from rfgen_jax.runtime import pretrained


def get_config(arg=None):
  if not arg:
    raise ValueError("configs/pretrained.py needs a released model: --config=configs/pretrained.py:NAME "
                     f"(available: {', '.join(pretrained.available()) or 'none'}).")
  return pretrained.release_config(arg)
