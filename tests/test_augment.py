"""Each on-device augmentation op, checked numerically."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from adaptrun.core.errors import ConfigError
from adaptrun.data.augment import (
    Augment,
    check_ops,
    cutout,
    random_affine,
    random_crop,
    random_flip,
)


def _batch(seed: int = 0, shape=(6, 3, 10, 10)) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_crop_without_padding_is_the_identity():
    x = _batch()
    assert torch.equal(random_crop(x, _gen(), padding=0), x)


def test_crop_is_a_window_of_the_zero_padded_image():
    x = _batch()
    out = random_crop(x, _gen(), padding=3)
    padded = F.pad(x, (3, 3, 3, 3))
    assert out.shape == x.shape
    offsets = set()
    for b in range(len(x)):
        matches = [
            (dy, dx)
            for dy in range(7)
            for dx in range(7)
            if torch.equal(out[b], padded[b, :, dy : dy + 10, dx : dx + 10])
        ]
        assert len(matches) == 1
        offsets.add(matches[0])
    assert len(offsets) > 1  # images got different shifts


def test_flip_twice_is_the_identity_and_p_controls_it():
    x = _batch()
    assert torch.equal(random_flip(random_flip(x, _gen(), p=1.0), _gen(), p=1.0), x)
    assert torch.equal(random_flip(x, _gen(), p=1.0), x.flip(3))
    assert torch.equal(random_flip(x, _gen(), p=0.0), x)
    mixed = random_flip(x, _gen(), p=0.5)
    flipped = [torch.equal(mixed[b], x[b].flip(2)) for b in range(len(x))]
    assert all(f or torch.equal(mixed[b], x[b]) for b, f in enumerate(flipped))


def test_identity_affine_is_the_identity():
    x = _batch()
    out = random_affine(x, _gen(), degrees=0, scale=(1, 1), translate=0)
    torch.testing.assert_close(out, x, rtol=0, atol=1e-6)


def test_affine_zoom_in_matches_a_centre_crop_and_rotation_moves_pixels():
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 3:5, 3:5] = 1.0  # a centred 2x2 square
    zoomed = random_affine(x, _gen(), scale=(2, 2))  # 2x zoom: the square becomes 4x4
    assert zoomed[0, 0, 2:6, 2:6].min() > 0.2 and zoomed[0, 0, :1].abs().max() < 1e-6
    rotated = random_affine(_batch(), _gen(), degrees=45)
    assert not torch.allclose(rotated, _batch())


def test_cutout_zeroes_one_square_per_image():
    x = torch.ones(8, 2, 12, 12)
    out = cutout(x, _gen(), size=4)
    zeros = (out[:, 0] == 0).sum(dim=(1, 2))
    assert torch.all(zeros <= 16) and torch.all(zeros >= 4)  # clipped at the border
    assert torch.equal(out[:, 0] == 0, out[:, 1] == 0)  # same hole in every channel


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "crop", "padding": 4}],
        [{"op": "flip"}],
        [{"op": "affine", "degrees": 15, "scale": [0.85, 1.15], "translate": 0.1}],
        [{"op": "cutout", "size": 5}],
        [{"op": "crop", "padding": 2}, {"op": "flip"}, {"op": "affine", "degrees": 4}],
    ],
)
def test_ops_keep_shape_and_range_and_are_seeded(ops):
    augment = Augment(ops)
    x = _batch()
    out = augment(x, _gen(7))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= 0 and out.max() <= 1
    assert torch.equal(augment(x, _gen(7)), out)
    assert not torch.equal(augment(x, _gen(8)), out)


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "rotate"}],
        [{"op": "crop", "padding": -1}],
        [{"op": "flip", "p": 2}],
        [{"op": "affine", "scale": [1.2, 0.8]}],
        [{"op": "cutout", "size": 0}],
        [{"op": "crop", "pad": 4}],
    ],
)
def test_bad_recipes_name_the_op(ops):
    with pytest.raises(ConfigError) as info:
        check_ops(ops)
    assert info.value.key == "augmentation.ops[0]"
