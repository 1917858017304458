"""Check that scripts/train_pixels_gpu.py warps a crop as the CPU recipe does (cv2.warpAffine
with cv2.getRotationMatrix2D's zoom and rotation, a shift, a flip; bilinear, border repeated).

Needs torch (any build) and the crops ``videmo train`` cached:
    python scripts/check_gpu_augment.py ~/.cache/videmo/train/pixels-PublicTest-<key>.npz
Prints the mean and largest difference in grey levels (2026-12-04: 7e-5 and 1, from rounding).
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
import train_pixels_gpu as gpu  # noqa: E402


def main(path: str, n: int = 64) -> None:
    with np.load(path) as z:
        x = z["x"][:n]
    rng = np.random.default_rng(1)
    scale, angle = rng.uniform(1, 1.25, n), rng.uniform(-10, 10, n)
    shift, flip = rng.uniform(-0.1, 0.1, (n, 2)) * gpu.SIZE, rng.random(n) < 0.5
    ref = []
    for i in range(n):
        m = cv2.getRotationMatrix2D((gpu.SIZE / 2, gpu.SIZE / 2), angle[i], scale[i])
        m[:, 2] += shift[i]
        if flip[i]:
            m[0] = [-m[0, 0], -m[0, 1], gpu.SIZE - m[0, 2]]
        ref.append(cv2.warpAffine(x[i], m, (gpu.SIZE, gpu.SIZE), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE))
    theta = gpu.theta(torch.tensor(scale, dtype=torch.float32),
                      torch.deg2rad(torch.tensor(angle, dtype=torch.float32)),
                      torch.tensor(shift, dtype=torch.float32), torch.tensor(flip))
    grid = F.affine_grid(theta, (n, 1, gpu.SIZE, gpu.SIZE), align_corners=False)
    out = F.grid_sample(torch.tensor(x, dtype=torch.float32)[:, None], grid, mode="bilinear",
                        padding_mode="border", align_corners=False)[:, 0].round().numpy()
    d = np.abs(out - np.stack(ref).astype(np.float64))
    print(f"{n} crops: mean |difference| {d.mean():.2g}, largest {d.max():.0f} grey levels")


if __name__ == "__main__":
    main(sys.argv[1])
