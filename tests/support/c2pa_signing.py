"""Test helper: a throw-away root + leaf certificate chain that signs C2PA manifests.

The chain is made with ``cryptography`` on every run (nothing secret is stored): an ES256 root CA and
a leaf with ``CA=false``, ``digitalSignature`` and the ``emailProtection`` EKU, which c2pa-rs accepts
for claim signing. :func:`sign_media` embeds a manifest with one ``c2pa.created`` action through
``c2pa.Builder`` and ``Signer.from_info(C2paSignerInfo)``.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import struct
from dataclasses import dataclass
from pathlib import Path

import c2pa
import numpy as np
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image

from tests.support import mediagen

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
DIGITAL_CAPTURE = "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"
SIGNER_ORG = "Trueframe Test Signer"
SIGNER_CN = "trueframe test leaf"
ROOT_CN = "Trueframe Test Root CA"


@dataclass(frozen=True)
class SigningChain:
    """PEM texts of a generated chain; ``root_pem`` is what a trust anchor file would hold."""

    root_pem: str
    leaf_pem: str
    leaf_key_pem: str

    def write_root(self, path: Path) -> Path:
        """Write the root certificate as a PEM trust anchor file and return its path."""
        path.write_text(self.root_pem)
        return path


def _name(cn: str, org: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def make_chain() -> SigningChain:
    """Generate an ES256 root CA and a leaf signing certificate valid from yesterday for a year."""
    now = dt.datetime.now(dt.UTC)
    not_before, not_after = now - dt.timedelta(days=1), now + dt.timedelta(days=365)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name(ROOT_CN, "Trueframe Test Root")
    root_ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(root_ski, critical=False)
        .sign(root_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(SIGNER_CN, SIGNER_ORG))
        .issuer_name(root_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski), critical=False
        )
        .sign(root_key, hashes.SHA256())
    )
    return SigningChain(
        root_pem=root.public_bytes(serialization.Encoding.PEM).decode(),
        leaf_pem=leaf.public_bytes(serialization.Encoding.PEM).decode(),
        leaf_key_pem=leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    )


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def manifest_definition(mime: str, digital_source_type: str, title: str) -> dict[str, object]:
    """A minimal manifest: claim generator, title, one ``c2pa.created`` action."""
    return {
        "claim_generator_info": [{"name": "trueframe-tests", "version": "1.0"}],
        "title": title,
        "format": mime,
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "softwareAgent": {"name": "Test Generator", "version": "2.1"},
                            "digitalSourceType": digital_source_type,
                        }
                    ]
                },
            }
        ],
    }


def sign_media(
    chain: SigningChain,
    data: bytes,
    mime: str,
    digital_source_type: str = TRAINED_ALGORITHMIC_MEDIA,
    title: str = "test asset",
) -> bytes:
    """Return ``data`` with an embedded C2PA manifest signed by the chain's leaf."""
    info = c2pa.C2paSignerInfo(
        alg=b"es256",
        sign_cert=chain.leaf_pem.encode(),
        private_key=chain.leaf_key_pem.encode(),
        ta_url=None,
    )
    context = c2pa.Context.from_dict(
        {
            "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
            "builder": {"thumbnail": {"enabled": False}},  # keeps signed test files small
        }
    )
    definition = json.dumps(manifest_definition(mime, digital_source_type, title))
    with (
        context,
        c2pa.Signer.from_info(info) as signer,
        c2pa.Builder(definition, context) as builder,
    ):
        dest = io.BytesIO()
        builder.sign(signer, mime, io.BytesIO(data), dest)
        return dest.getvalue()


def unsigned_media(folder: Path, seed: int) -> dict[str, bytes]:
    """Small unsigned media by MIME type: a 48x32 noise image as JPEG and PNG, a 5-frame H.264 MP4."""
    pixels = np.random.default_rng(seed).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    out: dict[str, bytes] = {}
    for mime, fmt in (("image/jpeg", "JPEG"), ("image/png", "PNG")):
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format=fmt)
        out[mime] = buf.getvalue()
    clip = folder / "clip.mp4"
    mediagen.write_clip(clip, [np.roll(pixels, i, axis=1) for i in range(5)], fps=5)
    out["video/mp4"] = clip.read_bytes()
    return out


def flip_pixel_byte(data: bytes, mime: str) -> bytes:
    """``data`` with one bit flipped inside the compressed pixels: JPEG scan data, PNG IDAT, MP4 mdat."""
    if mime == "image/jpeg":
        start, end = data.rindex(b"\xff\xda"), len(data) - 2
    elif mime == "image/png":
        idat = data.index(b"IDAT")
        (length,) = struct.unpack(">I", data[idat - 4 : idat])
        start, end = idat + 4, idat + 4 + length
    else:
        mdat = data.index(b"mdat")
        (length,) = struct.unpack(">I", data[mdat - 4 : mdat])
        start, end = mdat + 4, mdat - 4 + length
    index = (start + end) // 2
    while data[index] in (0xFE, 0xFF):  # keep JPEG scan data free of new markers
        index += 1
    flipped = bytearray(data)
    flipped[index] ^= 0x01
    return bytes(flipped)
