"""Provenance stage: Content Credentials (C2PA) validation and metadata hints, offline.

:class:`ProvenanceReader` is used unchanged by the pipeline, the Serve deployment and the batch
scan. It never raises for a bad or missing manifest: that is a state of the report. Remote
manifests and OCSP are not fetched unless the settings say so, so the default never touches the
network. Trust comes only from the configured anchors: without them a good signature reads
``valid_untrusted``, which is not tampering.
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
from pathlib import Path
from typing import Any

import c2pa

from detector.errors import InvalidRequest, ProvenanceConfigError, ProvenanceError, UnsupportedMediaType
from detector.provenance import manifest as pm
from detector.provenance.hints import metadata_hints
from detector.provenance.types import (
    ProvenanceReport,
    ProvenanceState,
    StatusCode,
    broken_codes,
    status_meaning,
)
from detector.settings import ProvenanceSettings

_URL = re.compile(r"https?://\S+")
_UNREADABLE_REASONS = (
    ("unknown algorithm", "it uses a signing algorithm that is not supported"),
    ("prerelease", "it was written by a prerelease version of the C2PA specification"),
    ("jumbf", "its JUMBF boxes are malformed"),
    ("could not be parsed", "the file around it could not be parsed"),
    ("end of file", "it is truncated"),
)
_TAMPER_HINT = "it was changed after signing, or its credentials were altered"


class ProvenanceReader:
    """Reads and validates C2PA manifests with the trust settings given; thread-safe."""

    def __init__(self, settings: ProvenanceSettings | None = None) -> None:
        self.settings = settings or ProvenanceSettings()
        self._context: c2pa.Context | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle settings only (Ray ships stages to workers); the native context is rebuilt."""
        return {"settings": self.settings}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.settings = state["settings"]
        self._context = None
        self._lock = threading.Lock()

    def sdk_settings(self) -> dict[str, Any]:
        """The c2pa settings built from ours: network fetches off by default, trust from files."""
        s = self.settings
        trust: dict[str, str] = {}
        if s.trust_anchors:
            trust["trust_anchors"] = "\n".join(_read_certificates(p, "trust anchor") for p in s.trust_anchors)
        if s.allowed_list is not None:
            trust["allowed_list"] = _read_certificates(s.allowed_list, "allowed list", hashes=True)
        if s.trust_config is not None:
            trust["trust_config"] = _read_setting_file(s.trust_config, "trust config")
        config: dict[str, Any] = {
            "verify": {
                "verify_trust": True,
                "remote_manifest_fetch": s.remote_manifest_fetch,
                "ocsp_fetch": s.ocsp_fetch,
            },
        }
        if trust:
            config["trust"] = trust
        return config

    def check(self) -> None:
        """Build the SDK's context now: a missing or bad trust file is ``provenance_config_invalid``
        when a command starts, not on its first read."""
        self._get_context()

    def _get_context(self) -> c2pa.Context:
        with self._lock:
            if self._context is None:
                config = self.sdk_settings()
                try:
                    self._context = c2pa.Context.from_dict(config)
                except c2pa.C2paError as exc:
                    raise ProvenanceConfigError(f"the C2PA SDK rejected the trust settings: {exc}") from exc
            return self._context

    def read_path(self, path: Path, mime: str | None = None) -> ProvenanceReport:
        """Read a file from disk, sniffing its type unless ``mime`` is given.

        A file that cannot be read is an ``invalid_request`` error; one that is not a known media
        type is handed to the SDK without a type.
        """
        from detector.media.sniff import HEAD_BYTES, sniff

        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InvalidRequest(f"cannot read {path.name}: {os.strerror(exc.errno or 0)}") from exc
        if mime is None:
            try:
                mime = sniff(data[:HEAD_BYTES])[2]
            except UnsupportedMediaType:
                mime = None
        return self.read(data, mime)

    def read(self, data: bytes, mime: str | None) -> ProvenanceReport:
        """Validate the file's C2PA manifest and collect metadata hints; never raises for bad input.

        ``mime`` is the sniffed type; without it the SDK detects the format from the bytes. A file
        name is never a hint: a text file named ``.mp4`` read as "Content Credentials present but
        unreadable" when its extension chose the format, and as absent when named ``.jpg``.
        """
        context = self._get_context()
        report = self._read_c2pa(data, _sdk_format(mime), context)
        findings = metadata_hints(data)
        report.metadata_hints = findings.hints
        report.warnings.extend(findings.warnings)
        return report

    def _read_c2pa(self, data: bytes, fmt: str | None, context: c2pa.Context) -> ProvenanceReport:
        try:
            reader = c2pa.Reader.try_create(fmt, io.BytesIO(data), None, context)
            if reader is None:
                return _absent()
            with reader:
                store = json.loads(reader.json())
                certs, cert_warning = _certificates(reader)
        except c2pa.C2paError as exc:
            return _from_sdk_error(exc, fmt)
        except json.JSONDecodeError as exc:
            return _unreadable(ProvenanceError("the manifest store is not valid JSON", sdk=str(exc)))
        report = from_store(store, certs)
        if cert_warning:
            report.warnings.append(cert_warning)
        return report


