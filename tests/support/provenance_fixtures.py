"""Reading the third-party C2PA fixtures the way the pipeline reads media."""

from __future__ import annotations

from pathlib import Path

from detector.errors import UnsupportedMediaType
from detector.media.sniff import HEAD_BYTES, sniff
from detector.provenance.reader import ProvenanceReader
from detector.provenance.types import MetadataHint, ProvenanceReport


def read_fixture(reader: ProvenanceReader, path: Path) -> ProvenanceReport:
    """Read like the pipeline does: bytes plus the sniffed MIME (None for non-media such as PDF)."""
    data = path.read_bytes()
    try:
        mime: str | None = sniff(data[:HEAD_BYTES])[2]
    except UnsupportedMediaType:
        mime = None
    return reader.read(data, mime)


def sd_parameters(value: str = "Steps: 20") -> MetadataHint:
    """An A1111 ``parameters`` PNG chunk, as the metadata reader reports it (strong, generative AI)."""
    return MetadataHint(
        name="png_sd_parameters", value=value, strength="strong", source="png_text", indicates="generative_ai"
    )
