"""Report models of the provenance section: Content Credentials (C2PA) and metadata hints.

Every report embeds one :class:`ProvenanceReport`. Its ``state`` keeps apart the cases users
confuse most: no credentials (``absent``), intact but from a signer not on the trust list
(``valid_untrusted``), intact and trusted (``trusted``), changed after signing or broken
(``invalid``), present but unparseable (``unreadable``) and stored online but not fetched
(``remote_not_fetched``). Thumbnails and embedded resources are never kept.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ProvenanceState = Literal[
    "absent", "trusted", "valid_untrusted", "invalid", "unreadable", "remote_not_fetched"
]
StatusKind = Literal["success", "informational", "failure"]
AIDeclarationValue = Literal["generated", "ai_edited", "none_declared"]
IngredientValidation = Literal["trusted", "valid", "valid_untrusted", "invalid", "no_manifest"]
HintStrength = Literal["strong", "moderate", "weak"]
HintSource = Literal["xmp", "png_text", "exif"]
HintIndicates = Literal["generative_ai", "ai_edited", "camera", "editing_software", "other"]


STATE_LABELS: dict[str, str] = {
    "absent": "No Content Credentials",
    "trusted": "Content Credentials: valid, signed by a trusted signer",
    "valid_untrusted": "Content Credentials: valid, but the signer is not on your trust list",
    "invalid": "Content Credentials: INVALID - changed after signing or broken",
    "unreadable": "Content Credentials: present but unreadable",
    "remote_not_fetched": "Content Credentials: stored online, not fetched",
}

# IPTC digital source types (https://cv.iptc.org/newscodes/digitalsourcetype/) that declare AI.
GENERATED_SOURCE_TYPES = frozenset({"trainedAlgorithmicMedia", "trainedAlgorithmicData"})
AI_EDITED_SOURCE_TYPES = frozenset(
    {"compositeWithTrainedAlgorithmicMedia", "compositeSynthetic", "algorithmicallyEnhanced"}
)


def source_type_term(uri: str) -> str:
    """The IPTC term of a digital source type URI (``.../trainedAlgorithmicMedia`` -> the term)."""
    return uri.strip().rstrip("/").rsplit("/", 1)[-1]


def source_type_ai(uri: str, created: bool) -> AIDeclarationValue:
    """What a digital source type declares about AI.

    ``algorithmicMedia`` counts as generated on a creating action and as an AI edit otherwise.
    """
    term = source_type_term(uri)
    if term in GENERATED_SOURCE_TYPES or (term == "algorithmicMedia" and created):
        return "generated"
    if term in AI_EDITED_SOURCE_TYPES or term == "algorithmicMedia":
        return "ai_edited"
    return "none_declared"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StatusCode(_Model):
    """One validation status code reported by the C2PA SDK, with its meaning in plain words."""

    code: str
    meaning: str = Field(description="one plain-language line; a generic line for unknown codes")
    kind: StatusKind
    scope: Literal["active", "ingredient"] = "active"
    manifest: str | None = Field(None, description="label of the manifest the code is about")
    url: str | None = None
    explanation: str | None = Field(None, description="the SDK's own explanation")


class Signer(_Model):
    """Who signed a manifest, from its signing certificate."""

    organisation: str | None = Field(None, description="subject O of the signing certificate")
    common_name: str | None = Field(None, description="subject CN of the signing certificate")
    issuer: str | None = Field(None, description="issuer of the signing certificate (its O or CN)")
    algorithm: str | None = None


class Action(_Model):
    """One entry of a manifest's ``c2pa.actions`` assertion."""

    action: str
    software_agent: str | None = None
    when: str | None = None
    digital_source_type: str | None = Field(None, description="IPTC digital source type URI")
    description: str | None = None


class Ingredient(_Model):
    """An ingredient of a manifest (a parent, component or input), with its own validation."""

    title: str | None = None
    format: str | None = None
    relationship: str | None = Field(None, description="parentOf, componentOf or inputTo")
    manifest: str | None = Field(None, description="label of the ingredient's own manifest")
    validation: IngredientValidation
    validation_codes: list[str] = Field(default_factory=list, description="failure codes")
    ai_declaration: AIDeclarationValue = "none_declared"
    children: list[Ingredient] = Field(default_factory=list)


