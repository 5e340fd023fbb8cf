"""The stated provenance rules of fusion on the shared C2PA fixtures and on files the tests sign."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector.provenance.reader import ProvenanceReader
from detector.scoring.fusion.rules import Fusion, FusionInputs
from detector.settings import ProvenanceSettings
from tests.support.c2pa_signing import (
    DIGITAL_CAPTURE,
    SigningChain,
    flip_pixel_byte,
    make_chain,
    sign_media,
    unsigned_media,
)
from tests.support.fusion_params import FACE, STRONG_REAL, SYNTH, make_params, manipulated
from tests.support.provenance_fixtures import read_fixture, sd_parameters


@pytest.fixture(scope="module")
def fusion() -> Fusion:
    return Fusion(make_params(), face_model=FACE, synthetic_model=SYNTH)


# --- the provenance rules on the shared C2PA fixtures --------------------------------------------


@pytest.fixture(scope="module")
def anchored(shared_data: Path) -> ProvenanceReader:
    return ProvenanceReader(
        ProvenanceSettings(trust_anchors=[shared_data / "c2pa/certs/test_cert_root_bundle.pem"])
    )


def _fixtures(shared_data: Path, folder: str) -> list[Path]:
    return sorted(p for p in (shared_data / "c2pa" / folder).iterdir() if p.is_file())


def test_valid_ai_declarations_decide_whatever_the_pixels_say(
    shared_data: Path, anchored: ProvenanceReader, fusion: Fusion
) -> None:
    paths = [*_fixtures(shared_data, "ai_generated"), shared_data / "c2pa/valid/c2pa-python__C.jpg"]
    for path in paths:
        report = read_fixture(anchored, path)
        score = fusion.fuse(FusionInputs(face_logit=STRONG_REAL, provenance=report))
        assert score.verdict == "ai_generated", path.name
        assert score.rule == "signed_ai_declaration"
        assert score.authenticity == 0.0
        assert score.pixel_manipulated is not None
        assert score.pixel_manipulated < 0.01
        wording = "AI-edited" if report.ai_declaration.value == "ai_edited" else "AI-generated"
        assert score.summary.startswith(wording), (path.name, score.summary)


def test_invalid_manifests_are_flagged_beside_the_unchanged_pixel_score(
    shared_data: Path, anchored: ProvenanceReader, fusion: Fusion
) -> None:
    for face in (STRONG_REAL, 0.5, 4.0):
        reference = fusion.fuse(FusionInputs(face_logit=face))
        for path in _fixtures(shared_data, "invalid"):
            if path.name == "c2pa-python__CIE-sig-CA.jpg":
                continue  # its own manifest is intact and declares AI: the test above
            report = read_fixture(anchored, path)
            score = fusion.fuse(FusionInputs(face_logit=face, provenance=report))
            assert score.provenance_flag in ("tampered", "ingredient_invalid", "unreadable"), path.name
            assert score.manipulated == reference.manipulated
            assert score.verdict == reference.verdict
            assert score.rule is None
            flag = next(s for s in score.signals if s.name == "content_credentials")
            assert flag.kind == "flag"
            assert flag.contribution is None


@pytest.mark.parametrize("folder", ["no_manifest", "remote_manifest", "valid"])
def test_other_fixtures_do_not_move_the_score(
    folder: str, shared_data: Path, anchored: ProvenanceReader, fusion: Fusion
) -> None:
    reference = fusion.fuse(FusionInputs(face_logit=0.3))
    for path in _fixtures(shared_data, folder):
        report = read_fixture(anchored, path)
        if report.ai_declaration.value != "none_declared":
            continue  # valid/C.jpg declares AI: covered above
        score = fusion.fuse(FusionInputs(face_logit=0.3, provenance=report))
        assert score.manipulated == pytest.approx(reference.manipulated), path.name
        assert score.provenance_flag is None
        assert score.verdict == reference.verdict


# --- the provenance rules on files these tests sign --------------------------------------------


@pytest.fixture(scope="module")
def chain() -> SigningChain:
    return make_chain()


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return unsigned_media(tmp_path_factory.mktemp("fusion_signed"), seed=3)


@pytest.mark.parametrize("mime", ["image/jpeg", "image/png", "video/mp4"])
def test_signed_generated_declaration_and_its_tampered_copy(
    mime: str, chain: SigningChain, originals: dict[str, bytes], fusion: Fusion
) -> None:
    reader = ProvenanceReader()  # no anchors: valid_untrusted still counts as a valid declaration
    signed = sign_media(chain, originals[mime], mime)
    report = reader.read(signed, mime)
    assert report.state == "valid_untrusted"
    score = fusion.fuse(FusionInputs(face_logit=STRONG_REAL, provenance=report))
    assert score.verdict == "ai_generated"
    assert score.rule == "signed_ai_declaration"
    broken = reader.read(flip_pixel_byte(signed, mime), mime)
    assert broken.state == "invalid"
    assert broken.ai_declaration.value == "generated"
    score = fusion.fuse(FusionInputs(face_logit=STRONG_REAL, provenance=broken))
    assert score.verdict == "authentic"
    assert score.provenance_flag == "tampered"
    assert score.rule is None
    assert "tampered" in score.summary


def test_signed_trusted_capture_is_authentic_evidence(
    chain: SigningChain, originals: dict[str, bytes], fusion: Fusion, tmp_path: Path
) -> None:
    reader = ProvenanceReader(ProvenanceSettings(trust_anchors=[chain.write_root(tmp_path / "root.pem")]))
    signed = sign_media(chain, originals["image/jpeg"], "image/jpeg", digital_source_type=DIGITAL_CAPTURE)
    report = reader.read(signed, "image/jpeg")
    assert report.state == "trusted"
    assert report.ai_declaration.value == "none_declared"
    neutral = fusion.fuse(FusionInputs(face_logit=0.0))
    score = fusion.fuse(FusionInputs(face_logit=0.0, provenance=report))
    assert manipulated(score) < manipulated(neutral)
    credentials = next(s for s in score.signals if s.name == "content_credentials")
    assert credentials.contribution is not None
    assert credentials.contribution < 0
    strong = fusion.fuse(FusionInputs(face_logit=3.0, provenance=report))
    assert strong.verdict in ("manipulated", "likely_manipulated")
    untrusted = ProvenanceReader().read(signed, "image/jpeg")  # anyone can sign "camera": not counted
    assert fusion.fuse(FusionInputs(face_logit=0.0, provenance=untrusted)).manipulated == neutral.manipulated


def test_an_ingredients_broken_credentials_are_not_called_tampering_of_the_file(
    shared_data: Path, anchored: ProvenanceReader, fusion: Fusion
) -> None:
    """CIE-sig-CA.jpg's own manifest verifies; only its ingredient's claim signature fails. The card
    says so, and so must the score's flag, signal and summary; an untrusted signer is no tampering code.
    The file's own intact manifest declares it AI-generated in its own actions: that declaration is
    as sound as a valid store's and decides (until 2026-12-04 it was not counted)."""
    path = shared_data / "c2pa/invalid/c2pa-python__CIE-sig-CA.jpg"
    report = read_fixture(ProvenanceReader(), path)
    assert report.state == "invalid"
    assert report.ai_declaration.value == "generated"
    assert not report.ai_declaration.from_ingredient
    score = fusion.fuse(FusionInputs(face_logit=-3.0, provenance=report))
    assert score.provenance_flag == "ingredient_invalid"
    assert (score.verdict, score.rule, score.manipulated) == ("ai_generated", "signed_ai_declaration", 1.0)
    signal = next(s for s in score.signals if s.name == "content_credentials")
    assert signal.sentence.startswith("This file's own Content Credentials, intact, from ")
    assert "(a signer not on your trust list) declare the content AI-generated" in signal.sentence
    assert "claimSignature.mismatch" in signal.sentence
    assert "signingCredential.untrusted" not in signal.sentence
    assert "tampered" not in score.summary
    assert score.summary.startswith("AI-generated: its own intact Content Credentials declare it, signed as ")
    assert "an ingredient's are invalid" in score.summary
    summary = fusion.fuse(FusionInputs(face_logit=-3.0, provenance=read_fixture(anchored, path))).summary
    assert summary.startswith("AI-generated: its own intact Content Credentials from ")
    assert "trust list" not in summary
    inherited = report.model_copy(
        update={"ai_declaration": report.ai_declaration.model_copy(update={"from_ingredient": True})}
    )  # passed on by an ingredient, whose credentials may be the broken ones: not counted
    score = fusion.fuse(FusionInputs(face_logit=-3.0, provenance=inherited))
    assert score.rule != "signed_ai_declaration"
    assert score.verdict != "ai_generated"
    signal = next(s for s in score.signals if s.name == "content_credentials")
    # it read "not counted, since the credentials as a whole failed validation": the file's own are intact
    assert "the AI generation it records was passed on from an ingredient, whose credentials may be" in (
        signal.sentence
    )
    assert "as a whole" not in signal.sentence
    tampered = read_fixture(ProvenanceReader(), shared_data / "c2pa/invalid/c2pa-rs__E-sig-CA.jpg")
    score = fusion.fuse(FusionInputs(face_logit=0.3, provenance=tampered))
    assert score.provenance_flag == "tampered"
    signal = next(s for s in score.signals if s.name == "content_credentials")
    assert signal.sentence.startswith("Content Credentials are INVALID (claimSignature.mismatch)")


