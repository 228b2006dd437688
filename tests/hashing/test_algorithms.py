"""Hash algorithms, distances, and hashing uploads end to end."""

import hashlib
import io

import imagehash
import pytest
from PIL import Image

from hashing import algorithms
from hashing.algorithms import (
    ALGORITHMS,
    HashAlgorithm,
    ImageHashes,
    get_algorithm,
    hamming_hex,
    hash_bytes,
    hash_file,
    hash_image,
)
from hashing.decode import open_for_hashing
from hashing.errors import CorruptMedia, EmptyMedia, MediaError, MediaTooLarge, UnreadableMedia
from hashing.pdq import pdq_hash

from .conftest import encode, landscape, shapes

HEX_DIGITS = set("0123456789abcdef")
# Measured on the 100 detection-eval photos (reduced-scale decode against a full decode + ImageHash):
# pHash at most 2 bits apart, dHash (a 9x8 image, so touchy) at most 6; both match at 10.
MAX_PHASH_BITS_FROM_IMAGEHASH = 4
MAX_DHASH_BITS_FROM_IMAGEHASH = 8


# --- the algorithm table ------------------------------------------------------------------------


def test_it_knows_seven_algorithms_with_their_widths_and_thresholds():
    table = {a.name: (a.bits, a.perceptual, a.default_threshold) for a in ALGORITHMS.values()}
    assert table == {
        "pdq": (256, True, 31),
        "phash": (64, True, 10),
        "dhash": (64, True, 10),
        "ahash": (64, True, 10),
        "whash": (64, True, 10),
        "md5": (128, False, 0),
        "sha256": (256, False, 0),
    }
    assert all(name == algorithm.name for name, algorithm in ALGORITHMS.items())


def test_it_looks_algorithms_up_by_name():
    assert get_algorithm("pdq") is ALGORITHMS["pdq"]


def test_it_names_the_known_algorithms_when_asked_for_an_unknown_one():
    with pytest.raises(
        ValueError, match="unknown hash algorithm 'colorhash'; known: pdq, phash, dhash, ahash, whash, md5, sha256"
    ):
        get_algorithm("colorhash")


def test_algorithms_are_immutable():
    with pytest.raises(AttributeError):
        ALGORITHMS["pdq"].default_threshold = 99  # type: ignore[misc]


# --- distances ----------------------------------------------------------------------------------


def test_hamming_hex_counts_differing_bits():
    assert hamming_hex("00", "00") == 0
    assert hamming_hex("0f", "00") == 4
    assert hamming_hex("ff", "00") == 8
    assert hamming_hex("8000000000000001", "0000000000000000") == 2
    assert hamming_hex("ABCD", "abcd") == 0


@pytest.mark.parametrize(
    ("a", "b"),
    [("00", "000"), ("0x10", "0010"), ("zz", "00"), (" 1", "01"), ("1_2", "012"), ("", "")],
)
def test_hamming_hex_rejects_malformed_or_mismatched_values(a, b):
    with pytest.raises(ValueError):
        hamming_hex(a, b)


def test_perceptual_distance_is_the_hamming_distance():
    pdq = get_algorithm("pdq")
    a = "0" * 64
    b = "f" + "0" * 62 + "1"
    assert pdq.distance(a, b) == 5
    assert pdq.distance(a, a) == 0


def test_exact_distance_is_zero_for_equal_values_and_the_full_width_otherwise():
    md5 = get_algorithm("md5")
    a = hashlib.md5(b"a", usedforsecurity=False).hexdigest()
    b = hashlib.md5(b"b", usedforsecurity=False).hexdigest()
    assert md5.distance(a, a) == 0
    assert md5.distance(a, a.upper()) == 0
    assert md5.distance(a, b) == 128


def test_distance_rejects_values_of_the_wrong_length_for_the_algorithm():
    with pytest.raises(ValueError, match="a phash hash is 16 hex characters"):
        get_algorithm("phash").distance("0" * 16, "0" * 64)
    with pytest.raises(ValueError, match="sha256"):
        get_algorithm("sha256").distance("0" * 64, "g" * 64)


