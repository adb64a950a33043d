"""torchvision's side of tests/test_image_ops.py, run under .venv-torchvision (never imported).

  python tests/torchvision_worker.py ops IN.npz OUT.npz [pil]
      every (op, magnitude) case of IN on its uint8 images (N, H, W, C) through
      torchvision.transforms.autoaugment._apply_op on uint8 tensors (and on PIL images)
  python tests/torchvision_worker.py sample OUT.json DRAWS N M
      the ops and signed magnitudes that AutoAugment(CIFAR10), RandAugment(N, M) and
      TrivialAugmentWide pass to _apply_op over DRAWS calls each, per call
"""

import json
import sys

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode, autoaugment


def run_ops(src: str, dst: str, pil: bool) -> None:
  data = np.load(src)
  images, names, mags = data['images'], data['names'], data['magnitudes']
  tensors = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
  tensor_out, pil_out = [], []
  for name, magnitude in zip(names, mags):
    name, magnitude = str(name), float(magnitude)
    tensor_out.append(np.stack([
        autoaugment._apply_op(t, name, magnitude, InterpolationMode.NEAREST, None).permute(
            1, 2, 0).numpy() for t in tensors]))
    if pil:
      pil_out.append(np.stack([
          np.asarray(autoaugment._apply_op(Image.fromarray(image), name, magnitude,
                                           InterpolationMode.NEAREST, None)) for image in images]))
  np.savez(dst, tensor=np.stack(tensor_out), pil=np.stack(pil_out) if pil else np.zeros(0))


def run_sample(dst: str, draws: int, n: int, m: int) -> None:
  calls = []
  autoaugment._apply_op = lambda img, name, magnitude, **_: calls.append((name, magnitude)) or img
  image = torch.zeros((3, 32, 32), dtype=torch.uint8)
  torch.manual_seed(0)
  out = {}
  for key, transform in (('autoaugment_cifar10',
                          autoaugment.AutoAugment(autoaugment.AutoAugmentPolicy.CIFAR10)),
                         ('randaugment', autoaugment.RandAugment(num_ops=n, magnitude=m)),
                         ('trivialaugment', autoaugment.TrivialAugmentWide())):
    per_call = []
    for _ in range(draws):
      calls.clear()
      transform(image)
      per_call.append(list(calls))
    out[key] = per_call
  with open(dst, 'w') as f:
    json.dump(out, f)


if __name__ == '__main__':
  if sys.argv[1] == 'ops':
    run_ops(sys.argv[2], sys.argv[3], pil=sys.argv[4:] == ['pil'])
  else:
    run_sample(sys.argv[2], *map(int, sys.argv[3:6]))
