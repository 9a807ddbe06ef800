"""Image loading and preprocessing (remotesam.image): formats, conversions, errors, parity."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from remotesam.image import load_image, normalize, preprocess, resize_image

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


def _real_images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS)


@pytest.mark.realdata
def test_every_real_image_loads(real_data: Path) -> None:
    paths = _real_images(real_data)
    assert len(paths) > 40
    kinds = set()
    for p in paths:
        rgb = load_image(p)
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3, p
        assert rgb.flags.c_contiguous
        with Image.open(p) as im:
            kinds.add(im.mode)
            assert rgb.shape[:2] == (im.height, im.width)
            np.testing.assert_array_equal(rgb, np.asarray(im.convert("RGBA"))[..., :3])
        assert np.array_equal(load_image(str(p)), rgb)
    assert {"RGB", "RGBA"} <= kinds  # the iSAID crop is RGBA; alpha dropped


@pytest.mark.realdata
def test_odd_sizes_preprocess(real_data: Path) -> None:
    odd = [real_data / "ucmerced/Images/buildings/buildings96.tif",
           real_data / "ucmerced/Images/intersection/intersection99.tif"]
    x = preprocess(odd, 64)
    assert x.shape == (2, 3, 64, 64) and x.dtype == torch.float32
    assert load_image(odd[0]).shape == (247, 247, 3)
    assert load_image(odd[1]).shape == (256, 249, 3)


@pytest.mark.parity
@pytest.mark.realdata
def test_preprocess_matches_official_golden(real_data: Path, reference_dir: Path) -> None:
    with np.load(reference_dir / "parity_tiny.npz") as f:
        resized, checksum, first16 = (
            f["image_resized_uint8"], f["input_tensor_checksum"], f["input_tensor_first16"]
        )
    demo = real_data / "misc/remotesam_assets_demo.jpg"
    np.testing.assert_array_equal(resize_image(load_image(demo), 896), resized)
    x = preprocess(demo, 896)
    assert x.shape == (1, 3, 896, 896)
    assert [x.double().sum().item(), x.double().abs().sum().item()] == pytest.approx(
        checksum.tolist(), rel=0, abs=1e-6
    )
    np.testing.assert_array_equal(x.flatten()[:16].numpy(), first16)


@pytest.mark.realdata
def test_preprocess_bit_identical_to_torchvision(real_data: Path) -> None:
    import torchvision.transforms as T

    tv = T.Compose([
        T.Resize((224, 224)),  # PIL bilinear
        T.ToTensor(),
        T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    paths = [real_data / "ucmerced/Images/intersection/intersection99.tif",
             real_data / "dior/JPEGImages/00001.jpg"]
    ours = preprocess(paths, 224)
    for i, p in enumerate(paths):
        with Image.open(p) as im:
            assert torch.equal(ours[i], tv(im.convert("RGB"))), p
    # every uint8 value of every channel, through the lookup table
    every = np.ascontiguousarray(
        np.broadcast_to(np.arange(256, dtype=np.uint8)[:, None, None], (256, 1, 3))
    )
    ref = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])(
        T.ToTensor()(Image.fromarray(every))
    )
    assert torch.equal(normalize(every)[0], ref)
    # the same values in a larger image, two at a time
    big = np.ascontiguousarray(np.repeat(every, 64, axis=1))
    assert torch.equal(normalize(np.stack([big, big[::-1]])),
                       torch.stack([ref.repeat(1, 1, 64), ref.repeat(1, 1, 64).flip(1)]))


def test_array_conversions() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert np.array_equal(load_image(rgb), rgb)
    rgba = np.dstack([rgb, np.full((5, 7), 7, np.uint8)])
    assert np.array_equal(load_image(rgba), rgb)  # alpha dropped, not composited
    gray = rgb[..., 0]
    assert np.array_equal(load_image(gray), np.repeat(gray[..., None], 3, axis=2))
    assert np.array_equal(load_image(gray[..., None]), np.repeat(gray[..., None], 3, axis=2))
    a16 = rng.integers(0, 65536, (5, 7, 3), dtype=np.uint16)
    assert np.array_equal(load_image(a16), (a16 >> 8).astype(np.uint8))  # as PIL reads RGB16
    g16 = a16[..., 0]
    # a greyscale 16-bit array: what PIL's convert("RGB") gives for the same data (clipped)
    want = np.asarray(Image.fromarray(g16).convert("RGB"))
    assert np.array_equal(load_image(g16), want)
    assert np.array_equal(load_image(g16[..., None]), want)
    hb = load_image(g16, high_depth="high_byte")
    assert np.array_equal(hb, np.repeat((g16[..., None] >> 8).astype(np.uint8), 3, axis=2))
    with pytest.raises(ValueError, match="high_depth must be one of clip, high_byte"):
        load_image(g16, high_depth="stretch")
    assert load_image(np.asfortranarray(rgb)).flags.c_contiguous


def test_pil_conversions() -> None:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (6, 4, 3), dtype=np.uint8)
    assert np.array_equal(load_image(Image.fromarray(rgb)), rgb)
    rgba = Image.fromarray(np.dstack([rgb, np.zeros((6, 4), np.uint8)]), "RGBA")
    assert np.array_equal(load_image(rgba), rgb)  # even with alpha 0
    gray = Image.fromarray(rgb[..., 1], "L")
    assert np.array_equal(load_image(gray), np.repeat(rgb[..., 1:2], 3, axis=2))
    pal = Image.fromarray(rgb).convert("P")
    assert np.array_equal(load_image(pal), np.asarray(pal.convert("RGB")))
    la = gray.convert("LA")
    assert np.array_equal(load_image(la), np.repeat(rgb[..., 1:2], 3, axis=2))
    cmyk = Image.fromarray(rgb).convert("CMYK")
    assert load_image(cmyk).shape == (6, 4, 3)
    i32 = Image.fromarray(np.array([[0, 256], [65535, 512]], dtype=np.int32), "I")
    assert load_image(i32)[..., 0].tolist() == [[0, 255], [255, 255]]  # PIL clips
    assert load_image(i32, high_depth="high_byte")[..., 0].tolist() == [[0, 1], [255, 2]]


def test_16bit_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    a16 = rng.integers(0, 65536, (9, 11, 3), dtype=np.uint16)
    for ext in ("tif", "png"):
        p = tmp_path / f"rgb16.{ext}"
        assert cv2.imwrite(str(p), a16[..., ::-1])  # cv2 writes BGR
        out = load_image(p)
        assert np.array_equal(out, (a16 >> 8).astype(np.uint8)), ext
        # same as the official README's cv2.imread (8-bit conversion) for PNG
        if ext == "png":
            ref = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
            assert np.array_equal(out, ref)
        g = tmp_path / f"gray16.{ext}"
        assert cv2.imwrite(str(g), a16[..., 0])
        with Image.open(g) as im:  # the official loaders' decoding
            assert np.array_equal(load_image(g), np.asarray(im.convert("RGB")))
        high = load_image(g, high_depth="high_byte")
        assert np.array_equal(high, np.repeat((a16[..., :1] >> 8).astype(np.uint8), 3, axis=2))


def _high_depth_files(tmp_path: Path) -> list[Path]:
    """One file per PIL high-depth greyscale mode, values spanning every clipping edge."""
    g = np.array([[0, 1, 100, 254, 255, 256, 300, 1000, 4095, 65535]], dtype=np.uint16)
    out = []
    p = tmp_path / "I16.png"
    Image.fromarray(g).save(p)  # mode I;16
    out.append(p)
    p = tmp_path / "I16B.tif"
    Image.frombytes("I;16B", (g.shape[1], 1), g.astype(">u2").tobytes()).save(p)
    out.append(p)
    p = tmp_path / "I.tif"
    Image.fromarray(np.array([[-7, 0, 99, 255, 256, 70000, -70000]], dtype=np.int32)).save(p)
    out.append(p)
    p = tmp_path / "F.tif"
    f = np.array([[-0.7, 0.6, 1.0, 99.9, 100.5, 254.99, 255.5, 1e6, np.nan]], dtype=np.float32)
    Image.fromarray(f).save(p)
    out.append(p)
    return out


def test_high_depth_greyscale_matches_pil_convert_rgb(tmp_path: Path) -> None:
    """Official loaders: ``Image.open(p).convert("RGB")`` (PIL clips; it never keeps the high
    byte). Each mode's file gives exactly PIL's array, from a path, a PIL image and the kit."""
    from remotesam.bench.kit import load_image as kit_load

    modes = []
    for p in _high_depth_files(tmp_path):
        with Image.open(p) as im:
            modes.append(im.mode)
            want = np.asarray(im.convert("RGB"))
            assert np.array_equal(load_image(im), want), p.name
        assert np.array_equal(load_image(p), want), p.name
        assert np.array_equal(kit_load(p), want), p.name
        assert want.max() <= 255 and want.dtype == np.uint8
    assert modes == ["I;16", "I;16B", "I", "F"]
    # the old rule is an option: 16-bit keeps its high byte (1000 -> 3, not 255)
    i16 = tmp_path / "I16.png"
    assert load_image(i16)[0, 7, 0] == 255
    assert load_image(i16, high_depth="high_byte")[0, 7, 0] == 3
    assert kit_load(i16, high_depth="high_byte")[0, 7, 0] == 3


def test_grayscale_and_rgba_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    gray = rng.integers(0, 256, (13, 17), dtype=np.uint8)
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    assert np.array_equal(load_image(tmp_path / "g.png"), np.repeat(gray[..., None], 3, axis=2))
    rgba = rng.integers(0, 256, (13, 17, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert np.array_equal(load_image(tmp_path / "a.png"), rgba[..., :3])
    Image.fromarray(gray, "L").save(tmp_path / "g.tif")
    assert load_image(tmp_path / "g.tif").shape == (13, 17, 3)


@pytest.mark.parametrize(
    ("bad", "exc", "msg"),
    [
        (np.zeros((4, 4, 3), np.float32), TypeError, r"dtype float32; expected uint8"),
        (np.zeros((4, 4, 3), np.int32), TypeError, r"dtype int32; expected uint8"),
        (np.zeros((4, 4, 3), bool), TypeError, r"dtype bool; expected uint8"),
        (
            np.zeros((1, 4, 4, 3), np.uint8),
            ValueError,
            r"shape \(1, 4, 4, 3\) \(4-D\); expected \(H, W, 3\)",
        ),
        (np.zeros(5, np.uint8), ValueError, r"\(1-D\); expected \(H, W, 3\)"),
        (
            np.zeros((4, 4, 2), np.uint8),
            ValueError,
            r"with 2 channels; expected 1 \(gray\), 3 \(RGB\) or 4",
        ),
        (
            np.zeros((3, 32, 32), np.uint8),
            ValueError,
            r"32 channels.*channels-first: use a.transpose\(1, 2, 0\)",
        ),
        (np.zeros((0, 5, 3), np.uint8), ValueError, r"image array is empty"),
        ([[0, 1], [2, 3]], TypeError, r"image must be a numpy array .* got builtins.list"),
        (torch.zeros(3, 4, 4), TypeError, r"got torch.Tensor"),
    ],
)
def test_bad_arrays(bad, exc, msg) -> None:
    with pytest.raises(exc, match=msg):
        load_image(bad)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"image file not found: '.*nope\.jpg'"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(FileNotFoundError, match="image file not found"):
        load_image(str(tmp_path / "nope.png"))
    with pytest.raises(IsADirectoryError, match="got the directory"):
        load_image(tmp_path)
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(ValueError, match=r"cannot read '.*text\.jpg' as an image"):
        load_image(tmp_path / "text.jpg")
    f32 = tmp_path / "float.tif"
    Image.fromarray(np.ones((3, 3), np.float32), "F").save(f32)
    with pytest.raises(TypeError, match=r"floating-point image \(PIL mode 'F'\)"):
        load_image(f32, high_depth="high_byte")
    big = Image.fromarray(np.array([[0, 70000]], dtype=np.int32), "I")
    with pytest.raises(ValueError, match=r"32-bit integer image with values in \[0, 70000\]"):
        load_image(big, high_depth="high_byte")
    truncated = tmp_path / "trunc.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:60])
    with pytest.raises(ValueError, match="cannot read"):
        load_image(truncated)


def test_preprocess_errors() -> None:
    img = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="size must be a positive int"):
        preprocess(img, 0)
    with pytest.raises(ValueError, match="size must be a positive int"):
        preprocess(img, 22.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="images is empty"):
        preprocess([], 8)
    with pytest.raises(TypeError, match="normalize expects"):
        normalize(np.zeros((4, 4, 3), np.float32))
    assert preprocess([img, np.zeros((7, 3), np.uint8)], 8).shape == (2, 3, 8, 8)
