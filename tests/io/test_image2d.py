"""2D images and arrays: exact round trips, palettes, TIFF stacks, masks, writable voxels, units kept in PNG."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from mrisr.errors import InputError
from mrisr.io import Volume, read_volume, write_volume


def test_16_bit_png_round_trip_is_exact(tmp_path):
    img = np.random.default_rng(0).integers(0, 65536, size=(37, 53), dtype=np.uint16)
    Image.fromarray(img).save(tmp_path / "a.png")
    vol = read_volume(tmp_path / "a.png")
    assert vol.shape == (53, 37) and np.array_equal(vol.data.T, img)
    write_volume(vol, tmp_path / "b.png")
    back = np.asarray(Image.open(tmp_path / "b.png"))
    assert back.dtype == np.uint16 and np.array_equal(back, img)


def test_8_bit_png_stays_8_bit(tmp_path):
    img = np.random.default_rng(1).integers(0, 256, size=(9, 11), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "a.png")
    write_volume(read_volume(tmp_path / "a.png"), tmp_path / "b.png")
    back = np.asarray(Image.open(tmp_path / "b.png"))
    assert back.dtype == np.uint8 and np.array_equal(back, img)


def test_upscaled_png_keeps_the_input_units(tmp_path):
    img = np.random.default_rng(2).integers(100, 3000, size=(8, 8), dtype=np.uint16)
    Image.fromarray(img).save(tmp_path / "a.png")
    vol = read_volume(tmp_path / "a.png")
    # an upscaler's float output with a little overshoot below 0 is rounded and clipped, never stretched
    out = vol.with_data(np.concatenate([vol.data + 0.3, np.full((8, 8), -4.0, np.float32)]))
    write_volume(out, tmp_path / "b.png")
    back = np.asarray(Image.open(tmp_path / "b.png")).T
    assert np.array_equal(back[:8], img.T) and np.all(back[8:] == 0)
    # float MR values from another format (range >= 256 levels) are stored rounded, in their units
    mr = Volume(np.linspace(121.4, 1929.6, 64, dtype=np.float32).reshape(8, 8), np.eye(4), {"format": "dicom"})
    write_volume(mr, tmp_path / "mr.png")
    np.testing.assert_allclose(np.asarray(Image.open(tmp_path / "mr.png")).T, mr.data, atol=0.5)


def test_values_png_cannot_hold_are_scaled_with_a_warning(tmp_path, caplog):
    vol = Volume(np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4), np.eye(4), {"format": "nifti"})
    with caplog.at_level(logging.WARNING):
        write_volume(vol, tmp_path / "n.png")
    back = np.asarray(Image.open(tmp_path / "n.png"))
    assert back.min() == 0 and back.max() == 65535 and "scaled" in caplog.text


def test_palette_png_gives_grey_levels_not_indices(tmp_path):
    idx = np.array([[0, 1], [2, 3]], dtype=np.uint8)
    im = Image.fromarray(idx, mode="P")
    palette = [0] * 768
    for i, grey in enumerate([200, 10, 50, 0]):
        palette[3 * i:3 * i + 3] = [grey, grey, grey]
    im.putpalette(palette)
    im.save(tmp_path / "grey.png")
    assert np.array_equal(read_volume(tmp_path / "grey.png").data.T, [[200, 10], [50, 0]])
    palette[3:6] = [255, 0, 0]
    im.putpalette(palette)
    im.save(tmp_path / "colour.png")
    with pytest.raises(InputError, match="colour"):
        read_volume(tmp_path / "colour.png")


def test_multipage_tiff_is_a_stack(tmp_path):
    pages = [np.full((5, 7), v, dtype=np.uint16) for v in (10, 20, 30)]
    ims = [Image.fromarray(p) for p in pages]
    ims[0].save(tmp_path / "stack.tif", save_all=True, append_images=ims[1:])
    vol = read_volume(tmp_path / "stack.tif")
    assert vol.shape == (7, 5, 3) and [float(vol.data[0, 0, k]) for k in range(3)] == [10, 20, 30]
    Image.fromarray(pages[0]).save(tmp_path / "odd.tif", save_all=True,
                                   append_images=[Image.fromarray(np.zeros((4, 4), np.uint16))])
    with pytest.raises(InputError, match="pages differ"):
        read_volume(tmp_path / "odd.tif")


@pytest.mark.parametrize("dtype", ["uint8", "int16", ">i2", "uint32", "int64", "float16", "float32", "<f8", "bool"])
def test_npy_dtypes_read_as_writable_float32(tmp_path, dtype):
    arr = (np.arange(24).reshape(4, 6) % 5).astype(dtype)
    np.save(tmp_path / "a.npy", arr)
    vol = read_volume(tmp_path / "a.npy")
    assert vol.data.dtype == np.float32 and np.array_equal(vol.data, arr.astype(np.float32))
    assert vol.data.flags.writeable and not isinstance(vol.data.base, np.memmap)
    vol.data += 1  # in-place work on the voxels must not fail nor touch the file
    assert np.array_equal(np.load(tmp_path / "a.npy"), arr)


def test_convert_onto_its_own_input_with_force(tmp_path):
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(tmp_path / "a.npy", arr)
    write_volume(read_volume(tmp_path / "a.npy").with_data(arr * 2), tmp_path / "a.npy", force=True)
    assert np.array_equal(np.load(tmp_path / "a.npy"), arr * 2)


def test_volumes_a_2d_format_cannot_hold_are_refused_naming_the_output(tmp_path):
    vol4 = Volume(np.zeros((4, 5, 3, 2), np.float32), np.eye(4))
    for name in ("x.png", "x.tif"):
        with pytest.raises(InputError, match=rf"^{tmp_path / name}: a 4D volume"):
            write_volume(vol4, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_3d_volume_round_trips_through_a_multipage_tiff(tmp_path):
    vol = Volume(np.random.default_rng(3).random((6, 5, 4)).astype(np.float32), np.eye(4))
    write_volume(vol, tmp_path / "s.tif")
    assert np.array_equal(read_volume(tmp_path / "s.tif").data, vol.data)