def test_a_signed_ai_declarations_summary_says_whether_its_signer_is_trusted(
    shared_data: Path, anchored: ProvenanceReader, fusion: Fusion
) -> None:
    """Without trust anchors the signer's name is only what its certificate claims: the sentence a
    reviewer repeats must not present it as confirmed (the signal and the card already said so)."""
    path = shared_data / "c2pa/ai_generated/c2pa-rs__C.jpg"
    untrusted = read_fixture(ProvenanceReader(), path)
    assert untrusted.state == "valid_untrusted"
    summary = fusion.fuse(FusionInputs(face_logit=0.3, provenance=untrusted)).summary
    assert summary.startswith("AI-generated: valid Content Credentials declare it")
    assert "not on your trust list, so who signed cannot be confirmed" in summary
    trusted = read_fixture(anchored, path)
    assert trusted.state == "trusted"
    summary = fusion.fuse(FusionInputs(face_logit=0.3, provenance=trusted)).summary
    assert summary == "AI-generated: valid Content Credentials from C2PA Test Signing Cert declare it."
    manifest = untrusted.active_manifest
    assert manifest is not None
    nameless = manifest.signer.model_copy(update={"organisation": None, "common_name": None})
    unnamed = untrusted.model_copy(
        update={"active_manifest": manifest.model_copy(update={"signer": nameless})}
    )  # it read "signed as an unnamed signer by a signer not on your trust list"
    summary = fusion.fuse(FusionInputs(face_logit=0.3, provenance=unnamed)).summary
    assert (
        summary
        == "AI-generated: valid Content Credentials from an unnamed signer not on your trust list declare it."
    )


