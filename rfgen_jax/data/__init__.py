"""Data: annotation readers, K-source tuples, pose maps, augmentation, TFDS builders, the grain pipeline.

Entry points (docs/architecture.md): `ensure_dataset(config)`, `create_train_iterator(config, ...)`,
`create_eval_batches(config, num_sources, ...)`. TensorFlow Datasets is imported only when a split is
opened, so importing this package stays light.
"""
from rfgen_jax.data.pipeline import create_eval_batches
from rfgen_jax.data.pipeline import create_train_iterator
from rfgen_jax.data.pipeline import ensure_dataset
from rfgen_jax.data.pipeline import EvalBatches
from rfgen_jax.data.tuples import read_test_tuples_csv
from rfgen_jax.data.tuples import write_test_tuples_csv
