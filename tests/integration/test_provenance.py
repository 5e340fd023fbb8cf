"""Provenance against the third-party C2PA fixtures in ../shared/data/c2pa and their EXPECTED.tsv."""

from __future__ import annotations

import csv
import json
import pickle
import socket
import time
from pathlib import Path

import pytest

from detector.errors import InvalidRequest, ProvenanceConfigError
from detector.provenance.reader import ProvenanceReader
from detector.settings import ProvenanceSettings
from tests.support.paths import SHARED_DATA
from tests.support.provenance_fixtures import read_fixture

C2PA = SHARED_DATA / "c2pa"
BUNDLE = C2PA / "certs" / "test_cert_root_bundle.pem"
STATES = {
    "Trusted": "trusted",
    "Valid": "valid_untrusted",
    "Invalid": "invalid",
    "EXC:Other": "unreadable",
    "EXC:ManifestNotFound": "absent",
    "EXC:Remote": "remote_not_fetched",
}


def _expected_rows() -> list[dict[str, str]]:
    table = C2PA / "EXPECTED.tsv"
    if not table.is_file():  # collected without ../shared/data: the shared_data fixture skips
        return [{"path": "missing"}]
    with table.open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


ROWS = _expected_rows()


def _codes(cell: str) -> list[str]:
    return [] if cell == "-" else list(dict.fromkeys(cell.split(";")))


@pytest.fixture(scope="module")
def plain() -> ProvenanceReader:
    """Default settings: no trust anchors, nothing fetched."""
    return ProvenanceReader()


@pytest.fixture(scope="module")
def anchored(shared_data: Path) -> ProvenanceReader:
    """The SDKs' test roots as trust anchors."""
    return ProvenanceReader(
        ProvenanceSettings(trust_anchors=[shared_data / "c2pa/certs/test_cert_root_bundle.pem"])
    )


@pytest.mark.parametrize("row", ROWS, ids=[r["path"] for r in ROWS])
def test_expected_with_test_anchors(
    row: dict[str, str], shared_data: Path, anchored: ProvenanceReader
) -> None:
    report = read_fixture(anchored, shared_data / "c2pa" / row["path"])
    assert report.state == STATES[row["state_with_test_trust"]], report.state_description
    assert report.failure_codes_for("active") == _codes(row["active_failures_with_trust"])
    assert report.failure_codes_for("ingredient") == _codes(row["ingredient_failures"])
    json.loads(report.model_dump_json())  # JSON-friendly whatever the state


@pytest.mark.parametrize("row", ROWS, ids=[r["path"] for r in ROWS])
def test_expected_without_anchors(row: dict[str, str], shared_data: Path, plain: ProvenanceReader) -> None:
    report = read_fixture(plain, shared_data / "c2pa" / row["path"])
    assert report.state == STATES[row["state_default"]], report.state_description
    assert report.state != "trusted", "nothing can be trusted without anchors"
    trusted_failures = set(_codes(row["active_failures_with_trust"]))
    assert trusted_failures <= set(report.failure_codes_for("active"))
    if row["state_with_test_trust"] == "Trusted":  # the same signature, merely not anchored
        assert report.failure_codes_for("active") == ["signingCredential.untrusted"]
    if report.state == "valid_untrusted":
        assert "not on your trust list" in report.state_description
        assert "tamper" in report.state_description  # says that it is *not* tampering


@pytest.mark.parametrize("row", ROWS, ids=[r["path"] for r in ROWS])
def test_declared_source_types_are_reported(
    row: dict[str, str], shared_data: Path, plain: ProvenanceReader
) -> None:
    report = read_fixture(plain, shared_data / "c2pa" / row["path"])
    declared = _codes(row.get("digitalSourceType", "-"))
    active_terms = {
        (a.digital_source_type or "").rsplit("/", 1)[-1]
        for a in (report.active_manifest.actions if report.active_manifest else [])
    }
    for entry in declared:
        term, where = entry.rstrip(")").split("(")
        if where == "active":
            assert term in active_terms
        else:
            assert report.active_manifest is not None
            assert any(i.ai_declaration != "none_declared" for i in report.active_manifest.ingredients)


