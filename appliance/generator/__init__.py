"""Faces that do not exist, made here: `sosie generate` and `sosie build dcgan:COUNT[:SEED]`.

`torch_zip` reads torch.save weights without torch (a restricted unpickler); `dcgan` runs the
DCGAN face generator with numpy; `draws` and `url` are the two engines of `generate`, whose
resumable run is `job` (bookkeeping in `journal`); `source` lets the build draw its faces.
"""