def from_store(store: dict[str, Any], certs: dict[str, dict[str, Any]]) -> ProvenanceReport:
    """The report for a manifest store the SDK could read (states trusted/valid_untrusted/invalid)."""
    label = store.get("active_manifest")
    manifests = store.get("manifests")
    if not isinstance(label, str) or not isinstance(manifests, dict) or label not in manifests:
        return _unreadable(ProvenanceError("the manifest store has no active manifest"))
    codes = pm.status_codes(store)
    report = ProvenanceReport(
        state=_state(store.get("validation_state"), codes),
        state_description="",
        status_codes=codes,
        active_manifest=pm.active_manifest(store, label, certs),
        manifest_count=len(manifests),
        ai_declaration=pm.ai_declaration(store, label),
    )
    report.state_description = describe(report)
    return report


def _state(sdk_state: Any, codes: list[StatusCode]) -> ProvenanceState:
    """Our state from the SDK's ``validation_state`` (Trusted / Valid / Invalid)."""
    if sdk_state == "Trusted":
        return "trusted"
    if sdk_state == "Valid":
        return "valid_untrusted"
    if sdk_state == "Invalid":
        return "invalid"
    # No state from the SDK: judge from the codes (anything beyond an untrusted signer breaks it).
    broken = any(c.kind == "failure" and c.code != pm.UNTRUSTED for c in codes)
    return "invalid" if broken else "valid_untrusted"


def describe(report: ProvenanceReport) -> str:
    """The state in plain words, keeping tampering, untrusted and absent apart."""
    manifest = report.active_manifest
    who = "an unknown signer"
    if manifest is not None:
        signer = manifest.signer
        who = signer.organisation or signer.common_name or who
    active_untrusted = pm.UNTRUSTED in report.failure_codes_for("active")
    if report.state == "trusted":
        return f"Content Credentials are intact and signed by {who}, a signer on your trust list."
    if report.state == "valid_untrusted":
        if active_untrusted or manifest is None:
            return (
                f"Content Credentials are intact: nothing changed since {who} signed them. "
                "The signer is not on your trust list, so who signed cannot be confirmed; "
                "this is not a sign of tampering."
            )
        return (
            f"Content Credentials are intact and signed by {who}, a signer on your trust list; "
            "some ingredients were signed by signers that are not on it."
        )
    if report.state == "invalid":
        active = broken_codes(report, "active")
        ingredients = broken_codes(report, "ingredient")
        if active:
            return f"Content Credentials do not match this file: {_TAMPER_HINT} ({'; '.join(active)})."
        if ingredients:
            return (
                "This file's own Content Credentials are intact, but an ingredient's credentials "
                f"are broken ({'; '.join(ingredients)})."
            )
        return "Content Credentials failed validation."
    return report.state_description


def _certificates(reader: c2pa.Reader) -> tuple[dict[str, dict[str, Any]], str | None]:
    """Certificate details per manifest from crJSON; a warning instead when it cannot be read."""
    try:
        return pm.certificates(json.loads(reader.crjson())), None
    except (c2pa.C2paError, json.JSONDecodeError) as exc:
        return {}, f"provenance: certificate details unavailable ({exc})"