@pytest.mark.parametrize(
    ("name", "value", "from_ingredient", "term"),
    [
        ("ai_generated/c2pa-python__pdf-file.pdf", "generated", False, "trainedAlgorithmicMedia"),
        ("ai_generated/c2pa-rs__C.jpg", "generated", False, "algorithmicMedia"),
        ("ai_generated/c2pa-rs__ocsp.jpg", "ai_edited", False, "compositeWithTrainedAlgorithmicMedia"),
        ("valid/c2pa-rs__CA.jpg", "none_declared", False, None),
        ("valid/c2pa-rs__video1.mp4", "none_declared", False, None),
    ],
)
def test_ai_declarations(
    name: str, value: str, from_ingredient: bool, term: str | None, shared_data: Path, plain: ProvenanceReader
) -> None:
    report = read_fixture(plain, shared_data / "c2pa" / name)
    decl = report.ai_declaration
    assert decl.value == value
    assert decl.from_ingredient is from_ingredient
    if term is None:
        assert decl.source_type is None
        assert decl.source_manifest is None
    else:
        assert decl.source_type is not None
        assert decl.source_type.endswith("/" + term)
        assert report.active_manifest is not None
        assert decl.source_manifest == report.active_manifest.label


def test_ingredient_generated_by_ai_is_marked_in_the_tree(shared_data: Path, plain: ProvenanceReader) -> None:
    report = read_fixture(plain, shared_data / "c2pa/ai_generated/c2pa-rs__ocsp.jpg")
    assert report.active_manifest is not None
    (ingredient,) = report.active_manifest.ingredients
    assert ingredient.relationship == "componentOf"
    assert ingredient.ai_declaration == "generated"
    assert ingredient.validation == "valid_untrusted"


def test_active_manifest_details(shared_data: Path, anchored: ProvenanceReader) -> None:
    report = read_fixture(anchored, shared_data / "c2pa/valid/c2pa-rs__CACA.jpg")
    manifest = report.active_manifest
    assert manifest is not None
    assert manifest.claim_generator == "make_test_images"
    assert manifest.signer.organisation == "C2PA Test Signing Cert"
    assert manifest.signer.common_name == "C2PA Signer"
    assert manifest.signer.issuer == "C2PA Test Intermediate Root CA"
    assert manifest.signer.algorithm == "ps256"
    assert manifest.signing_time
    assert manifest.timestamp_authority
    assert [a.action for a in manifest.actions] == ["c2pa.opened", "c2pa.color_adjustments"]
    (parent,) = manifest.ingredients
    assert (parent.title, parent.relationship, parent.validation) == ("CA.jpg", "parentOf", "trusted")
    assert [(c.title, c.validation) for c in parent.children] == [("A.jpg", "no_manifest")]
    keys, longest = _keys_and_longest_string(report.model_dump())
    assert not any("thumbnail" in k or "resource" in k for k in keys)
    assert longest < 1000  # no embedded resources, thumbnails or certificate blobs


def _keys_and_longest_string(value: object) -> tuple[set[str], int]:
    if isinstance(value, dict):
        keys, longest = set(value), 0
        for item in value.values():
            sub_keys, sub_longest = _keys_and_longest_string(item)
            keys |= sub_keys
            longest = max(longest, sub_longest)
        return keys, longest
    if isinstance(value, list):
        results = [_keys_and_longest_string(v) for v in value]
        return set().union(*(r[0] for r in results)), max((r[1] for r in results), default=0)
    return set(), len(value) if isinstance(value, str) else 0


def test_every_status_code_has_a_meaning(shared_data: Path, plain: ProvenanceReader) -> None:
    report = read_fixture(plain, shared_data / "c2pa/invalid/c2pa-rs__XCA.jpg")
    (mismatch,) = [s for s in report.status_codes if s.code == "assertion.dataHash.mismatch"]
    assert mismatch.kind == "failure"
    assert "changed" in mismatch.meaning
    assert all(s.meaning and s.kind in ("success", "informational", "failure") for s in report.status_codes)
    assert any(s.kind == "success" for s in report.status_codes)


