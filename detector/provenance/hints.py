"""Unsigned metadata hints about a file's origin: XMP/IPTC, generator PNG text chunks, EXIF.

These are hints, never signatures: anyone can write them. Strength follows how cheap a false
claim is: a generator's own parameters or an IPTC "trainedAlgorithmicMedia" are ``strong`` evidence
of generative AI, while a camera maker or an editor name is ``weak``. Known names come from
``detector/provenance/known_software.toml``. Corrupt metadata yields a warning, never an exception.
"""

from __future__ import annotations

import json
import re
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

from detector.provenance.containers import exif_fields, find_blocks
from detector.provenance.types import (
    HintIndicates,
    HintSource,
    HintStrength,
    MetadataHint,
    source_type_ai,
    source_type_term,
)

IPTC_EXT_NS = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
XMP_NS = "http://ns.adobe.com/xap/1.0/"
MAX_VALUE_CHARS = 300
SD_PARAMETERS = re.compile(r"\bSteps: *\d+.*\b(Sampler|CFG scale|Seed): ", re.DOTALL)
MODEL_FILE = re.compile(r"\.(safetensors|ckpt|gguf|pt|pth|bin|sft)$", re.IGNORECASE)
INVOKEAI_KEYS = ("invokeai_metadata", "invokeai_graph", "sd-metadata", "Dream")

SoftwareKind = Literal["generator", "editor", "camera", "unknown"]


@dataclass
class MetadataFindings:
    """What :func:`metadata_hints` found: hints, and warnings about damaged metadata."""

    hints: list[MetadataHint] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(
        self,
        name: str,
        value: str,
        strength: HintStrength,
        source: HintSource,
        indicates: HintIndicates,
    ) -> None:
        """Append a hint, value shortened to one line; exact duplicates are dropped."""
        short = " ".join(value.split())
        if len(short) > MAX_VALUE_CHARS:
            short = short[: MAX_VALUE_CHARS - 1] + "…"
        hint = MetadataHint(name=name, value=short, strength=strength, source=source, indicates=indicates)
        if hint not in self.hints:
            self.hints.append(hint)


def metadata_hints(data: bytes) -> MetadataFindings:
    """All metadata hints in ``data`` (any container; the format is read from the bytes)."""
    blocks = find_blocks(data)
    found = MetadataFindings(warnings=list(blocks.warnings))
    for packet in blocks.xmp:
        _xmp_hints(packet, found)
    _png_text_hints(blocks.png_text, found)
    for tiff in blocks.exif:
        try:
            fields = exif_fields(tiff)
        except ValueError as exc:
            found.warnings.append(f"metadata: EXIF block is damaged ({exc}); ignored")
            continue
        _exif_hints(fields, found)
    return found


# --- known software -------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _known_names() -> dict[SoftwareKind, re.Pattern[str]]:
    """One word-boundary regex per list in known_software.toml (loaded once)."""
    text = resources.files("detector.provenance").joinpath("known_software.toml").read_text("utf-8")
    table = tomllib.loads(text)
    sections: tuple[tuple[str, SoftwareKind], ...] = (
        ("generators", "generator"),
        ("editors", "editor"),
        ("cameras", "camera"),
    )
    patterns: dict[SoftwareKind, re.Pattern[str]] = {}
    for section, kind in sections:
        names = sorted(table[section]["names"], key=len, reverse=True)
        alternatives = "|".join(re.escape(n) for n in names)
        patterns[kind] = re.compile(rf"(?<![\w.])(?:{alternatives})(?![\w])", re.IGNORECASE)
    return patterns


def classify_software(value: str) -> SoftwareKind:
    """``generator``, ``editor``, ``camera`` or ``unknown`` for a Make/Model/Software string."""
    for kind, pattern in _known_names().items():
        if pattern.search(value):
            return kind
    return "unknown"


_KIND_HINT: dict[SoftwareKind, tuple[HintStrength, HintIndicates]] = {
    "generator": ("strong", "generative_ai"),
    "editor": ("weak", "editing_software"),
    "camera": ("weak", "camera"),
    "unknown": ("weak", "other"),
}


def _software_hint(name: str, value: str, source: HintSource, found: MetadataFindings) -> None:
    strength, indicates = _KIND_HINT[classify_software(value)]
    found.add(name, value, strength, source, indicates)


# --- XMP / IPTC -----------------------------------------------------------------------------


def _xmp_hints(packet: bytes, found: MetadataFindings) -> None:
    """IPTC DigitalSourceType and xmp:CreatorTool from one XMP packet, parsed without a DTD."""
    if b"<!DOCTYPE" in packet or b"<!ENTITY" in packet:
        found.warnings.append("metadata: XMP packet declares a DTD or entities; ignored for safety")
        return
    text = packet.rstrip(b"\x00 \r\n\t")
    start = text.find(b"<x:xmpmeta")
    if start > 0:
        text = text[start:]
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        found.warnings.append(f"metadata: XMP packet is not well-formed XML ({exc}); ignored")
        return
    for value in _xmp_values(root, f"{{{IPTC_EXT_NS}}}DigitalSourceType"):
        ai = source_type_ai(value, created=True)
        if ai == "generated":
            found.add("xmp_digital_source_type", value, "strong", "xmp", "generative_ai")
        elif ai == "ai_edited":
            found.add("xmp_digital_source_type", value, "strong", "xmp", "ai_edited")
        else:
            camera = source_type_term(value) in {"digitalCapture", "computationalCapture"}
            found.add("xmp_digital_source_type", value, "weak", "xmp", "camera" if camera else "other")
    for value in _xmp_values(root, f"{{{XMP_NS}}}CreatorTool"):
        _software_hint("xmp_creator_tool", value, "xmp", found)


