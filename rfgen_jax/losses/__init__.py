"""Training losses (docs/design.md, "## 3. Losses"): flow losses, image losses and GAN losses. All return scalars."""
from rfgen_jax.losses.adversarial import GAN_KINDS, discriminator_gan_loss, generator_gan_loss
from rfgen_jax.losses.config_check import validate_losses_config
from rfgen_jax.losses.flow import affine_regularization, sampling_correctness
from rfgen_jax.losses.keypoint_flow import dense_keypoint_flow_loss, keypoint_flow_loss
from rfgen_jax.losses.image import gram_matrix, l1_loss, perceptual_loss, style_loss

__all__ = [
    "GAN_KINDS", "affine_regularization", "discriminator_gan_loss", "generator_gan_loss",
    "dense_keypoint_flow_loss", "gram_matrix", "keypoint_flow_loss", "l1_loss", "perceptual_loss", "sampling_correctness", "style_loss",
    "validate_losses_config",
]