def test_unreadable_manifests_carry_a_typed_error(shared_data: Path, plain: ProvenanceReader) -> None:
    for name in ("invalid/c2pa-rs__no_alg.jpg", "invalid/c2pa-rs__prerelease.jpg"):
        report = read_fixture(plain, shared_data / "c2pa" / name)
        assert report.state == "unreadable"
        assert report.error_code == "provenance_unreadable"
        assert report.error_detail
        assert report.metadata_hints or name.endswith("prerelease.jpg")  # hints are still computed


def test_remote_manifest_is_not_fetched_offline(
    shared_data: Path, plain: ProvenanceReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("provenance must not open network connections")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    assert plain.sdk_settings()["verify"] == {
        "verify_trust": True,
        "remote_manifest_fetch": False,
        "ocsp_fetch": False,
    }
    start = time.perf_counter()
    report = read_fixture(plain, shared_data / "c2pa/remote_manifest/c2pa-rs__cloud.jpg")
    assert time.perf_counter() - start < 1.0
    assert report.state == "remote_not_fetched"
    assert report.remote_url is not None
    assert report.remote_url.startswith("https://")
    assert "offline" in report.state_description
    assert not report.warnings


def test_read_path_matches_read(shared_data: Path, plain: ProvenanceReader) -> None:
    path = shared_data / "c2pa/valid/c2pa-rs__video1.mp4"
    assert plain.read_path(path).model_dump() == plain.read(path.read_bytes(), "video/mp4").model_dump()
    with pytest.raises(InvalidRequest):
        plain.read_path(path.with_name("does-not-exist.mp4"))


def test_trust_config_and_allowed_list_files(shared_data: Path, tmp_path: Path) -> None:
    settings_json = json.loads(
        (shared_data / "c2pa/certs/c2pa-python__trust_config_test_settings.json").read_text()
    )
    (tmp_path / "store.cfg").write_text(settings_json["trust"]["trust_config"])
    (tmp_path / "anchors.pem").write_text(settings_json["trust"]["trust_anchors"])
    reader = ProvenanceReader(
        ProvenanceSettings(trust_anchors=[tmp_path / "anchors.pem"], trust_config=tmp_path / "store.cfg")
    )
    assert read_fixture(reader, shared_data / "c2pa/valid/c2pa-rs__CA.jpg").state == "trusted"


def test_bad_trust_settings_are_a_typed_config_error(tmp_path: Path) -> None:
    with pytest.raises(ProvenanceConfigError):
        ProvenanceReader(ProvenanceSettings(trust_anchors=[tmp_path / "missing.pem"])).read(b"x", None)
    (tmp_path / "bad.pem").write_text("not a certificate")
    with pytest.raises(ProvenanceConfigError):
        ProvenanceReader(ProvenanceSettings(trust_anchors=[tmp_path / "bad.pem"])).read(b"x", None)


def test_unsupported_format_reads_as_absent_with_a_warning() -> None:
    report = ProvenanceReader().read(b"BM" + b"\0" * 64, "image/bmp")
    assert report.state == "absent"
    assert any("cannot read this format" in w for w in report.warnings)


@pytest.mark.parametrize("name", ["notes.mp4", "notes.jpg", "notes.pdf", "notes"])
def test_a_file_name_never_chooses_the_format(name: str, tmp_path: Path) -> None:
    """Text bytes are not a container holding credentials, whatever they are called: the SDK gets
    no format from the name (a ``.mp4`` name once made them "present but cannot be read")."""
    path = tmp_path / name
    path.write_bytes(b"just some text, no media here\n" * 40)
    report = ProvenanceReader().read_path(path)
    assert report.state == "absent"
    assert report.warnings == ["provenance: the C2PA SDK cannot read this format (unknown)"]


def test_reader_pickles_without_its_native_context(shared_data: Path) -> None:
    reader = ProvenanceReader(ProvenanceSettings(trust_anchors=[BUNDLE]))
    read_fixture(reader, shared_data / "c2pa/valid/c2pa-rs__CA.jpg")
    clone = pickle.loads(pickle.dumps(reader))
    assert read_fixture(clone, shared_data / "c2pa/valid/c2pa-rs__CA.jpg").state == "trusted"