def _xmp_values(root: ET.Element, qname: str) -> list[str]:
    """Values of a simple XMP property, written either as an attribute or as an element."""
    values = [elem.attrib[qname] for elem in root.iter() if qname in elem.attrib]
    for elem in root.iter(qname):
        text = "".join(elem.itertext()).strip()
        resource = next((v for k, v in elem.attrib.items() if k.endswith("}resource")), "")
        if text or resource:
            values.append(text or resource)
    return [v.strip() for v in values if v.strip()]


# --- PNG text chunks ------------------------------------------------------------------------


def _png_text_hints(text: dict[str, str], found: MetadataFindings) -> None:
    """Hints from text chunks that image generators write into their PNG outputs."""
    if "parameters" in text:
        params = text["parameters"]
        strong = SD_PARAMETERS.search(params) is not None or params.lstrip().startswith("{")
        found.add(
            "png_sd_parameters", params, "strong" if strong else "moderate", "png_text", "generative_ai"
        )
    if "prompt" in text:
        _comfyui_hint("png_comfyui_prompt", text["prompt"], found)
    if "workflow" in text:
        _comfyui_hint("png_comfyui_workflow", text["workflow"], found)
    software = text.get("Software")
    comment = text.get("Comment")
    if software is not None and "novelai" in software.lower():
        source = text.get("Source")
        value = f"{software} ({source})" if source else software
        found.add("png_novelai_software", value, "strong", "png_text", "generative_ai")
    elif software is not None:
        _software_hint("png_software", software, "png_text", found)
    if comment is not None:
        settings = _json_object(comment)
        if settings is not None and {"steps", "sampler"} <= settings.keys():
            summary = f"steps={settings['steps']} sampler={settings['sampler']} seed={settings.get('seed')}"
            found.add("png_novelai_comment", summary, "strong", "png_text", "generative_ai")
    for key in INVOKEAI_KEYS:
        if key in text:
            found.add("png_invokeai_metadata", f"{key}: {text[key]}", "strong", "png_text", "generative_ai")
    if "fooocus_scheme" in text:
        found.add("png_fooocus_scheme", text["fooocus_scheme"], "strong", "png_text", "generative_ai")


def _comfyui_hint(name: str, raw: str, found: MetadataFindings) -> None:
    """A ComfyUI ``prompt`` (node graph) or ``workflow`` (editor graph) chunk, summarised."""
    graph = _json_object(raw)
    if graph is None:
        found.warnings.append(f"metadata: PNG text chunk {name.split('_')[-1]!r} is not valid JSON")
        found.add(name, raw, "moderate", "png_text", "generative_ai")
        return
    if isinstance(graph.get("nodes"), list):
        nodes: list[Any] = graph["nodes"]
        kinds = [n.get("type") for n in nodes if isinstance(n, dict)]
        models = _model_files([n.get("widgets_values") for n in nodes if isinstance(n, dict)])
    else:
        nodes = [n for n in graph.values() if isinstance(n, dict) and "class_type" in n]
        kinds = [n["class_type"] for n in nodes]
        models = _model_files([n.get("inputs") for n in nodes])
    if not nodes:
        found.add(name, raw, "moderate", "png_text", "generative_ai")
        return
    samplers = sorted({str(k) for k in kinds if k and "sampler" in str(k).lower()})
    summary = f"ComfyUI graph with {len(nodes)} nodes"
    if samplers:
        summary += f"; samplers: {', '.join(samplers)}"
    if models:
        summary += f"; models: {', '.join(models)}"
    found.add(name, summary, "strong", "png_text", "generative_ai")


def _model_files(containers: list[Any]) -> list[str]:
    """Model file names (``*.safetensors`` etc.) mentioned in node inputs or widget values."""
    names: list[str] = []
    for container in containers:
        values = container.values() if isinstance(container, dict) else container or []
        for value in values:
            if isinstance(value, str) and MODEL_FILE.search(value) and value not in names:
                names.append(value)
    return names[:5]


def _json_object(raw: str) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


# --- EXIF -----------------------------------------------------------------------------------


def _exif_hints(fields: dict[str, str], found: MetadataFindings) -> None:
    """EXIF Make / Model / Software classified by known names; SD parameters in UserComment."""
    make, model = fields.get("Make"), fields.get("Model")
    if make:
        _software_hint("exif_make", make, "exif", found)
    if model:
        known_make = make is not None and classify_software(make) == "camera"
        if known_make and classify_software(model) == "unknown":
            found.add("exif_model", model, "weak", "exif", "camera")
        else:
            _software_hint("exif_model", model, "exif", found)
    if fields.get("Software"):
        _software_hint("exif_software", fields["Software"], "exif", found)
    comment = fields.get("UserComment", "")
    if SD_PARAMETERS.search(comment):
        found.add("exif_sd_parameters", comment, "strong", "exif", "generative_ai")
