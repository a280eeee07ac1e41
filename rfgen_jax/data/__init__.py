"""Data: registered data sets, K-source tuples, pose maps, augmentation, the grain pipeline (docs/data.md).

Entry points: `ensure_dataset(config)`, `create_train_iterator(config, ...)`,
`create_eval_batches(config, num_sources, ...)`, `pose_kind(config)`. `config.data.name` picks the data
set (`rfgen_jax/data/datasets/`). TensorFlow Datasets is imported only when a TFDS-backed split is
prepared or opened, so importing this package stays light.
"""
from rfgen_jax.data.pipeline import create_eval_batches
from rfgen_jax.data.pipeline import create_train_iterator
from rfgen_jax.data.pipeline import ensure_dataset
from rfgen_jax.data.pipeline import EvalBatches
from rfgen_jax.data.pipeline import pose_kind
from rfgen_jax.data.tuples import read_test_tuples_csv
from rfgen_jax.data.tuples import write_test_tuples_csv
