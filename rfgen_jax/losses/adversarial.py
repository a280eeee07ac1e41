"""GAN losses on discriminator logits (docs/design.md, "## 3. Losses"; paper equation 11), config `losses.gan`.

`kind`:
- "nonsaturating" (default): the standard GAN of eq. 11 written on logits with softplus (numerically
  stable BCE): D minimises softplus(-D(real)) + softplus(D(fake)), i.e. -log sigmoid(real) -
  log(1 - sigmoid(fake)); G minimises the non-saturating softplus(-D(fake)) = -log sigmoid(fake).
- "lsgan": mean squared error to the labels 1 (real) and 0 (fake); G: (D(fake) - 1)^2.
- "hinge": D: relu(1 - D(real)) + relu(1 + D(fake)); G: -D(fake).

Every term is a mean over all logits (patch logits (B, h, w, 1) or any shape). As in GFLA
(`backward_D_basic` in model/pose_model.py), the discriminator loss is the *average* of its real and
fake terms: 0.5 * (L_real + L_fake).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

GAN_KINDS = ("nonsaturating", "lsgan", "hinge")


def _check_kind(kind: str) -> None:
  if kind not in GAN_KINDS:
    raise ValueError(f"Unknown GAN loss kind {kind!r} (config losses.gan); accepted: {GAN_KINDS}.")


def _float(x):
  x = jnp.asarray(x)
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def generator_gan_loss(fake_logits: jax.Array, kind: str = "nonsaturating") -> jax.Array:
  """Generator adversarial loss.

  Args:
    fake_logits: discriminator logits of generated images, any shape (e.g. (B, h, w, 1)).
    kind: one of GAN_KINDS.
  Returns:
    scalar: mean softplus(-f) | mean (f - 1)^2 | -mean f.
  """
  _check_kind(kind)
  f = _float(fake_logits)
  if kind == "nonsaturating":
    return jnp.mean(jax.nn.softplus(-f))
  if kind == "lsgan":
    return jnp.mean(jnp.square(f - 1.0))
  return -jnp.mean(f)


def discriminator_gan_loss(real_logits: jax.Array, fake_logits: jax.Array,
                           kind: str = "nonsaturating") -> jax.Array:
  """Discriminator adversarial loss, 0.5 * (real term + fake term).

  Args:
    real_logits: logits of real images, any shape.
    fake_logits: logits of generated images (gradient already stopped by the caller), any shape.
    kind: one of GAN_KINDS.
  Returns:
    scalar: 0.5 * (mean softplus(-r) + mean softplus(f)) | 0.5 * (mean (r - 1)^2 + mean f^2) |
    0.5 * (mean relu(1 - r) + mean relu(1 + f)).
  """
  _check_kind(kind)
  r, f = _float(real_logits), _float(fake_logits)
  if kind == "nonsaturating":
    real, fake = jnp.mean(jax.nn.softplus(-r)), jnp.mean(jax.nn.softplus(f))
  elif kind == "lsgan":
    real, fake = jnp.mean(jnp.square(r - 1.0)), jnp.mean(jnp.square(f))
  else:
    real, fake = jnp.mean(jax.nn.relu(1.0 - r)), jnp.mean(jax.nn.relu(1.0 + f))
  return 0.5 * (real + fake)
