"""Augmentation transforms: shapes, dtypes, op semantics, determinism, config errors."""

from __future__ import annotations

import random

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from ppcls.data.transforms import build_transforms
from ppcls.data.transforms import color as C
from ppcls.data.transforms.autoaugment import (
    IMAGENET_POLICY,
    AutoAugment,
    paddleclas_ops,
    rotate,
    shear_x,
    translate_x,
)
from ppcls.data.transforms.color import ColorJitter
from ppcls.data.transforms.randaugment import RandAugment
from ppcls.data.transforms.random_erasing import RandomErasing
from ppcls.data.transforms.timm_autoaugment import TIMM_OPS, TimmAutoAugment, parse_rand_config
from ppcls.registry import TRANSFORMS


@pytest.fixture(scope="module", autouse=True)
def single_threaded_cv2():
    """Keep OpenCV's thread pool off while this module runs many cv2 ops in the pytest process.

    A process forked right after parallel cv2 work (DataLoader workers in later tests) can hang
    in ``cv2.setNumThreads``, which the loader's ``WorkerSeeder`` calls in every worker.
    """
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    yield
    cv2.setNumThreads(before)


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    from skimage import data

    return [
        cv2.resize(np.ascontiguousarray(p), (64, 64), interpolation=cv2.INTER_AREA)
        for p in (data.chelsea(), data.astronaut())
    ]


def seeded(op, img, seed):
    random.seed(seed)
    np.random.seed(seed)
    return op(img.copy())


UINT8_AUGMENTS = {
    "ColorJitter": dict(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1),
    "AutoAugment": {},
    "RandAugment": dict(num_layers=2, magnitude=9),
    "TimmAutoAugment": dict(config_str="rand-m9-mstd0.5-inc1", interpolation="bicubic", img_size=64),
}


@pytest.mark.parametrize("name", sorted(UINT8_AUGMENTS))
def test_uint8_augment_shape_dtype_and_determinism(photos, name):
    op = TRANSFORMS.build(name, **UINT8_AUGMENTS[name])
    changed = 0
    for seed in range(12):
        for img in photos:
            out = seeded(op, img, seed)
            assert out.shape == img.shape and out.dtype == np.uint8
            np.testing.assert_array_equal(out, seeded(op, img, seed))  # same seed, same image
            changed += int(not np.array_equal(out, img))
    assert changed >= 12  # it augments most of the time
    outs = {seeded(op, photos[0], s).tobytes() for s in range(6)}
    assert len(outs) > 1  # different seeds, different results


def test_augments_reject_float_images(photos):
    for name, kw in UINT8_AUGMENTS.items():
        with pytest.raises(ValueError, match="uint8 HWC"):
            TRANSFORMS.build(name, **kw)(photos[0].astype(np.float32))


def test_every_policy_and_op_runs(photos):
    img = photos[1]
    aa = AutoAugment()
    for idx in range(len(IMAGENET_POLICY)):
        random.seed(idx)
        assert aa(img, policy_idx=idx).shape == img.shape
    for name, op in paddleclas_ops((128, 128, 128)).items():
        out = op(img, 0.3 if name != "posterize" else 4)
        assert out.shape == img.shape and out.dtype == np.uint8, name
    for name, (fn, level) in TIMM_OPS.items():
        for interp in ("bilinear", "bicubic", "nearest"):
            out = fn(img, level(7.0) if level else None, (124, 116, 104), interp)
            assert out.shape == img.shape and out.dtype == np.uint8, name


