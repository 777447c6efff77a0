"""Run inside the image (aarch64, /opt/sosie's Python): the numpy descriptor engine against
dlib's own code on the same chips. Prints one line per chip and exits 1 beyond the tolerance.
Timings under qemu-user are not the Pi's (NEON code is emulated far slower than scalar code)."""

import importlib.util
import platform
import sys

import dlib
import numpy as np

from appliance.faces.resnet import FaceNet

TOLERANCE = 2e-5
models = importlib.util.find_spec("face_recognition_models").submodule_search_locations[0]
path = f"{models}/models/dlib_face_recognition_resnet_model_v1.dat"
ours, theirs = FaceNet.load(path), dlib.face_recognition_model_v1(path)
worst = 0.0
for seed in range(int(sys.argv[1]) if len(sys.argv) > 1 else 3):
    chip = np.random.default_rng(seed).integers(0, 256, (150, 150, 3), np.uint8)
    a = ours.descriptor(chip)
    b = np.asarray(theirs.compute_face_descriptor(chip, 0), np.float32)
    worst = max(worst, float(np.abs(a - b).max()))
    print(f"{platform.machine()} chip {seed}: largest difference {np.abs(a - b).max():.2e}",
          flush=True)
print(f"descriptor engines agree: {worst <= TOLERANCE} (worst {worst:.2e}, "
      f"tolerance {TOLERANCE:.0e}; numpy {np.__version__}, dlib {dlib.__version__})")
sys.exit(0 if worst <= TOLERANCE else 1)