def _absent(warning: str | None = None) -> ProvenanceReport:
    return ProvenanceReport(
        state="absent",
        state_description=(
            "No Content Credentials (C2PA) found. Most files have none; this says nothing "
            "about whether the file is authentic."
        ),
        warnings=[warning] if warning else [],
    )


def _from_sdk_error(exc: c2pa.C2paError, fmt: str | None) -> ProvenanceReport:
    message = str(exc)
    if isinstance(exc, c2pa.C2paError.ManifestNotFound):
        return _absent()
    if isinstance(exc, c2pa.C2paError.RemoteManifest) or message.startswith("Remote"):
        match = _URL.search(message)
        url = match.group(0) if match else None
        where = f" at {url}" if url else ""
        not_tried = "must fetch" in message
        why = "remote fetching is off (offline mode)" if not_tried else "fetching it failed"
        return ProvenanceReport(
            state="remote_not_fetched",
            state_description=f"Content Credentials are stored online{where} and were not read: {why}.",
            remote_url=url,
            warnings=[] if not_tried else [f"provenance: remote manifest fetch failed ({message})"],
        )
    if isinstance(exc, c2pa.C2paError.NotSupported):
        return _absent(f"provenance: the C2PA SDK cannot read this format ({fmt or 'unknown'})")
    if isinstance(exc, c2pa.C2paError.Signature):
        return _signature_failure(message)
    return _unreadable(ProvenanceError(message, sdk_error=type(exc).__name__.lstrip("_")))


def _signature_failure(message: str) -> ProvenanceReport:
    """The SDK could not verify the signature (a changed byte in it or in its certificate): tampering.

    The SDK raises instead of listing a status, so the status it stands for is recorded:
    ``signingCredential.invalid`` when the certificate is what failed, else ``claimSignature.mismatch``.
    """
    code = "signingCredential.invalid" if "certificate" in message.lower() else "claimSignature.mismatch"
    status = StatusCode(code=code, meaning=status_meaning(code), kind="failure", explanation=message)
    return ProvenanceReport(
        state="invalid",
        state_description="Content Credentials are present but their signature does not verify: "
        "the file or its credentials were changed after signing.",
        status_codes=[status],
    )


def _unreadable(error: ProvenanceError) -> ProvenanceReport:
    lowered = error.message.lower()
    reason = next((text for key, text in _UNREADABLE_REASONS if key in lowered), "it is malformed")
    return ProvenanceReport(
        state="unreadable",
        state_description=f"Content Credentials are present but cannot be read: {reason}.",
        error_code=error.code,
        error_detail=error.message,
        warnings=[f"provenance: {error.code}: {error.message}"],
    )


def _sdk_format(mime: str | None) -> str | None:
    """The sniffed MIME type handed to the SDK; None lets it detect the format from the bytes."""
    return mime if mime and mime != "application/octet-stream" else None


CERTIFICATE_HASH = re.compile(r"^[A-Za-z0-9+/]{43}=$", re.MULTILINE)
"""A base64 SHA-256 digest of a certificate on a line of its own: the other form an allowed list of
end-entity certificates takes in the C2PA SDK (c2pa-rs keeps the list as such digests)."""


def _read_certificates(path: Path, what: str, hashes: bool = False) -> str:
    """A PEM file that must hold at least one certificate (or, with ``hashes``, a certificate's
    base64 SHA-256 digest on a line): the SDK took a file with neither (a private key, say)
    silently, and then trusted no signer."""
    text = _read_setting_file(path, what)
    if "-----BEGIN CERTIFICATE-----" not in text and not (hashes and CERTIFICATE_HASH.search(text)):
        also = " or base64 SHA-256 certificate digest" if hashes else ""
        raise ProvenanceConfigError(
            f"the {what} file {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----){also}",
            path=str(path),
        )
    return text


def _read_setting_file(path: Path, what: str) -> str:
    try:
        return Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProvenanceConfigError(f"cannot read the {what} file {path}: {exc}", path=str(path)) from exc
