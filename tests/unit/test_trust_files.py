"""A trust-anchor or allowed-list file must hold a certificate: one that holds none (a private key
put in its place, say) was taken by the C2PA SDK without a word, and then no signer was trusted."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector.errors import ProvenanceConfigError
from detector.provenance.reader import ProvenanceReader
from detector.settings import ProvenanceSettings
from tests.support.c2pa_signing import make_chain


@pytest.mark.parametrize("field", ["trust_anchors", "allowed_list"])
def test_a_pem_file_without_a_certificate_is_refused(tmp_path: Path, field: str) -> None:
    key = tmp_path / "signer.key"
    key.write_text(make_chain().leaf_key_pem)
    value: object = [key] if field == "trust_anchors" else key
    reader = ProvenanceReader(ProvenanceSettings.model_validate({field: value}))
    with pytest.raises(ProvenanceConfigError, match=r"signer\.key holds no PEM certificate"):
        reader.sdk_settings()


def test_a_root_certificate_is_taken(tmp_path: Path) -> None:
    root = make_chain().write_root(tmp_path / "root.pem")
    settings = ProvenanceReader(ProvenanceSettings(trust_anchors=[root])).sdk_settings()
    assert "-----BEGIN CERTIFICATE-----" in settings["trust"]["trust_anchors"]


def test_an_allowed_list_of_certificate_digests_is_taken(tmp_path: Path) -> None:
    """The SDK's other allowed-list form: one base64 SHA-256 digest of a certificate per line."""
    import base64
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    leaf = x509.load_pem_x509_certificate(make_chain().leaf_pem.encode())
    digest = base64.b64encode(hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).digest()).decode()
    allowed = tmp_path / "allowed.hash"
    allowed.write_text(f"# the newsroom's signers\n{digest}\n")
    settings = ProvenanceReader(ProvenanceSettings(allowed_list=allowed)).sdk_settings()
    assert digest in settings["trust"]["allowed_list"]
    allowed.write_text(digest[:-2] + "\n")  # not a digest: refused like a file without a certificate
    with pytest.raises(ProvenanceConfigError, match="certificate digest"):
        ProvenanceReader(ProvenanceSettings(allowed_list=allowed)).sdk_settings()
