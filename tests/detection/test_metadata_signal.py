from __future__ import annotations

import io
import json
import os
import time
import zlib

import pytest
from PIL import Image

from detection.signals.metadata import (
    CAMERA_EXIF,
    NOTHING_FOUND,
    metadata_signal,
)
from tests.detection.conftest import SD_PARAMETERS, Media

COMFYUI_PROMPT = json.dumps(
    {
        "3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 20, "cfg": 7.0, "model": ["4", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse at dusk", "clip": ["4", 1]}},
    }
)
COMFYUI_WORKFLOW = json.dumps({"last_node_id": 9, "nodes": [{"id": 3, "type": "KSampler"}], "links": []})


def test_it_flags_a_png_with_stable_diffusion_parameters(media: type[Media]) -> None:
    signal = metadata_signal(media.png(text={"parameters": SD_PARAMETERS}))

    assert signal.name == "metadata"
    assert signal.value >= 0.95
    assert signal.detail["generator"] == "Stable Diffusion web UI"
    assert signal.detail["field"] == "png:parameters"
    assert signal.detail["model"] == "v1-5-pruned-emaonly"
    assert "Stable Diffusion web UI" in signal.detail["summary"]
    assert signal.detail["excerpt"].startswith("a photo of a lighthouse")


def test_it_names_forge_when_the_parameters_carry_a_forge_version(media: type[Media]) -> None:
    parameters = SD_PARAMETERS.replace("Version: v1.9.4", "Version: f2.0.1v1.10.1-previous-313")

    signal = metadata_signal(media.png(text={"parameters": parameters}))

    assert signal.detail["generator"] == "Stable Diffusion WebUI Forge"


def test_it_ignores_a_parameters_chunk_that_holds_no_generation_settings(media: type[Media]) -> None:
    signal = metadata_signal(media.png(text={"parameters": "exposure +0.3, white balance auto"}))

    assert signal.value == 0.5


@pytest.mark.parametrize("key, text", [("prompt", COMFYUI_PROMPT), ("workflow", COMFYUI_WORKFLOW)])
def test_it_flags_comfyui_prompt_and_workflow_chunks(media: type[Media], key: str, text: str) -> None:
    signal = metadata_signal(media.png(text={key: text}))

    assert signal.value >= 0.95
    assert signal.detail["generator"] == "ComfyUI"
    assert signal.detail["field"] == f"png:{key}"


def test_it_names_the_checkpoint_a_comfyui_graph_loads(media: type[Media]) -> None:
    signal = metadata_signal(media.png(text={"prompt": COMFYUI_PROMPT, "workflow": COMFYUI_WORKFLOW}))

    assert signal.detail["model"] == "sd_xl_base_1.0.safetensors"
    assert [finding["field"] for finding in signal.detail["findings"]] == ["png:prompt", "png:workflow"]


def test_it_treats_an_unrecognised_prompt_chunk_as_weaker_evidence(media: type[Media]) -> None:
    signal = metadata_signal(media.png(text={"prompt": "a lighthouse at dusk, oil painting"}))

    assert 0.6 < signal.value < 0.95
    assert "generator" not in signal.detail
    assert "unidentified" in signal.detail["summary"]


@pytest.mark.parametrize("key", ["invokeai_metadata", "invokeai_graph", "sd-metadata", "Dream"])
def test_it_flags_invokeai_metadata(media: type[Media], key: str) -> None:
    signal = metadata_signal(media.png(text={key: '{"app_version": "3.6.0", "steps": 30}'}))

    assert signal.value >= 0.95
    assert signal.detail["generator"] == "InvokeAI"


