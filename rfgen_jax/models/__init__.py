"""Generator and discriminator (docs/design.md, "## 2. Generator"; docs/architecture.md "Model")."""
from rfgen_jax.models.discriminator import ResDiscriminator, build_discriminator
from rfgen_jax.models.generator import (Generator, build_generator, example_inputs, model_channels,
                                        validate_model_config)

__all__ = [
    "Generator",
    "ResDiscriminator",
    "build_discriminator",
    "build_generator",
    "example_inputs",
    "model_channels",
    "validate_model_config",
]
