"""Regression: one flipped byte in a C2PA claim signature reads ``invalid`` (tampering), not ``unreadable``.

The SDK raises a signature error instead of listing a failure status; the reader records what it
stands for (:func:`detector.provenance.reader._signature_failure`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from detector.provenance.reader import ProvenanceReader
from detector.settings import ProvenanceSettings
from tests.support.c2pa_signing import SigningChain, make_chain, sign_media, unsigned_media
from tests.support.hostile import flip_signature_byte


@pytest.fixture(scope="module")
def chain() -> SigningChain:
    return make_chain()


@pytest.mark.parametrize("mime", ["image/jpeg", "image/png"])
@pytest.mark.parametrize("anchored", [True, False], ids=["trusted-root", "no-anchor"])
def test_a_flipped_signature_byte_is_invalid(
    chain: SigningChain, tmp_path: Path, mime: str, anchored: bool
) -> None:
    signed = sign_media(chain, unsigned_media(tmp_path, seed=5)[mime], mime)
    anchors = [chain.write_root(tmp_path / "root.pem")] if anchored else []
    reader = ProvenanceReader(ProvenanceSettings(trust_anchors=anchors))
    assert reader.read(signed, mime).state in {"trusted", "valid_untrusted"}
    report = reader.read(flip_signature_byte(signed), mime)
    assert report.state == "invalid", report.state_description
    assert "claimSignature.mismatch" in report.failure_codes
    assert "changed after signing" in report.state_description
    assert report.error_code is None
