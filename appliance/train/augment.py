"""DiffAugment (Zhao et al., 2020): colour, translation and cutout, differentiable, applied to
the real and the generated images alike, every time the discriminator sees them.

With a few hundred photos the discriminator soon remembers every real image; its verdicts then
stop teaching the generator anything but those images. Augmenting only the real images would
teach the generator to draw the augmentations (shifted, cut-out faces); DiffAugment augments
both sides, and because every operation is differentiable the generator learns through them.
The three policies are the paper's for few-image training: brightness, saturation and contrast
jitter; a shift of up to 1/8 of the side (zero = mid-grey fill); a square of half the side
blanked out. Each image gets its own draw.

Applied to every image (p = 1, the paper's way) the non-invertible operations can leak: the
generator may learn to draw what the discriminator only ever sees augmented. ADA (Karras et al.
2020) applies each operation to an image with probability p, and adapts p to the
discriminator's overfitting (`loop.py`): below p ~ 0.8 the augmentations cannot leak, because
the clean images still dominate what the discriminator sees.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

TRANSLATION = 0.125
CUTOUT = 0.5


def diff_augment(key: jax.Array, images: jax.Array, p: jax.Array | float = 1.0) -> jax.Array:
    """Colour, translation and cutout of (n, h, w, c) images in [-1, 1], each its own draw;
    with `p` < 1 each of the three applied to an image with probability p (p = 1: always)."""
    kb, ks, kc, kt, kx = jax.random.split(key, 5)
    if isinstance(p, float) and p == 1.0:
        return cutout(kx, translate(kt, colour(jnp.stack([kb, ks, kc]), images)))
    chosen = jax.random.uniform(jax.random.fold_in(key, 1), (3, images.shape[0], 1, 1, 1)) < p
    images = jnp.where(chosen[0], colour(jnp.stack([kb, ks, kc]), images), images)
    images = jnp.where(chosen[1], translate(kt, images), images)
    return jnp.where(chosen[2], cutout(kx, images), images)


def colour(keys: jax.Array, x: jax.Array) -> jax.Array:
    """Brightness +-0.5, saturation x0-2, contrast x0.5-1.5 (DiffAugment's ranges)."""
    n = x.shape[0]
    shape = (n, 1, 1, 1)
    x = x + (jax.random.uniform(keys[0], shape) - 0.5)
    mean = x.mean(axis=3, keepdims=True)
    x = (x - mean) * (jax.random.uniform(keys[1], shape) * 2) + mean
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    return (x - mean) * (jax.random.uniform(keys[2], shape) + 0.5) + mean


def translate(key: jax.Array, x: jax.Array) -> jax.Array:
    """Each image shifted by up to 1/8 of its side in x and y, the uncovered part zero."""
    n, h, w, _ = x.shape
    reach = int(h * TRANSLATION + 0.5)
    shifts = jax.random.randint(key, (n, 2), -reach, reach + 1)
    padded = jnp.pad(x, ((0, 0), (reach, reach), (reach, reach), (0, 0)))

    def one(image: jax.Array, shift: jax.Array) -> jax.Array:
        return jax.lax.dynamic_slice(image, (reach - shift[0], reach - shift[1], 0),
                                     (h, w, image.shape[2]))

    return jax.vmap(one)(padded, shifts)


def cutout(key: jax.Array, x: jax.Array) -> jax.Array:
    """A square of half the side, anywhere (partly outside too), set to zero in each image."""
    n, h, w, _ = x.shape
    side = int(h * CUTOUT + 0.5)
    centres = jax.random.randint(key, (n, 2), 0, jnp.array([h + 1 - side % 2, w + 1 - side % 2]))
    top = centres[:, 0, None] - side // 2
    left = centres[:, 1, None] - side // 2
    rows, cols = jnp.arange(h)[None, :], jnp.arange(w)[None, :]
    inside_y = (rows >= top) & (rows < top + side)
    inside_x = (cols >= left) & (cols < left + side)
    mask = ~(inside_y[:, :, None] & inside_x[:, None, :])
    return x * mask[..., None].astype(x.dtype)
