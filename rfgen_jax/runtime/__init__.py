"""What training, evaluation and inference share below them: the mesh and shardings (`sharding.py`), the
fixed-order gradient mean (`reduction.py`), the state pytree and its optimizers (`state.py`) and Orbax
checkpoint I/O (`checkpointing.py`). Imports nothing above `rfgen_jax.config_utils` (docs/design.md,
"Layers")."""
