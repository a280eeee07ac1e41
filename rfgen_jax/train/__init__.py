"""Training: state, mesh and sharding, the two jitted steps, checkpoints and the loop."""