def test_a_match_is_a_distance_within_the_default_threshold():
    phash = HashAlgorithm("phash", bits=64, perceptual=True, default_threshold=10)
    base = "0" * 16
    ten_bits = "3ff" + "0" * 13
    eleven_bits = "7ff" + "0" * 13
    assert phash.distance(base, ten_bits) <= phash.default_threshold
    assert phash.distance(base, eleven_bits) > phash.default_threshold


# --- hashing uploads ----------------------------------------------------------------------------


def assert_well_formed(hashes: ImageHashes) -> None:
    for name, value in hashes.values():
        assert len(value) == ALGORITHMS[name].bits // 4, name
        assert set(value) <= HEX_DIGITS, name
    assert 0 <= hashes.pdq_quality <= 100


def test_it_computes_every_hash_of_an_image(photo):
    data = encode(photo, "PNG")

    hashes = hash_bytes(data)

    assert_well_formed(hashes)
    assert hashes.md5 == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert hashes.sha256 == hashlib.sha256(data).hexdigest()
    assert hashes.pdq_quality > 0


def test_its_perceptual_hashes_are_those_of_the_decoded_image(photo):
    hashes = hash_bytes(encode(photo, "PNG"))
    assert (hashes.pdq, hashes.pdq_quality) == pdq_hash(photo)
    # pHash and dHash resize with a box pre-shrink (reducing_gap) before Lanczos: a bit or two apart.
    assert hamming_hex(hashes.phash, str(imagehash.phash(photo))) <= MAX_PHASH_BITS_FROM_IMAGEHASH
    assert hamming_hex(hashes.dhash, str(imagehash.dhash(photo))) <= MAX_DHASH_BITS_FROM_IMAGEHASH


def test_small_images_get_exactly_imagehashs_phash_and_dhash():
    # Under three times dHash's 9x8 there is no pre-shrink: the arithmetic is ImageHash's own.
    image = shapes(26, 23, seed=5)
    hashes = hash_bytes(encode(image, "PNG"))
    assert hashes.phash == str(imagehash.phash(image))
    assert hashes.dhash == str(imagehash.dhash(image))


def test_a_large_jpeg_is_hashed_from_a_reduced_decode_close_to_the_full_one():
    image = landscape(2000, 1500, seed=8)
    data = encode(image, "JPEG", quality=92)
    full = Image.open(io.BytesIO(data)).convert("RGB")

    hashes = hash_bytes(data)

    assert open_for_hashing(data).image.size == (1000, 750)  # decoded at 1/2: 4x fewer pixels
    assert hamming_hex(hashes.pdq, pdq_hash(full)[0]) <= 4
    assert abs(hashes.pdq_quality - pdq_hash(full)[1]) <= 5
    assert hamming_hex(hashes.phash, str(imagehash.phash(full))) <= MAX_PHASH_BITS_FROM_IMAGEHASH
    assert hamming_hex(hashes.dhash, str(imagehash.dhash(full))) <= MAX_DHASH_BITS_FROM_IMAGEHASH


@pytest.mark.parametrize(
    ("name", "reference"),
    [
        ("phash", imagehash.phash),
        ("dhash", imagehash.dhash),
        ("ahash", imagehash.average_hash),
        ("whash", imagehash.whash),
    ],
)
def test_hash_image_computes_each_perceptual_algorithm_as_imagehash_does(photo, name, reference):
    value = hash_image(photo, [name])[name]
    assert len(value) == ALGORITHMS[name].hex_length
    assert hamming_hex(value, str(reference(photo))) <= MAX_DHASH_BITS_FROM_IMAGEHASH


def test_hash_image_gives_the_pdq_of_the_image(photo):
    assert hash_image(photo, ["pdq"]) == {"pdq": pdq_hash(photo)[0]}


def test_every_perceptual_algorithm_matches_a_recompressed_copy_and_not_another_picture(photo, other_photo):
    names = [name for name, algorithm in ALGORITHMS.items() if algorithm.perceptual]
    original = hash_image(photo, names)
    copy = hash_image(Image.open(io.BytesIO(encode(photo, "JPEG", quality=70))), names)
    other = hash_image(other_photo, names)
    for name in names:
        algorithm = ALGORITHMS[name]
        assert algorithm.distance(original[name], copy[name]) <= algorithm.default_threshold, name
        assert algorithm.distance(original[name], other[name]) > algorithm.default_threshold, name


