"""Unsigned metadata hints: XMP/IPTC, generator PNG text chunks, EXIF; damage gives warnings."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from detector.provenance.hints import classify_software, metadata_hints
from detector.provenance.reader import ProvenanceReader

TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
SD_PARAMETERS = (
    "a lighthouse at dusk, oil painting\nNegative prompt: blurry\n"
    "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 512x512, Model: v1-5-pruned"
)


def _image() -> Image.Image:
    return Image.fromarray(np.full((24, 24, 3), 90, dtype=np.uint8))


def png_with_text(**chunks: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    buf = io.BytesIO()
    _image().save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def jpeg(exif: Image.Exif | None = None) -> bytes:
    buf = io.BytesIO()
    _image().save(buf, format="JPEG", **({"exif": exif} if exif is not None else {}))
    return buf.getvalue()


def xmp_packet(body: str) -> bytes:
    return (
        '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'{body}</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode()


def jpeg_with_app1(payload: bytes, declared_length: int | None = None) -> bytes:
    """A JPEG with one extra APP1 segment right after SOI."""
    base = jpeg()
    length = declared_length if declared_length is not None else len(payload) + 2
    return base[:2] + b"\xff\xe1" + struct.pack(">H", length) + payload + base[2:]


def names(data: bytes) -> dict[str, tuple[str, str, str]]:
    return {h.name: (h.strength, h.indicates, h.value) for h in metadata_hints(data).hints}


def test_png_with_stable_diffusion_parameters() -> None:
    found = metadata_hints(png_with_text(parameters=SD_PARAMETERS))
    (hint,) = found.hints
    assert (hint.name, hint.strength, hint.source, hint.indicates) == (
        "png_sd_parameters",
        "strong",
        "png_text",
        "generative_ai",
    )
    assert hint.value.startswith("a lighthouse at dusk")
    assert "Steps: 20" in hint.value
    assert found.warnings == []


def test_jpeg_with_xmp_digital_source_type_as_attribute_and_element() -> None:
    attr = xmp_packet(
        '<rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        f'Iptc4xmpExt:DigitalSourceType="{TRAINED}"/>'
    )
    element = xmp_packet(
        '<rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/">'
        f"<Iptc4xmpExt:DigitalSourceType>{TRAINED}</Iptc4xmpExt:DigitalSourceType></rdf:Description>"
    )
    for packet in (attr, element):
        data = jpeg_with_app1(b"http://ns.adobe.com/xap/1.0/\x00" + packet)
        assert names(data)["xmp_digital_source_type"] == ("strong", "generative_ai", TRAINED)


def test_xmp_capture_declaration_and_creator_tool_are_weak() -> None:
    packet = xmp_packet(
        '<rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="GIMP 2.10" '
        'Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"/>'
    )
    found = names(jpeg_with_app1(b"http://ns.adobe.com/xap/1.0/\x00" + packet))
    assert found["xmp_digital_source_type"][:2] == ("weak", "camera")
    assert found["xmp_creator_tool"] == ("weak", "editing_software", "GIMP 2.10")


def test_xmp_in_png_itxt_is_found() -> None:
    packet = xmp_packet(
        '<rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        'Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/'
        'compositeWithTrainedAlgorithmicMedia"/>'
    )
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", packet.decode(), zip=True)
    buf = io.BytesIO()
    _image().save(buf, format="PNG", pnginfo=info)
    assert names(buf.getvalue())["xmp_digital_source_type"][:2] == ("strong", "ai_edited")


@pytest.mark.parametrize(
    ("chunks", "name"),
    [
        ({"Software": "NovelAI", "Source": "NovelAI Diffusion V4"}, "png_novelai_software"),
        (
            {"Comment": json.dumps({"steps": 28, "sampler": "k_euler", "seed": 5, "scale": 5})},
            "png_novelai_comment",
        ),
        (
            {"invokeai_metadata": json.dumps({"model": {"name": "sdxl"}, "steps": 30})},
            "png_invokeai_metadata",
        ),
        (
            {"sd-metadata": json.dumps({"model": "stable diffusion", "image": {"steps": 50}})},
            "png_invokeai_metadata",
        ),
        ({"Software": "Midjourney"}, "png_software"),
    ],
)
def test_generator_png_chunks(chunks: dict[str, str], name: str) -> None:
    strength, indicates, _value = names(png_with_text(**chunks))[name]
    assert (strength, indicates) == ("strong", "generative_ai")


def test_comfyui_outputs_carry_their_workflow(shared_data: Path) -> None:
    files = sorted((shared_data / "synthetic/generated/comfyui").glob("*.png"))
    assert len(files) >= 10
    for path in files:
        found = metadata_hints(path.read_bytes())
        by_name = {h.name: h for h in found.hints}
        assert found.warnings == [], path.name
        for name in ("png_comfyui_prompt", "png_comfyui_workflow"):
            assert by_name[name].strength == "strong", path.name
            assert by_name[name].value.startswith("ComfyUI graph with "), path.name


def test_real_photo_without_generator_metadata_has_no_ai_hint(shared_data: Path) -> None:
    found = metadata_hints((shared_data / "c2pa/no_manifest/c2pa-python__A.jpg").read_bytes())
    assert found.hints, "the fixture has EXIF and XMP"
    assert {h.indicates for h in found.hints} <= {"camera", "editing_software", "other"}
    assert all(h.strength == "weak" for h in found.hints)


def test_exif_make_model_software_are_classified() -> None:
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "Canon EOS R5"
    exif[0x0131] = "Adobe Photoshop 25.0 (Windows)"
    found = names(jpeg(exif))
    assert found["exif_make"] == ("weak", "camera", "Canon")
    assert found["exif_model"] == ("weak", "camera", "Canon EOS R5")
    assert found["exif_software"] == ("weak", "editing_software", "Adobe Photoshop 25.0 (Windows)")


def test_exif_generator_software_and_sd_user_comment_are_strong() -> None:
    exif = Image.Exif()
    exif[0x0131] = "Adobe Firefly"
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + SD_PARAMETERS.encode("utf-16-be")
    found = names(jpeg(exif))
    assert found["exif_software"][:2] == ("strong", "generative_ai")
    assert found["exif_sd_parameters"][:2] == ("strong", "generative_ai")


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("Canon", "camera"),
        ("NIKON CORPORATION", "camera"),
        ("samsung", "camera"),
        ("Canonical Ubuntu", "unknown"),
        ("Adobe Photoshop 26.0 (Macintosh)", "editor"),
        ("GIMP 2.10.36", "editor"),
        ("Adobe Firefly", "generator"),
        ("NovelAI", "generator"),
        ("Midjourney v6", "generator"),
        ("J320FXXU0AQL1", "unknown"),
        ("", "unknown"),
    ],
)
def test_classify_software(value: str, kind: str) -> None:
    assert classify_software(value) == kind


@pytest.mark.parametrize(
    ("data", "warning"),
    [
        (jpeg_with_app1(b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff"), "EXIF block is damaged"),
        (jpeg_with_app1(b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta><broken"), "not well-formed XML"),
        (jpeg_with_app1(b"x" * 10, declared_length=60000), "runs past the end"),
        (png_with_text(parameters="x")[:-30], "runs past the end"),
    ],
    ids=["bad-exif", "bad-xmp", "jpeg-segment-overrun", "png-truncated"],
)
def test_corrupt_metadata_gives_a_warning_not_a_crash(data: bytes, warning: str) -> None:
    found = metadata_hints(data)
    assert any(warning in w for w in found.warnings), found.warnings
    report = ProvenanceReader().read(data, "image/jpeg" if data[:2] == b"\xff\xd8" else "image/png")
    assert any(warning in w for w in report.warnings)


def test_xmp_with_entities_is_not_expanded() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/">&b;</x:xmpmeta>'
    )
    found = metadata_hints(jpeg_with_app1(b"http://ns.adobe.com/xap/1.0/\x00" + bomb))
    assert found.hints == []
    assert any("DTD" in w for w in found.warnings)


def test_broken_compressed_png_text_is_a_warning() -> None:
    body = b"parameters\x00\x00" + zlib.compress(b"Steps: 1")[:-4] + b"junk"
    chunk = struct.pack(">I", len(body)) + b"zTXt" + body + struct.pack(">I", zlib.crc32(b"zTXt" + body))
    plain = png_with_text()
    data = plain[:33] + chunk + plain[33:]  # after the 8-byte signature and 25-byte IHDR chunk
    found = metadata_hints(data)
    assert found.hints == []
    assert any("cannot be decoded" in w for w in found.warnings)


def test_hints_come_with_every_provenance_report() -> None:
    report = ProvenanceReader().read(png_with_text(parameters=SD_PARAMETERS), "image/png")
    assert report.state == "absent"
    assert [h.name for h in report.metadata_hints] == ["png_sd_parameters"]


def test_webp_tiff_and_other_containers() -> None:
    packet = xmp_packet(
        '<rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        f'Iptc4xmpExt:DigitalSourceType="{TRAINED}"/>'
    )
    exif = Image.Exif()
    exif[0x010F] = "NIKON CORPORATION"
    webp, tiff = io.BytesIO(), io.BytesIO()
    _image().save(webp, format="WEBP", xmp=packet, exif=exif)
    _image().save(tiff, format="TIFF", exif=exif)
    found = names(webp.getvalue())
    assert found["xmp_digital_source_type"][:2] == ("strong", "generative_ai")
    assert found["exif_make"] == ("weak", "camera", "NIKON CORPORATION")
    assert names(tiff.getvalue())["exif_make"][1] == "camera"
    # HEIC, MP4, MOV...: the XMP packet is found by scanning
    iso_bmff = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 64 + packet + b"\x00" * 16
    assert names(iso_bmff)["xmp_digital_source_type"][1] == "generative_ai"
