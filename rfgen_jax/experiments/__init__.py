"""Studies built from the train and eval entry points: `ablation.py` (the paper's Table 4)."""