def test_it_flags_novelai_images_and_reports_each_field(media: type[Media]) -> None:
    comment = json.dumps(
        {"prompt": "a lighthouse", "steps": 28, "sampler": "k_euler", "scale": 5, "uc": "blurry"}
    )

    signal = metadata_signal(
        media.png(text={"Software": "NovelAI", "Source": "Stable Diffusion XL C1E1DE52", "Comment": comment})
    )

    assert signal.value >= 0.95
    assert signal.detail["generator"] == "NovelAI"
    found = {(finding["field"], finding.get("generator")) for finding in signal.detail["findings"]}
    assert found == {
        ("png:Software", "NovelAI"),
        ("png:Source", "Stable Diffusion"),
        ("png:Comment", "NovelAI"),
    }
    assert "2 more metadata findings" in signal.detail["summary"]


def test_it_flags_fooocus(media: type[Media]) -> None:
    parameters = json.dumps({"prompt": "a lighthouse", "steps": 30, "version": "Fooocus v2.5.5"})

    signal = metadata_signal(media.png(text={"parameters": parameters, "fooocus_scheme": "fooocus"}))

    assert signal.value >= 0.95
    assert {finding["generator"] for finding in signal.detail["findings"]} == {"Fooocus"}


@pytest.mark.parametrize(
    "software, generator",
    [
        ("Midjourney v6.1", "Midjourney"),
        ("DALL·E 3", "DALL·E"),
        ("DALL-E 2", "DALL·E"),
        ("Adobe Firefly Image 3", "Adobe Firefly"),
        ("Stable Diffusion 3.5 Large", "Stable Diffusion"),
        ("Google Imagen 3", "Google Imagen"),
        ("FLUX.1 [dev]", "FLUX"),
        ("ComfyUI", "ComfyUI"),
    ],
)
def test_it_recognises_generators_named_in_a_software_chunk(
    media: type[Media], software: str, generator: str
) -> None:
    signal = metadata_signal(media.png(text={"Software": software}))

    assert signal.value >= 0.9
    assert signal.detail["generator"] == generator
    assert generator in signal.detail["summary"]


@pytest.mark.parametrize(
    "software",
    [
        "Adobe Photoshop 25.0 (Macintosh)",
        "GIMP 2.10.36",
        "Editor de imagen",
        "darktable 4.6.1",
        "Snapseed 2.0",
    ],
)
def test_it_does_not_mistake_ordinary_software_for_a_generator(media: type[Media], software: str) -> None:
    assert metadata_signal(media.png(text={"Software": software})).value == 0.5


def test_it_ignores_generator_names_in_free_text_fields(media: type[Media]) -> None:
    signal = metadata_signal(media.png(text={"Title": "lighthouse, in the style of Midjourney"}))

    assert signal.value == 0.5


def test_it_reads_compressed_and_international_text_chunks(media: type[Media]) -> None:
    zipped = metadata_signal(media.png(ztxt={"parameters": SD_PARAMETERS}))
    international = metadata_signal(media.png(itxt={"prompt": COMFYUI_PROMPT}))

    assert zipped.detail["generator"] == "Stable Diffusion web UI"
    assert international.detail["generator"] == "ComfyUI"


def test_it_finds_generator_text_placed_after_the_image_data(media: type[Media]) -> None:
    data = media.with_png_chunk_before_iend(media.png(), b"tEXt", b"parameters\x00" + SD_PARAMETERS.encode())
    unloaded = Image.open(io.BytesIO(data))

    assert metadata_signal(data).detail["generator"] == "Stable Diffusion web UI"
    assert metadata_signal(data, unloaded).detail["generator"] == "Stable Diffusion web UI"


@pytest.mark.parametrize("form", ["attribute", "element", "resource"])
def test_it_flags_xmp_trained_algorithmic_media_in_a_jpeg(media: type[Media], form: str) -> None:
    signal = metadata_signal(media.jpeg(xmp=media.xmp("trainedAlgorithmicMedia", form)))

    assert signal.value == pytest.approx(0.97)
    assert signal.detail["field"] == "xmp:DigitalSourceType"
    assert "trainedAlgorithmicMedia" in signal.detail["summary"]


def test_it_reads_xmp_from_an_app1_segment_spliced_in_by_hand(media: type[Media]) -> None:
    data = media.with_jpeg_app1_xmp(media.jpeg(), media.xmp("trainedAlgorithmicMedia", "element"))

    assert metadata_signal(data).value == pytest.approx(0.97)


