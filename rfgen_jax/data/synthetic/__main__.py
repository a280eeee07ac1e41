"""`python -m rfgen_jax.data.synthetic --out DIR`: writes the synthetic people (see `people.py`)."""
import sys

from rfgen_jax.data.synthetic import people

sys.exit(people.main())