class AIDeclaration(_Model):
    """What the manifests declare about generative AI, and which manifest declared it."""

    value: AIDeclarationValue = "none_declared"
    source_manifest: str | None = None
    source_type: str | None = Field(None, description="the IPTC digital source type URI")
    action: str | None = None
    software_agent: str | None = None
    from_ingredient: bool = Field(False, description="declared by an ingredient, not the active one")


class ActiveManifest(_Model):
    """The active (most recent) manifest: who made the claim, what was done, from what."""

    label: str
    claim_generator: str | None = Field(None, description="name of the tool that made the claim")
    claim_generator_version: str | None = None
    title: str | None = None
    format: str | None = None
    signer: Signer = Field(default_factory=Signer)
    signing_time: str | None = Field(None, description="time from the signature's timestamp")
    timestamp_authority: str | None = None
    actions: list[Action] = Field(default_factory=list)
    ingredients: list[Ingredient] = Field(default_factory=list)


class MetadataHint(_Model):
    """Unsigned metadata that says something about the file's origin; never a signature."""

    name: str = Field(description="stable identifier, e.g. png_sd_parameters, exif_make")
    value: str = Field(description="the value found, shortened when long")
    strength: HintStrength
    source: HintSource
    indicates: HintIndicates


class InvisibleWatermark(_Model):
    """A known invisible watermark decoded from the pixels (see detector/provenance/watermark.py)."""

    scheme: Literal["stable-diffusion-v1", "sdxl"] = Field(description="which reference pipeline embeds it")
    bit_error_rate: float = Field(ge=0.0, le=1.0, description="share of decoded bits that differ from it")
    bits: int = Field(description="length of the watermark message in bits")


class ProvenanceReport(_Model):
    """The provenance section of a report: C2PA validation, declarations and metadata hints."""

    state: ProvenanceState
    state_description: str
    status_codes: list[StatusCode] = Field(default_factory=list)
    active_manifest: ActiveManifest | None = None
    manifest_count: int = 0
    ai_declaration: AIDeclaration = Field(default_factory=AIDeclaration)
    remote_url: str | None = None
    metadata_hints: list[MetadataHint] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    error_code: str | None = Field(None, description="typed error code when state is unreadable")
    error_detail: str | None = Field(None, description="what the C2PA SDK said, for unreadable")
    watermark: InvisibleWatermark | None = Field(
        None, description="a generator's invisible watermark, if found"
    )

    @property
    def failure_codes(self) -> list[str]:
        """Distinct failure codes, active manifest first, in the order the SDK gave them."""
        return list(dict.fromkeys(s.code for s in self.status_codes if s.kind == "failure"))

    def failure_codes_for(self, scope: Literal["active", "ingredient"]) -> list[str]:
        """Distinct failure codes of the active manifest or of its ingredients."""
        return list(
            dict.fromkeys(s.code for s in self.status_codes if s.kind == "failure" and s.scope == scope)
        )


UNTRUSTED = "signingCredential.untrusted"
"""The only failure code that is about trust, not tampering: the content may be intact."""


def strong_ai_hints(report: ProvenanceReport | None) -> list[MetadataHint]:
    """The unsigned metadata hints that strongly indicate generative AI or an AI edit: the ones the
    fusion's metadata rule (rule 4) counts, and that its sentences name."""
    if report is None:
        return []
    return [
        h
        for h in report.metadata_hints
        if h.strength == "strong" and h.indicates in ("generative_ai", "ai_edited")
    ]


def broken_codes(report: ProvenanceReport, scope: Literal["active", "ingredient"]) -> list[str]:
    """The failure codes of ``scope`` that mean breakage or tampering (an untrusted signer left out)."""
    return [c for c in report.failure_codes_for(scope) if c != UNTRUSTED]


def ingredient_only_failure(provenance: ProvenanceReport) -> bool:
    """An invalid store whose failures, beyond an untrusted signer, are all an ingredient's: the
    file's own credentials verify (the SDK still calls the whole store invalid)."""
    return not broken_codes(provenance, "active") and bool(broken_codes(provenance, "ingredient"))