def test_it_reads_xmp_from_the_raw_bytes_when_pillow_cannot_open_the_file(media: type[Media]) -> None:
    data = b"not an image header\x00" + media.xmp("trainedAlgorithmicMedia").encode()

    signal = metadata_signal(data)

    assert signal.value == pytest.approx(0.97)
    assert any("could not be opened" in note for note in signal.detail["notes"])


@pytest.mark.parametrize("container", ["jpeg", "png-itxt", "png-text", "webp"])
def test_it_reads_xmp_from_each_container_and_reports_it_once(media: type[Media], container: str) -> None:
    packet = media.xmp("trainedAlgorithmicMedia")
    data = {
        "jpeg": lambda: media.jpeg(xmp=packet),
        "png-itxt": lambda: media.png(itxt={"XML:com.adobe.xmp": packet}),
        "png-text": lambda: media.png(text={"XML:com.adobe.xmp": packet}),
        "webp": lambda: media.webp(packet),
    }[container]()

    signal = metadata_signal(data)

    assert signal.value == pytest.approx(0.97)
    assert len(signal.detail["findings"]) == 1


def test_it_recognises_a_generator_named_as_the_xmp_creator_tool(media: type[Media]) -> None:
    packet = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="Adobe Firefly"/>'
        "</rdf:RDF></x:xmpmeta>"
    )

    signal = metadata_signal(media.jpeg(xmp=packet))

    assert signal.detail["generator"] == "Adobe Firefly"
    assert signal.detail["field"] == "xmp:CreatorTool"


def test_it_ranks_an_ai_composite_below_a_fully_generated_image(media: type[Media]) -> None:
    composite = metadata_signal(media.jpeg(xmp=media.xmp("compositeWithTrainedAlgorithmicMedia")))

    assert 0.85 <= composite.value < 0.97
    assert "composite" in composite.detail["summary"]


def test_it_treats_a_declared_digital_capture_as_mild_evidence_of_a_camera(media: type[Media]) -> None:
    signal = metadata_signal(media.jpeg(xmp=media.xmp("digitalCapture", "element")))

    assert 0.3 <= signal.value < 0.5
    assert "weak evidence" in signal.detail["summary"]


def test_it_reports_an_unknown_source_type_without_moving_the_value(media: type[Media]) -> None:
    signal = metadata_signal(media.jpeg(xmp=media.xmp("digitalArt")))

    assert signal.value == 0.5
    assert signal.detail["findings"][0]["summary"].startswith("XMP DigitalSourceType is 'digitalArt'")


def test_it_flags_exif_software_naming_midjourney(media: type[Media]) -> None:
    signal = metadata_signal(media.jpeg(exif=media.exif(Software="Midjourney")))

    assert signal.value >= 0.9
    assert signal.detail["generator"] == "Midjourney"
    assert signal.detail["field"] == "exif:Software"


def test_it_flags_stable_diffusion_settings_in_an_exif_user_comment(media: type[Media]) -> None:
    # What A1111 writes into JPEG and WebP output: an EXIF UserComment in UTF-16.
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + SD_PARAMETERS.encode("utf-16-be")

    signal = metadata_signal(media.jpeg(exif=exif))

    assert signal.detail["generator"] == "Stable Diffusion web UI"
    assert signal.detail["field"] == "exif:UserComment"


def test_it_treats_camera_make_and_model_as_weak_evidence_of_a_real_photo(media: type[Media]) -> None:
    signal = metadata_signal(media.jpeg(exif=media.exif(Make="Canon", Model="Canon EOS R5")))

    assert signal.value == CAMERA_EXIF
    assert signal.detail["kind"] == "camera"
    assert "Canon EOS R5" in signal.detail["summary"]
    assert "easily forged" in signal.detail["summary"]


