"""Randomly initialised weights for whole_infer without real weights (TIPC_WEIGHTS=random in prepare.sh).

    python test_tipc/random_weights.py RECIPE.yaml OUT.pdparams DATA_DIR

With BatchNorm at its start values (mean 0, variance 1), an untrained deep network's logits reach the
thousands in eval mode (ParNet_XL: about 3,000). There, the float32 sums of the exported graph
(BatchNorm folded, branches reparameterized) and the training code differ by whole units, and
the predictor-vs-tools/infer.py comparison fails for reasons that are not bugs. So the weights are
made well conditioned:

1. BatchNorm statistics come from one batch of 16 of the data set's validation images, taken
   through the recipe's Infer transforms.
2. The classifier (the last Linear or Conv2D layer giving class_num outputs) is scaled so that
   the logits of that batch have unit spread.

The seed is fixed (1234), so the weights are the same on every run. They check the chain at full
size, not accuracy.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import numpy as np  # noqa: E402
import paddle  # noqa: E402

from ppcls.arch import build_model  # noqa: E402
from ppcls.data.transforms import build_transforms  # noqa: E402
from ppcls.utils.config import load_yaml  # noqa: E402

SEED = 1234
N_IMAGES = 16


def calibration_batch(cfg: dict, data_dir: str) -> paddle.Tensor:
    """N_IMAGES validation images spread over the list, through the recipe's Infer transforms."""
    with open(os.path.join(data_dir, "val_list.txt"), encoding="utf-8") as f:
        rows = [ln.rsplit(maxsplit=1)[0] for ln in f if ln.strip()]
    if not rows:
        raise ValueError(f"{data_dir}/val_list.txt is empty")
    rows = rows[:: max(1, len(rows) // N_IMAGES)][:N_IMAGES]
    transform = build_transforms(cfg["Infer"]["transforms"])
    images = []
    for rel in rows:
        with open(os.path.join(data_dir, rel), "rb") as f:
            img = np.asarray(transform(f.read()), dtype="float32")
        images.append(img if img.shape[0] in (1, 3) else img.transpose(2, 0, 1))
    return paddle.to_tensor(np.stack(images))


def classifier(model: paddle.nn.Layer, class_num: int) -> paddle.nn.Layer | None:
    """The last Linear / Conv2D layer with class_num outputs."""
    head = None
    for layer in model.sublayers():
        if isinstance(layer, paddle.nn.Linear) and layer.weight.shape[-1] == class_num:
            head = layer
        elif isinstance(layer, paddle.nn.Conv2D) and layer.weight.shape[0] == class_num:
            head = layer
    return head


def make_weights(recipe: str, target: str, data_dir: str) -> str:
    cfg = load_yaml(recipe)
    paddle.seed(SEED)
    model = build_model(cfg["Arch"])
    x = calibration_batch(cfg, data_dir)
    for layer in model.sublayers():
        if isinstance(layer, paddle.nn.layer.norm._BatchNormBase):
            layer._momentum = 0.0  # running statistics = this batch's statistics
    with paddle.no_grad():
        model.train()
        model(x)
        model.eval()
        spread = float(model(x).std())
        head = classifier(model, int(cfg["Arch"].get("class_num", 1000)))
        scaled = head is not None and spread > 1.0
        if scaled:
            head.weight.set_value(head.weight / spread)
            if head.bias is not None:
                head.bias.set_value(head.bias / spread)
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    paddle.save(model.state_dict(), target + ".tmp")
    os.replace(target + ".tmp", target)
    return (f"weights: randomly initialised {cfg['Arch']['name']} (seed {SEED}; BatchNorm statistics of "
            f"{x.shape[0]} images; logit spread {spread:.3g}{', classifier scaled to 1' if scaled else ''}) "
            f"-> {target}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    print(make_weights(*sys.argv[1:4]))
