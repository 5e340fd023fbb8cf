"""Provenance on files the tests sign themselves with a generated root + leaf chain.

JPEG, PNG and MP4 are signed once per session declaring ``trainedAlgorithmicMedia``; then read
back as they are, with one pixel byte flipped, with the manifest stripped and with the manifest
box corrupted.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from PIL import Image

from detector.provenance.reader import ProvenanceReader
from detector.settings import ProvenanceSettings
from tests.support.c2pa_signing import (
    DIGITAL_CAPTURE,
    SIGNER_CN,
    SIGNER_ORG,
    TRAINED_ALGORITHMIC_MEDIA,
    SigningChain,
    flip_pixel_byte,
    make_chain,
    sign_media,
    unsigned_media,
)

MIMES = ("image/jpeg", "image/png", "video/mp4")
HASH_MISMATCH = {
    "image/jpeg": "assertion.dataHash.mismatch",
    "image/png": "assertion.dataHash.mismatch",
    "video/mp4": "assertion.bmffHash.mismatch",
}


@pytest.fixture(scope="session")
def chain() -> SigningChain:
    return make_chain()


@pytest.fixture(scope="session")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return unsigned_media(tmp_path_factory.mktemp("signed"), seed=7)


@pytest.fixture(scope="session")
def signed(chain: SigningChain, originals: dict[str, bytes]) -> dict[str, bytes]:
    return {mime: sign_media(chain, data, mime) for mime, data in originals.items()}


@pytest.fixture(scope="session")
def trusting(chain: SigningChain, tmp_path_factory: pytest.TempPathFactory) -> ProvenanceReader:
    root = chain.write_root(tmp_path_factory.mktemp("anchors") / "root.pem")
    return ProvenanceReader(ProvenanceSettings(trust_anchors=[root]))


@pytest.fixture(scope="session")
def plain() -> ProvenanceReader:
    return ProvenanceReader()


@pytest.mark.parametrize("mime", MIMES)
def test_signed_media_reads_back_generated_and_trusted(
    mime: str, signed: dict[str, bytes], trusting: ProvenanceReader
) -> None:
    report = trusting.read(signed[mime], mime)
    assert report.state == "trusted", report.state_description
    assert report.failure_codes == []
    assert report.ai_declaration.value == "generated"
    assert report.ai_declaration.source_type == TRAINED_ALGORITHMIC_MEDIA
    assert report.ai_declaration.software_agent == "Test Generator 2.1"
    manifest = report.active_manifest
    assert manifest is not None
    assert (manifest.signer.organisation, manifest.signer.common_name) == (SIGNER_ORG, SIGNER_CN)
    assert manifest.signer.algorithm == "es256"
    assert (manifest.claim_generator, manifest.claim_generator_version) == ("trueframe-tests", "1.0")
    assert [a.action for a in manifest.actions] == ["c2pa.created"]
    # offline: the SDK says it skipped the revocation check rather than doing it
    assert any(s.code == "signingCredential.ocsp.skipped" for s in report.status_codes)


@pytest.mark.parametrize("mime", MIMES)
def test_signed_media_without_anchor_is_valid_untrusted_not_invalid(
    mime: str, signed: dict[str, bytes], plain: ProvenanceReader
) -> None:
    report = plain.read(signed[mime], mime)
    assert report.state == "valid_untrusted"
    assert report.failure_codes == ["signingCredential.untrusted"]
    assert report.ai_declaration.value == "generated"
    assert "not a sign of tampering" in report.state_description


@pytest.mark.parametrize("mime", MIMES)
def test_one_flipped_pixel_byte_is_invalid(
    mime: str, signed: dict[str, bytes], trusting: ProvenanceReader
) -> None:
    report = trusting.read(flip_pixel_byte(signed[mime], mime), mime)
    assert report.state == "invalid"
    assert HASH_MISMATCH[mime] in report.failure_codes_for("active")
    assert "changed after signing" in report.state_description


@pytest.mark.parametrize("mime", ["image/jpeg", "image/png"])
def test_stripped_manifest_is_absent(mime: str, signed: dict[str, bytes], trusting: ProvenanceReader) -> None:
    stripped = _strip_manifest(signed[mime], mime)
    assert len(stripped) < len(signed[mime])
    Image.open(io.BytesIO(stripped)).load()  # still a valid image
    report = trusting.read(stripped, mime)
    assert report.state == "absent"
    assert report.active_manifest is None
    assert report.ai_declaration.value == "none_declared"


@pytest.mark.parametrize("corruption", ["box_type", "claim_bytes"])
def test_corrupted_manifest_box_is_unreadable(
    corruption: str, signed: dict[str, bytes], plain: ProvenanceReader
) -> None:
    data = bytearray(signed["image/jpeg"])
    jumb = data.index(b"jumb")
    if corruption == "box_type":
        data[jumb : jumb + 4] = b"junk"
    else:
        claim = data.index(b"c2cl")
        data[claim + 4 : claim + 260] = bytes(256)
    report = plain.read(bytes(data), "image/jpeg")
    assert report.state == "unreadable"
    assert report.error_code == "provenance_unreadable"
    assert report.error_detail
    assert report.active_manifest is None
    assert report.ai_declaration.value == "none_declared"


def test_capture_declaration_is_not_ai(
    chain: SigningChain, originals: dict[str, bytes], plain: ProvenanceReader
) -> None:
    capture = sign_media(
        chain,
        originals["image/jpeg"],
        "image/jpeg",
        digital_source_type=DIGITAL_CAPTURE,
    )
    assert plain.read(capture, "image/jpeg").ai_declaration.value == "none_declared"


def test_provenance_read_from_path_uses_the_sniffed_type(
    signed: dict[str, bytes], trusting: ProvenanceReader, tmp_path: Path
) -> None:
    path = tmp_path / "no_extension"
    path.write_bytes(signed["image/png"])
    assert trusting.read_path(path).state == "trusted"


def _strip_manifest(data: bytes, mime: str) -> bytes:
    """Drop the JPEG APP11 segments or the PNG caBX chunk that hold the C2PA manifest."""
    out = bytearray(data[:2] if mime == "image/jpeg" else data[:8])
    i = len(out)
    while i < len(data):
        if mime == "image/jpeg":
            marker = data[i + 1]
            if marker == 0xDA:
                out += data[i:]
                break
            size = 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
            keep = marker != 0xEB
        else:
            size = 12 + struct.unpack(">I", data[i : i + 4])[0]
            keep = data[i + 4 : i + 8] != b"caBX"
        if keep:
            out += data[i : i + size]
        i += size
    return bytes(out)