def test_photometric_ops_semantics(photos):
    img = photos[0]
    assert C.brightness(img, 0.0).max() == 0
    np.testing.assert_array_equal(C.brightness(img, 1.0), img)
    flat = C.contrast(img, 0.0)
    assert flat.min() == flat.max()
    gray = C.color(img, 0.0)
    assert np.abs(gray[..., 0].astype(int) - gray[..., 2]).max() <= 1
    np.testing.assert_array_equal(C.invert(C.invert(img)), img)
    np.testing.assert_array_equal(C.solarize(img, 256), img)
    np.testing.assert_array_equal(C.solarize(img, 0), 255 - img)
    np.testing.assert_array_equal(C.posterize(img, 8), img)
    assert np.all(C.posterize(img, 3) & 0x1F == 0)
    stretched = C.autocontrast((img // 2 + 40).astype(np.uint8))
    assert stretched.reshape(-1, 3).min(0).tolist() == [0, 0, 0]
    assert stretched.reshape(-1, 3).max(0).tolist() == [255, 255, 255]
    # PIL's equalize rule, exactly
    np.testing.assert_array_equal(C.equalize(img), np.asarray(ImageOps.equalize(Image.fromarray(img))))
    np.testing.assert_array_equal(C.hue(img, 0.0), img)
    hsv_before = cv2.cvtColor(img, cv2.COLOR_RGB2HSV_FULL)[..., 0].astype(int)
    hsv_after = cv2.cvtColor(C.hue(img, 0.25), cv2.COLOR_RGB2HSV_FULL)[..., 0].astype(int)
    saturated = cv2.cvtColor(img, cv2.COLOR_RGB2HSV_FULL)[..., 1] > 80
    shift = (hsv_after - hsv_before) % 256
    assert np.median(shift[saturated]) == pytest.approx(64, abs=3)


def test_geometric_ops_semantics(photos):
    img = photos[0]
    np.testing.assert_array_equal(rotate(img, 0.0), img)
    np.testing.assert_array_equal(shear_x(img, 0.0), img)
    np.testing.assert_array_equal(translate_x(img, 8, interpolation="nearest")[:, :-8], img[:, 8:])
    assert np.all(translate_x(img, 64, fill=(1, 2, 3)) == np.array([1, 2, 3], np.uint8))
    corners = rotate(img, 45, fill=(7, 7, 7))
    assert corners[0, 0].tolist() == [7, 7, 7]


def test_color_jitter_options(photos):
    img = photos[0]
    np.testing.assert_array_equal(ColorJitter()(img), img)  # nothing to jitter
    np.testing.assert_array_equal(seeded(ColorJitter(brightness=0.5, prob=0.0), img, 0), img)
    out = seeded(ColorJitter(brightness=[0.0, 0.0]), img, 0)
    assert out.max() == 0  # a [min, max] range is used as given
    with pytest.raises(ValueError, match="hue"):
        ColorJitter(hue=0.7)
    with pytest.raises(ValueError, match="brightness"):
        ColorJitter(brightness=-0.1)


def test_randaugment_arguments():
    with pytest.raises(ValueError, match="magnitude"):
        RandAugment(magnitude=11)
    with pytest.raises(ValueError, match="num_layers"):
        RandAugment(num_layers=-1)
    with pytest.raises(ValueError, match="fillcolor"):
        AutoAugment(fillcolor=[300, 0, 0])


def test_timm_config_parsing(photos):
    s = parse_rand_config("rand-m9-n3-mstd0.5-mmax8-inc1-p0.7-w0")
    assert (
        s["magnitude"],
        s["num_layers"],
        s["magnitude_std"],
        s["magnitude_max"],
        s["increasing"],
        s["prob"],
        s["weight_set"],
    ) == (9.0, 3, 0.5, 8.0, True, 0.7, 0)
    assert parse_rand_config("rand-mstd101")["magnitude_std"] == float("inf")  # uniform magnitude
    assert parse_rand_config("rand")["magnitude"] == 10.0
    op = TimmAutoAugment("rand-m9-n3-mstd101-w0", interpolation="random", mean=[0.5, 0.5, 0.5])
    assert op.fill == (128, 128, 128) and op.weights is not None
    assert seeded(op, photos[0], 3).shape == photos[0].shape
    assert [o.name for o in TimmAutoAugment("rand-inc1").ops][4] == "PosterizeIncreasing"
    np.testing.assert_array_equal(seeded(TimmAutoAugment(prob=0.0), photos[0], 1), photos[0])


@pytest.mark.parametrize(
    "config_str, match",
    [
        ("augmix-m5-w4", "AugMix is not implemented"),
        ("original-mstd0.5", "AutoAugment is not implemented"),
        ("rand-m9-x3", "unknown section 'x3'"),
        ("rand-m9-foo", "unknown section 'foo'"),
        ("rand-m9.x", "cannot read"),
        ("rand-w1", "w0"),
        ("rand-p1.5", "p within"),
        ("", "expected a string"),
    ],
)
def test_timm_config_errors(config_str, match):
    with pytest.raises(ValueError, match=match):
        TimmAutoAugment(config_str=config_str)


def test_timm_other_arguments():
    with pytest.raises(ValueError, match="interpolation"):
        TimmAutoAugment(interpolation="hamming")
    with pytest.raises(ValueError, match="img_size"):
        TimmAutoAugment(img_size=0)


def normalised(img: np.ndarray, chw: bool) -> np.ndarray:
    x = (img.astype(np.float32) / 255.0 - 0.45) / 0.25
    return np.ascontiguousarray(x.transpose(2, 0, 1)) if chw else x


@pytest.mark.parametrize("chw", [False, True])
@pytest.mark.parametrize("mode", ["const", "rand", "pixel"])
def test_random_erasing_modes_and_layouts(photos, chw, mode):
    img = normalised(photos[0], chw)
    op = RandomErasing(
        EPSILON=1.0,
        sl=0.1,
        sh="1.0/3.0",
        r1=0.3,
        mean=[0.5, -0.5, 1.5],
        mode=mode,
        use_log_aspect=(mode == "rand"),
        attempt=10,
    )
    out = seeded(op, img, 4)
    assert out.shape == img.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out, seeded(op, img, 4))
    changed = (out != img).any(axis=0 if chw else 2)  # H x W mask of erased pixels
    ys, xs = np.nonzero(changed)
    assert 0.05 * 64 * 64 <= changed.sum() <= 0.34 * 64 * 64
    box = changed[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    assert box.mean() > 0.98  # one rectangle
    region = (
        out[:, ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        if chw
        else out[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].transpose(2, 0, 1)
    )
    if mode == "const":
        assert (
            region.reshape(3, -1).min(1).tolist() == region.reshape(3, -1).max(1).tolist() == [0.5, -0.5, 1.5]
        )
    elif mode == "rand":
        assert all(np.unique(region[c]).size == 1 for c in range(3))
    else:
        assert np.unique(region).size > region.size // 2
        assert abs(float(region.mean())) < 0.2 and 0.8 < float(region.std()) < 1.2


def test_random_erasing_probability_and_errors(photos):
    img = normalised(photos[0], False)
    np.testing.assert_array_equal(seeded(RandomErasing(EPSILON=0.0), img, 0), img)
    erased = sum(not np.array_equal(seeded(RandomErasing(EPSILON=0.5), img, s), img) for s in range(40))
    assert 10 <= erased <= 30
    with pytest.raises(ValueError, match="mode"):
        RandomErasing(mode="noise")
    with pytest.raises(ValueError, match="sl/sh"):
        RandomErasing(sl=0.5, sh=0.1)
    with pytest.raises(ValueError, match="3-D"):
        RandomErasing()(img[:, :, 0])


def test_config_pipeline_validates_and_builds(photos, tmp_path):
    """The ImageNet-style train pipeline with every new op passes config validation and runs."""
    from ppcls.engine.config import validate_config
    from tests.conftest import tiny_config

    cfg = tiny_config(str(tmp_path), str(tmp_path / "out"))
    norm = {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "order": ""}
    ops = [
        {"DecodeImage": {"to_rgb": True, "channel_first": False}},
        {"RandCropImage": {"size": 32}},
        {"RandFlipImage": {"flip_code": 1}},
        {"ColorJitter": {"brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0}},
        {"AutoAugment": None},
        {"RandAugment": {"num_layers": 2, "magnitude": 5}},
        {
            "TimmAutoAugment": {
                "config_str": "rand-m9-mstd0.5-inc1",
                "interpolation": "bicubic",
                "img_size": 32,
            }
        },
        {"NormalizeImage": norm},
        {
            "RandomErasing": {
                "EPSILON": 0.25,
                "sl": 0.02,
                "sh": "1.0/3.0",
                "r1": 0.3,
                "attempt": 10,
                "use_log_aspect": True,
                "mode": "pixel",
            }
        },
    ]
    cfg["DataLoader"]["Train"]["dataset"]["transform_ops"] = ops
    validate_config(cfg)
    ok, buf = cv2.imencode(".jpg", photos[1][:, :, ::-1])
    random.seed(0)
    np.random.seed(0)
    out = build_transforms(ops)(buf.tobytes())
    assert out.shape == (32, 32, 3) and out.dtype == np.float32 and np.isfinite(out).all()