def test_a_file_whose_own_metadata_names_generative_ai_is_never_called_authentic(
    fusion: Fusion, shared_data: Path
) -> None:
    """A ComfyUI PNG whose pixels look real read "Authentic: 92% likely authentic ... It counts
    unsigned metadata that indicates generative AI" until 2026-12-04: the file contradicted its own
    verdict. It is now ``uncertain`` (rule ``metadata_ai``); the probability is unchanged, and the
    metadata still accuses nothing, so a score on the accusing side keeps its band."""
    from detector.provenance.types import ProvenanceReport

    prov = ProvenanceReport(state="absent", state_description="none", metadata_hints=[sd_parameters()])
    plain = fusion.fuse(FusionInputs(face_logit=STRONG_REAL))
    assert plain.verdict == "authentic"
    score = fusion.fuse(FusionInputs(face_logit=STRONG_REAL, provenance=prov))
    assert (score.verdict, score.rule) == ("uncertain", "metadata_ai")
    assert plain.logit is not None
    assert score.logit == pytest.approx(plain.logit + fusion.params.priors.metadata_ai)
    assert "Not called authentic: its own metadata names generative AI" in score.summary
    accused = fusion.fuse(FusionInputs(face_logit=4.0, provenance=prov))
    assert accused.verdict in ("manipulated", "ai_generated")
    assert accused.rule is None
    comfy = read_fixture(
        ProvenanceReader(), shared_data / "synthetic/generated/comfyui/flux_depth_lora_example.png"
    )
    assert fusion.fuse(FusionInputs(face_logit=STRONG_REAL, provenance=comfy)).rule == "metadata_ai"


def test_the_summary_names_unsigned_ai_metadata_that_moved_the_probability(fusion: Fusion) -> None:
    """A ComfyUI / A1111 PNG's parameters add the stated metadata prior: the summary's probability is
    then not the detectors' alone, and a reviewer repeating it must hear of the metadata."""
    from detector.provenance.types import ProvenanceReport

    hint = sd_parameters("Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1")
    prov = ProvenanceReport(state="absent", state_description="none", metadata_hints=[hint])
    plain = fusion.fuse(FusionInputs(face_logit=0.3))
    score = fusion.fuse(FusionInputs(face_logit=0.3, provenance=prov))
    assert score.logit is not None
    assert plain.logit is not None
    assert score.logit == pytest.approx(plain.logit + fusion.params.priors.metadata_ai)
    assert "by the calibrated detectors and stated provenance evidence" in score.summary
    assert "metadata that indicates generative AI (png_sd_parameters; not a signature" in score.summary
    assert "stated provenance evidence" not in plain.summary