def test_it_reports_every_finding_and_takes_its_value_from_the_strongest(media: type[Media]) -> None:
    data = media.jpeg(exif=media.exif(Make="Canon"), xmp=media.xmp("trainedAlgorithmicMedia"))

    signal = metadata_signal(data)

    assert signal.value == pytest.approx(0.97)
    assert {finding["kind"] for finding in signal.detail["findings"]} == {"digital-source-type", "camera"}


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_it_ignores_malformed_exif_and_says_so(media: type[Media]) -> None:
    exif_block = b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\xff\xff\x01\x31garbage"

    signal = metadata_signal(media.jpeg(exif=exif_block))

    assert signal.value == 0.5
    assert any("EXIF" in note for note in signal.detail["notes"])


def test_it_reads_a_jpeg_comment_holding_generation_settings(media: type[Media]) -> None:
    signal = metadata_signal(media.jpeg(comment=SD_PARAMETERS))

    assert signal.detail["field"] == "jpeg:comment"
    assert signal.detail["generator"] == "Stable Diffusion web UI"


def test_it_returns_no_evidence_for_a_plain_png(media: type[Media]) -> None:
    signal = metadata_signal(media.png())

    assert signal.value == 0.5
    assert signal.detail == {"summary": NOTHING_FOUND, "findings": [], "notes": []}


def test_it_caps_excerpts(media: type[Media]) -> None:
    signal = metadata_signal(media.png(text={"parameters": "lighthouse " * 2000 + SD_PARAMETERS}))

    assert signal.detail["generator"] == "Stable Diffusion web UI"
    assert len(signal.detail["excerpt"]) <= 201


@pytest.mark.parametrize(
    "data",
    [
        b"",
        os.urandom(4096),
        b"\x89PNG\r\n\x1a\n" + b"\xff\xff\xff\xfftEXt",  # a chunk claiming 4 GiB
        b"\xff\xd8\xff\xe1\x00\x10Exif\x00\x00II*\x00",  # a JPEG cut short inside EXIF
    ],
)
def test_it_never_raises_on_garbage(data: bytes) -> None:
    signal = metadata_signal(data)

    assert signal.value == 0.5
    json.dumps(signal.as_dict())


def test_it_skips_a_malformed_compressed_chunk_and_says_so(media: type[Media]) -> None:
    data = media.with_png_chunk_before_iend(media.png(), b"zTXt", b"parameters\x00\x00not zlib at all")

    signal = metadata_signal(data)

    assert signal.value == 0.5
    assert any("zTXt" in note for note in signal.detail["notes"])


def test_it_bounds_a_compressed_chunk_that_inflates_enormously(media: type[Media]) -> None:
    bomb = zlib.compress(b"a" * (16 << 20), 9)  # 16 MiB of text in about 16 KiB
    data = media.with_png_chunk_before_iend(media.png(), b"zTXt", b"parameters\x00\x00" + bomb)

    started = time.perf_counter()
    signal = metadata_signal(data)

    assert time.perf_counter() - started < 2.0
    assert signal.value == 0.5


def test_it_stays_fast_on_hostile_xmp(media: type[Media]) -> None:
    hostile = (
        "<x:xmpmeta>" + "</a:DigitalSourceType " * 20_000 + "<" * 200_000 + "DigitalSourceType=" * 20_000
    )

    started = time.perf_counter()
    signal = metadata_signal(media.jpeg(xmp=hostile[:60_000]))
    raw = metadata_signal(b"junk" + hostile.encode())

    assert time.perf_counter() - started < 2.0
    assert signal.value == raw.value == 0.5


def test_its_output_is_json_serialisable(media: type[Media]) -> None:
    data = media.png(
        text={"parameters": SD_PARAMETERS, "Software": "NovelAI"},
        itxt={"XML:com.adobe.xmp": media.xmp("trainedAlgorithmicMedia")},
        exif=media.exif(Make="Canon"),
    )

    decoded = json.loads(json.dumps(metadata_signal(data).as_dict()))

    assert decoded["name"] == "metadata"
    assert len(decoded["detail"]["findings"]) == 4
