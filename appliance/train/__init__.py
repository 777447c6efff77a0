"""`sosie train`: a generator of your own faces (workstation only, the `train` extra).

`dataset` aligns a folder's faces at the generator's framing; `networks` holds the DCGAN
generator in JAX (the appliance's numpy network, exactly) and a discriminator; `augment` is
DiffAugment; `loop` trains with optax, `checkpoint` makes it resumable bit for bit, `export`
writes generator.safetensors, `pictures` the sample grids and loss curves, `track` measures
what the generator draws while it trains (dlib: faces found, distance, diversity). Nothing here is
imported by the appliance's runtime, which reads the weights with numpy alone
(`appliance.generator.safetensors_weights`).
"""