def own_intact_declaration(provenance: ProvenanceReport) -> bool:
    """The file's own manifest verifies (only an ingredient's credentials fail) and declares AI in
    its own actions, not through an ingredient whose credentials may be the broken ones."""
    return (
        provenance.state == "invalid"
        and ingredient_only_failure(provenance)
        and not provenance.ai_declaration.from_ingredient
        and provenance.ai_declaration.value != "none_declared"
    )


def counted_ai_declaration(provenance: ProvenanceReport | None) -> bool:
    """Rule 1 of the fusion: a valid manifest declares generated or AI-edited content, or the file's
    own intact manifest does in its own actions while only an ingredient's credentials fail. One
    test for the verdict and for the sentence that words it."""
    if provenance is None or provenance.ai_declaration.value not in ("generated", "ai_edited"):
        return False
    return provenance.state in ("trusted", "valid_untrusted") or own_intact_declaration(provenance)


def own_signer_trusted(report: ProvenanceReport) -> bool:
    """The active manifest's signer chains to a configured trust anchor (also when the store as a
    whole is invalid because an ingredient's credentials fail)."""
    return report.state == "trusted" or any(
        s.code == "signingCredential.trusted" and s.kind == "success" and s.scope == "active"
        for s in report.status_codes
    )


# One plain-language line per C2PA validation status code (C2PA 2.x spec, section "Returning
# validation results"). Unknown codes get GENERIC_MEANING; the SDK's explanation is kept beside it.
STATUS_MEANINGS: dict[str, str] = {
    # success
    "claimSignature.validated": "The claim's signature is cryptographically valid.",
    "claimSignature.insideValidity": "The signing certificate was valid when the claim was signed.",
    "signingCredential.trusted": "The signing certificate chains to a trust anchor you configured.",
    "signingCredential.ocsp.notRevoked": "The certificate authority confirmed it is not revoked.",
    "timeStamp.trusted": "The signature's timestamp comes from a trusted timestamp authority.",
    "timeStamp.validated": "The signature's timestamp matches the signed data.",
    "assertion.hashedURI.match": "An assertion is exactly as it was when signed.",
    "assertion.dataHash.match": "The file's content is exactly as it was when signed.",
    "assertion.bmffHash.match": "The video's content is exactly as it was when signed.",
    "assertion.boxesHash.match": "The file's content boxes are exactly as they were when signed.",
    "assertion.collectionHash.match": "The collection of files is exactly as it was when signed.",
    "assertion.multiAssetHash.match": "All parts of the multi-part asset match what was signed.",
    "assertion.accessible": "A referenced assertion could be read.",
    "ingredient.manifest.validated": "An ingredient's Content Credentials were validated.",
    "ingredient.claimSignature.validated": "An ingredient's claim signature is valid.",
    # informational
    "signingCredential.ocsp.skipped": "Certificate revocation was not checked online (offline mode).",
    "signingCredential.ocsp.inaccessible": "The certificate revocation service could not be reached.",
    "assertion.bmffHash.additionalExclusionsPresent": "The video hash leaves out extra regions (allowed).",
    "algorithm.deprecated": "The manifest uses an algorithm that is deprecated but still accepted.",
    "ingredient.unknownProvenance": "An ingredient has no Content Credentials of its own.",
    "timeOfSigning.insideValidity": "The signing time falls inside the certificate's validity.",
    "timeOfSigning.outsideValidity": "The signing time falls outside the certificate's validity.",
    # failure: trust (the content itself may be intact)
    "signingCredential.untrusted": "The signer is not on your trust list (the content may still be intact).",
    "signingCredential.invalid": "The signing certificate is not valid for signing Content Credentials.",
    "signingCredential.revoked": "The signing certificate has been revoked.",
    "signingCredential.expired": "The signing certificate had expired when the claim was signed.",
    "signingCredential.ocsp.revoked": "The certificate authority reports the certificate as revoked.",
    "signingCredential.ocsp.unknown": "The certificate authority does not know this certificate.",
    "timeStamp.untrusted": "The timestamp authority is not trusted.",
    "timeStamp.outsideValidity": "The timestamp falls outside the timestamp certificate's validity.",
    "timeStamp.malformed": "The signature's timestamp is malformed.",
    # failure: tampering or breakage
    "claimSignature.mismatch": "The claim's signature does not match: the credentials were altered.",
    "claimSignature.missing": "The claim's signature is missing.",
    "claimSignature.outsideValidity": "The claim was signed outside the certificate's validity period.",
    "timeStamp.mismatch": "The signature's timestamp does not match the signed data.",
    "assertion.hashedURI.mismatch": "An assertion was changed after signing.",
    "assertion.missing": "An assertion listed in the claim is missing.",
    "assertion.multipleHardBindings": "The claim has more than one content binding.",
    "assertion.undeclared": "The manifest holds an assertion the claim does not list.",
    "assertion.inaccessible": "A referenced assertion could not be read.",
    "assertion.notRedacted": "An assertion marked as redacted is still present.",
    "assertion.selfRedacted": "A manifest tried to redact one of its own assertions.",
    "assertion.dataHash.mismatch": "The file's content was changed after it was signed.",
    "assertion.dataHash.malformed": "The file's content hash is malformed.",
    "assertion.bmffHash.mismatch": "The video's content was changed after it was signed.",
    "assertion.bmffHash.malformed": "The video's content hash is malformed.",
    "assertion.boxesHash.mismatch": "The file's content boxes were changed after signing.",
    "assertion.boxesHash.unknownBox": "The file contains a box the content hash does not cover.",
    "assertion.collectionHash.mismatch": "A file in the signed collection was changed.",
    "assertion.collectionHash.incorrectFileCount": "The signed collection has the wrong number of files.",
    "assertion.collectionHash.invalidURI": "The signed collection references an invalid path.",
    "assertion.collectionHash.malformed": "The collection hash is malformed.",
    "assertion.json.invalid": "A JSON assertion is not valid.",
    "assertion.cbor.invalid": "A CBOR assertion is not valid.",
    "assertion.action.ingredientMismatch": "An action refers to an ingredient that does not match.",
    "assertion.action.malformed": "An action is malformed.",
    "assertion.action.redacted": "An action assertion was redacted, which is not allowed.",
    "assertion.action.redactionMismatch": "A redaction action does not match what was redacted.",
    "assertion.cloudData.hardBinding": "A cloud data assertion is used as a hard binding (not allowed).",
    "assertion.cloudData.actions": "A cloud data assertion holds actions (not allowed).",
    "assertion.cloudData.labelMismatch": "A cloud data assertion's label does not match.",
    "ingredient.manifest.missing": "An ingredient's Content Credentials are missing.",
    "ingredient.manifest.mismatch": "An ingredient's Content Credentials were changed.",
    "ingredient.hashedURI.mismatch": "An ingredient was changed after it was referenced.",
    "ingredient.claimSignature.missing": "An ingredient's claim signature is missing.",
    "ingredient.claimSignature.mismatch": "An ingredient's claim signature does not match.",
    "claim.missing": "The manifest has no claim.",
    "claim.multiple": "The manifest has more than one claim.",
    "claim.hardBindings.missing": "The claim does not bind to the file's content.",
    "claim.required.missing": "A required field of the claim is missing.",
    "claim.cbor.invalid": "The claim is not valid CBOR.",
    "manifest.inaccessible": "The manifest could not be read.",
    "manifest.multipleParents": "The manifest names more than one parent ingredient.",
    "manifest.update.invalid": "An update manifest is not valid.",
    "manifest.update.wrongParents": "An update manifest has the wrong parent.",
    "manifest.timestamp.invalid": "A manifest's timestamp is not valid.",
    "manifest.compressed.invalid": "A compressed manifest is not valid.",
    "algorithm.unsupported": "The manifest uses an algorithm that is not supported.",
    "hashedURI.missing": "A hashed reference points to nothing.",
    "hashedURI.mismatch": "A hashed reference does not match its target.",
    "general.error": "The C2PA validator hit an unexpected error.",
}
GENERIC_MEANING = "A validation status the C2PA SDK reported; see its explanation."


def status_meaning(code: str) -> str:
    """The plain-language line for a status code (a generic line for codes not in the table)."""
    return STATUS_MEANINGS.get(code, GENERIC_MEANING)