def test_hash_image_refuses_exact_algorithms_and_unknown_names(photo):
    with pytest.raises(ValueError, match="bytes"):
        hash_image(photo, ["sha256"])
    with pytest.raises(ValueError, match="unknown hash algorithm"):
        hash_image(photo, ["colorhash"])


def test_as_dict_has_exactly_the_agreed_keys(photo):
    hashes = hash_bytes(encode(photo, "PNG"))
    as_dict = hashes.as_dict()
    assert list(as_dict) == ["pdq", "pdq_quality", "phash", "dhash", "md5", "sha256"]
    assert as_dict["pdq_quality"] == hashes.pdq_quality
    assert [name for name, _ in hashes.values()] == ["pdq", "phash", "dhash", "md5", "sha256"]
    assert all(as_dict[name] == value for name, value in hashes.values())


def test_perceptual_hashes_match_a_recompressed_copy_and_exact_ones_do_not(photo):
    original = hash_bytes(encode(photo, "PNG"))
    copy = hash_bytes(encode(photo, "JPEG", quality=70))
    for name, value in original.values():
        algorithm = ALGORITHMS[name]
        distance = algorithm.distance(value, dict(copy.values())[name])
        if algorithm.perceptual:
            assert distance <= algorithm.default_threshold, name
        else:
            assert distance == algorithm.bits, name


def test_perceptual_hashes_tell_different_images_apart(photo, other_photo):
    first, second = hash_bytes(encode(photo, "PNG")), hash_bytes(encode(other_photo, "PNG"))
    for name, value in first.values():
        algorithm = ALGORITHMS[name]
        assert algorithm.distance(value, dict(second.values())[name]) > algorithm.default_threshold, name


def test_a_photo_rotated_by_exif_hashes_like_the_same_photo_rotated_in_pixels(photo):
    exif = Image.Exif()
    exif[0x0112] = 6  # display turned 90 degrees clockwise
    tagged = encode(photo, "JPEG", quality=95, exif=exif.tobytes())
    rotated = encode(photo.transpose(Image.Transpose.ROTATE_270), "JPEG", quality=95)
    pdq = get_algorithm("pdq")
    assert pdq.distance(hash_bytes(tagged).pdq, hash_bytes(rotated).pdq) <= pdq.default_threshold


def test_hash_bytes_passes_typed_errors_through():
    with pytest.raises(EmptyMedia):
        hash_bytes(b"")
    jpeg = encode(Image.new("RGB", (300, 300), "gray"), "JPEG")
    with pytest.raises(CorruptMedia):
        hash_bytes(jpeg[: len(jpeg) // 2])


# --- hashing files ------------------------------------------------------------------------------


def test_hash_file_gives_the_same_hashes_as_hash_bytes(photo, tmp_path):
    data = encode(photo, "JPEG", quality=90)
    path = tmp_path / "upload.jpg"
    path.write_bytes(data)
    assert hash_file(path) == hash_bytes(data)
    assert hash_file(str(path)) == hash_bytes(data)


def test_hash_file_reports_a_missing_file_without_revealing_its_path(tmp_path):
    path = tmp_path / "secret-case-1234" / "missing.png"
    with pytest.raises(UnreadableMedia) as caught:
        hash_file(path)
    assert isinstance(caught.value, MediaError)
    assert caught.value.code == "unreadable"
    assert "secret-case-1234" not in str(caught.value)
    assert str(tmp_path) not in str(caught.value)


def test_hash_file_reports_a_directory_as_unreadable(tmp_path):
    with pytest.raises(UnreadableMedia):
        hash_file(tmp_path)


def test_hash_file_stops_reading_at_the_byte_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(algorithms, "MAX_BYTES", 1000)
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(5000))
    with pytest.raises(MediaTooLarge):
        hash_file(path)


def test_hash_file_passes_typed_errors_through(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not an image")
    with pytest.raises(MediaError, match="not an image we can read"):
        hash_file(path)


def test_hash_file_reads_in_chunks(photo, tmp_path, monkeypatch):
    monkeypatch.setattr(algorithms, "_READ_CHUNK", 1000)
    data = encode(photo, "PNG")
    path = tmp_path / "upload.png"
    path.write_bytes(data)
    assert hash_file(path).sha256 == hashlib.sha256(data).hexdigest()
    assert len(data) > 10 * 1000
