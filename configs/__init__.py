"""Experiment configs: one file per data set, each with `get_config(arg=None)`."""
