"""The torch batch path gives the single-image path's hashes, on the CPU here and on CUDA where present."""

import numpy as np
import pytest
import torch

from hashing.algorithms import hamming_hex
from hashing.batch import default_device, pdq_hash_batch
from hashing.pdq import pdq_hash_array

from .conftest import landscape, shapes

# Same arithmetic in another summation order: a bit may flip where a coefficient sits at the median.
MAX_BITS_FROM_SINGLE = 4
MAX_QUALITY_FROM_SINGLE = 1


def assert_same_hashes(batch: list[tuple[str, int]], arrays: list[np.ndarray]) -> None:
    assert len(batch) == len(arrays)
    for (value, quality), array in zip(batch, arrays, strict=True):
        single, single_quality = pdq_hash_array(array)
        assert hamming_hex(value, single) <= MAX_BITS_FROM_SINGLE
        assert abs(quality - single_quality) <= MAX_QUALITY_FROM_SINGLE


def test_it_hashes_a_list_of_differently_sized_images_in_order(scenes):
    arrays = [np.asarray(image) for image in scenes.values()]
    assert_same_hashes(pdq_hash_batch(arrays, device="cpu"), arrays)


def test_it_hashes_a_tensor_of_equal_sized_images():
    arrays = [np.asarray(landscape(320, 240, seed=seed)) for seed in range(4)]
    result = pdq_hash_batch(torch.from_numpy(np.stack(arrays)), device="cpu")
    assert_same_hashes(result, arrays)
    assert len(set(result)) == 4


def test_it_keeps_input_order_when_sizes_interleave():
    arrays = [np.asarray(shapes(*size, seed=i)) for i, size in enumerate([(100, 80), (64, 64), (100, 80), (70, 90)])]
    assert [value for value, _ in pdq_hash_batch(arrays, device="cpu")] == [pdq_hash_array(a)[0] for a in arrays]


def test_it_gives_tiny_images_the_reference_empty_hash():
    assert pdq_hash_batch([np.zeros((4, 30, 3), dtype=np.uint8)], device="cpu") == [("0" * 64, 0)]


def test_it_rejects_arrays_that_are_not_rgb_bytes():
    with pytest.raises(ValueError, match="H x W x 3"):
        pdq_hash_batch([np.zeros((10, 10), dtype=np.uint8)], device="cpu")
    with pytest.raises(ValueError, match="uint8"):
        pdq_hash_batch(torch.zeros((2, 10, 10, 3), dtype=torch.float32), device="cpu")


def test_it_defaults_to_cuda_only_when_torch_sees_a_gpu():
    assert default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_it_gives_the_same_hashes_on_cuda(scenes):
    arrays = [np.asarray(image) for image in scenes.values()]
    assert_same_hashes(pdq_hash_batch(arrays, device="cuda"), arrays)
