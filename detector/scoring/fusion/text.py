"""The words of the explanation: one plain sentence per signal and one for the verdict.

Kept apart from :mod:`detector.scoring.fusion.rules` so the arithmetic stays short; every sentence states what
the signal said and what it did to the score in log-odds (or that it was not counted, and why).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from detector.provenance.types import (
    ProvenanceReport,
    broken_codes,
    counted_ai_declaration,
    own_signer_trusted,
    strong_ai_hints,
)
from detector.report.schema import DECIDING_SIGNALS, KnownMatch, Signal, Verdict
from detector.scoring.logodds import sigmoid

NOT_PHOTOGRAPHIC = "a drawing, screenshot or flat graphic, not a camera image"
"""The out-of-scope reason of a frame :func:`detector.scoring.scope.photographic` rejects, worded here
by media kind; defined here, not there, so that the command line's report words import no OpenCV."""

_MODEL_NOUN = {
    "face_model": ("The face-forgery model", "the face(s)", "manipulated"),
    "synthetic_model": ("The synthetic-image model", "the image", "AI-generated"),
}


def _target(name: str, media_kind: str | None) -> str:
    """What a model judged: a video's synthetic-image score is over its sampled frames, not "the image"."""
    target = _MODEL_NOUN[name][1]
    return "the video's frames" if media_kind == "video" and name == "synthetic_model" else target


def not_photo(media_kind: str | None) -> str:
    """Why a non-photographic medium gets no pixel score, in the words of its kind."""
    if media_kind == "video":
        return "the video does not look like camera footage (drawing, screen recording or flat graphic)"
    return "the image does not look like a camera photograph (drawing, screenshot or flat graphic)"


def out_of_scope_words(media_kind: str | None, reasons: Sequence[str] = ()) -> str:
    """Why no detector applies, from the scope's reasons (``score.out_of_scope``): an extreme strip or a
    blank picture is named as such, not as a drawing; without reasons, the drawing's words."""
    noun = "video" if media_kind == "video" else "image"
    words = [not_photo(media_kind) if r == NOT_PHOTOGRAPHIC else f"the {noun} is {r}" for r in reasons]
    return "; ".join(dict.fromkeys(words)) or not_photo(media_kind)


VERDICT_WORDS: dict[str, str] = {
    "authentic": "Authentic",
    "likely_authentic": "Likely authentic",
    "uncertain": "Uncertain",
    "likely_manipulated": "Likely manipulated",
    "manipulated": "Manipulated",
    "ai_generated": "AI-generated",
}


_UNWEIGHTED = (
    "not counted: the fusion fitted for this kind of media gives it weight 0, because it did not tell "
    "real from fake among the calibration media of this kind, so what only this detector sees does not "
    "move the score"
)


def percent(p: float) -> str:
    """``p`` as a whole percentage that never reads as certainty: "under 1%" and "over 99%" at the ends.

    A calibrated probability rests on a few hundred calibration items; "100% likely authentic" (what
    rounding gives from 99.5% up) would claim more than they can show."""
    if 100 * p < 0.5:
        return "under 1%"
    if 100 * p >= 99.5:
        return "over 99%"
    return f"{math.floor(100 * p + 0.5)}%"  # halves up, as the web form's Math.round


def range_words(bounds: tuple[float, float]) -> str:
    """A probability's range in :func:`percent`'s words: "18% to 47%" (one figure when both round alike)."""
    low, high = percent(bounds[0]), percent(bounds[1])
    return low if low == high else f"{low} to {high}"


def _effect(contribution: float) -> str:
    verb = "adds" if contribution >= 0 else "subtracts"
    return f"this {verb} {abs(contribution):.2f} log-odds"


def _signer(prov: ProvenanceReport) -> str:
    manifest = prov.active_manifest
    if manifest is None:
        return "an unknown signer"
    s = manifest.signer
    return s.organisation or s.common_name or "an unnamed signer"


def model_signal(
    name: str,
    value: float | None,
    contribution: float | None,
    basis: str,
    configured: bool,
    photographic: bool,
    unweighted: bool = False,
    media_kind: str | None = None,
    out_of_scope: Sequence[str] = (),
) -> Signal:
    """A detector's signal: its calibrated verdict and contribution, or why it is missing.

    ``unweighted``: the fusion fitted for this kind of media gives the detector weight 0, which the
    sentence says in words (a manipulation only this detector sees cannot move the score).
    ``media_kind`` ("image" / "video") words what was judged; ``out_of_scope`` (the scope's reasons)
    says why a non-photographic medium is not judged.
    """
    noun, _, what = _MODEL_NOUN[name]
    target = _target(name, media_kind)
    if value is not None and contribution is not None:
        p = sigmoid(value)
        where = f" ({basis})" if basis else ""
        effect = _UNWEIGHTED if unweighted else _effect(contribution)
        sentence = (
            f"{noun} rates {target} {percent(p)} likely {what} on its own evidence, at even odds"
            f"{where}; {effect}."
        )
        return Signal(
            name=name,
            kind="model",
            present=True,
            probability=p,
            logit=value,
            contribution=contribution,
            counted=not unweighted,
            sentence=sentence,
        )
    if not photographic:
        why = out_of_scope_words(media_kind, out_of_scope)
        reason = f"{why}, so {noun[0].lower()}{noun[1:]} does not apply"
    elif not configured:
        reason = f"no {noun[4:].lower()} is configured, so this was not checked"
    elif name == "face_model":
        where = f" ({basis})" if basis else ""
        reason = (
            f"no face was found{where}, so the face-forgery model does not count "
            "(left out, not scored as zero)"
        )
    else:
        reason = f"{noun[0].lower()}{noun[1:]} gave no score"
    sentence = reason[0].upper() + reason[1:] + "."
    return Signal(name=name, kind="model", present=False, counted=False, sentence=sentence)


def credentials_signal(prov: ProvenanceReport | None, capture: bool, capture_prior: float | None) -> Signal:
    """What the Content Credentials said and how they were used."""
    if prov is None or prov.state == "absent":
        return Signal(
            name="content_credentials",
            kind="rule",
            present=False,
            sentence="No Content Credentials: the file says nothing signed about its origin.",
        )
    state = prov.state
    decl = prov.ai_declaration.value
    if counted_ai_declaration(prov):
        wording = "AI-generated" if decl == "generated" else "AI-edited"
        trust = "a trusted signer" if own_signer_trusted(prov) else "a signer not on your trust list"
        whose = "Valid Content Credentials"
        broken = ""
        if state == "invalid":  # only an ingredient's fail: the file's own manifest verifies
            whose = "This file's own Content Credentials, intact,"
            codes = ", ".join(broken_codes(prov, "ingredient")[:3])
            broken = f" An ingredient's credentials are INVALID ({codes}): broken provenance of a source."
        return Signal(
            name="content_credentials",
            kind="rule",
            present=True,
            sentence=f"{whose} from {_signer(prov)} ({trust}) declare the content "
            f"{wording}; a signed declaration decides the verdict whatever the pixels show.{broken}",
        )
    if capture:
        effect = f"; {_effect(capture_prior)}" if capture_prior is not None else ""
        return Signal(
            name="content_credentials",
            kind="prior",
            present=True,
            contribution=capture_prior,
            sentence=f"Trusted Content Credentials from {_signer(prov)} record a camera capture with "
            f"no edits: strong authentic evidence that cannot hide strong pixel evidence{effect}.",
        )
    flagged = _uncounted_credentials(prov)
    if flagged is not None:
        return flagged
    trust = "trusted" if state == "trusted" else "valid but from a signer not on your trust list"
    return Signal(
        name="content_credentials",
        kind="rule",
        present=True,
        sentence=f"Content Credentials from {_signer(prov)} are {trust} and declare no AI, but do "
        "not record an unedited camera capture: not counted either way.",
    )


def _uncounted_credentials(prov: ProvenanceReport) -> Signal | None:
    """The signal of credentials that are invalid, unreadable or not fetched (None otherwise)."""
    if prov.state == "invalid":
        active = broken_codes(prov, "active")
        ingredients = broken_codes(prov, "ingredient")
        own_intact = not active and bool(ingredients)  # rule 1 then counts only the file's own actions
        if own_intact:
            what = (
                "This file's own Content Credentials are intact, but an ingredient's are INVALID "
                f"({', '.join(ingredients[:3])}): broken provenance of a source"
            )
        else:
            codes = ", ".join(active[:3] or prov.failure_codes[:3]) or "validation failed"
            what = f"Content Credentials are INVALID ({codes}): tampered provenance"
        declared = prov.ai_declaration.value
        claim = "AI generation" if declared == "generated" else "AI edit"
        if declared == "none_declared":
            ignored = ""
        elif own_intact:
            ignored = (
                f"; the {claim} it records was passed on from an ingredient, whose credentials may be "
                "the broken ones, so it is not counted"
            )
        else:
            ignored = (
                f"; the {claim} they declare is not counted, since the credentials as a whole failed "
                "validation"
            )
        return Signal(
            name="content_credentials",
            kind="flag",
            present=True,
            sentence=f"{what}, reported beside the pixel score and not folded into it{ignored}.",
        )
    if prov.state == "unreadable":
        return Signal(
            name="content_credentials",
            kind="flag",
            present=True,
            sentence="Content Credentials are present but unreadable: reported beside the score, "
            "not folded into it.",
        )
    if prov.state == "remote_not_fetched":
        return Signal(
            name="content_credentials",
            kind="rule",
            present=False,
            sentence="Content Credentials are stored online and were not fetched: not counted.",
        )
    return None


WATERMARK_NAMES = {
    "stable-diffusion-v1": "Stable Diffusion (CompVis scripts)",
    "sdxl": "Stable Diffusion XL (diffusers)",
}


def known_match_signal(known: KnownMatch | None, prior: float | None) -> Signal:
    """A reviewed near-duplicate: its human decision and how it was used."""
    if known is None:
        return Signal(
            name="known_match",
            kind="rule",
            present=False,
            sentence="No near-duplicate of this media has been reviewed by people.",
        )
    when = known.reviewed_at.strftime("%Y-%m-%d")
    how = f"{known.distance} of 256 PDQ bits differ"
    if known.matched_share < 1.0:
        how = f"{known.matched_share:.0%} of the frames match; closest frame: {how}"
    if known.verdict in ("manipulated", "ai_generated"):
        effect = "a human decision outweighs the detectors"
    elif known.verdict == "authentic":
        effect = _effect(prior) if prior is not None else "not counted"
    else:
        effect = "an inconclusive review is not counted"
    return Signal(
        name="known_match",
        kind="rule",
        present=True,
        contribution=prior if known.verdict == "authentic" else None,
        sentence=f"A near-duplicate ({how}) was reviewed as {known.verdict} on {when} in the "
        f"{known.list_name} list; {effect}.",
    )


def watermark_signal(prov: ProvenanceReport | None, media_kind: str | None = None) -> Signal:
    """A generator's invisible watermark: decides the verdict like a signed AI declaration. Only
    still images are searched (``stages.watermark_of``): a video's sentence says so, not that none
    was decoded."""
    mark = None if prov is None else prov.watermark
    if mark is None and media_kind == "video":
        return Signal(
            name="invisible_watermark",
            kind="rule",
            present=False,
            sentence="Videos are not searched for invisible watermarks (the known ones are Stable "
            "Diffusion's, embedded in still images): not counted either way.",
        )
    if mark is None:
        return Signal(
            name="invisible_watermark",
            kind="rule",
            present=False,
            sentence="No known invisible watermark was decoded (most generators embed none, and "
            "re-encoding erases it): not counted either way.",
        )
    return Signal(
        name="invisible_watermark",
        kind="rule",
        present=True,
        sentence=f"The pixels carry the invisible watermark of the {WATERMARK_NAMES[mark.scheme]} reference "
        f"pipeline ({mark.bits} bits, {100 * mark.bit_error_rate:.0f}% differ; chance is excluded); it "
        "decides the verdict as AI-generated or AI-edited whatever the detectors say.",
    )


def metadata_signal(prov: ProvenanceReport, hint: bool, prior: float | None, decided: bool = False) -> Signal:
    """Unsigned metadata hints: counted (as a stated prior) only when they strongly indicate AI, and
    not when a signed declaration or a watermark ``decided`` the verdict."""
    if hint:
        strong = strong_ai_hints(prov)[0]
        effect = f"; {_effect(prior)}" if prior is not None else ""
        if decided:
            effect = "; not counted, since a stated rule decided the verdict"
        return Signal(
            name="metadata",
            kind="prior",
            present=True,
            contribution=prior,
            sentence=f"Unsigned metadata ({strong.name}) indicates generative AI; it is not a "
            f"signature and can be edited{effect}.",
        )
    names = ", ".join(dict.fromkeys(h.name for h in prov.metadata_hints))
    return Signal(
        name="metadata",
        kind="prior",
        present=True,
        sentence=f"Unsigned metadata ({names}) does not indicate AI and is easy to edit: not counted.",
    )


def summary_sentence(
    verdict: Verdict,
    p: float | None,
    rule: str | None,
    flag: str | None,
    prov: ProvenanceReport | None,
    photographic: bool,
    known: KnownMatch | None = None,
    limited: Sequence[str] = (),
    spread: tuple[float, float] | None = None,
    media_kind: str | None = None,
    calibrated: bool = True,
    degraded: Sequence[str] = (),
    stated: Sequence[Signal] = (),
    out_of_scope: Sequence[str] = (),
) -> str:
    """One sentence a reviewer can repeat (and why the verdict was held back, when it was); with
    ``spread`` (P(manipulated)'s calibration range) the authenticity's range goes with it.

    ``stated``: the provenance signals whose stated prior is in the probability (AI metadata, a
    trusted capture, a reviewed authentic near-duplicate): named, since the detectors alone did
    not give that probability.

    Every reason of ``limited`` (``score.limited``; ``degraded`` are those that weaken every pixel
    signal) is named, whether or not a rule moved the verdict."""
    if rule == "signed_ai_declaration" and prov is not None:
        wording = "AI-generated" if prov.ai_declaration.value == "generated" else "AI-edited"
        valid = "its own intact" if prov.state == "invalid" else "valid"  # an ingredient's fail
        text = f"{wording}: {valid} Content Credentials from {_signer(prov)} declare it."
        if not own_signer_trusted(prov):
            claimed = _signer(prov)
            text = (
                f"{wording}: {valid} Content Credentials declare it, signed as {claimed} by a "
                "signer not on your trust list, so who signed cannot be confirmed."
            )
            if claimed in ("an unknown signer", "an unnamed signer"):  # no name to repeat
                where = f"from {claimed} not on your trust list"
                text = f"{wording}: {valid} Content Credentials {where} declare it."
    elif rule == "known_match" and known is not None:
        when = known.reviewed_at.strftime("%Y-%m-%d")
        text = (
            f"{VERDICT_WORDS[verdict]}: a near-duplicate was reviewed by people as {known.verdict} on {when}."
        )
    elif rule == "invisible_watermark" and prov is not None and prov.watermark is not None:
        name = WATERMARK_NAMES[prov.watermark.scheme]
        text = f"AI-generated or AI-edited: it carries the {name} invisible watermark."
    elif verdict == "out_of_scope" or p is None:
        why = (
            out_of_scope_words(media_kind, out_of_scope)
            if not photographic
            else "no face was found and no synthetic-image check applies"
        )
        text = f"Out of scope: {why}, so trueframe gives no authenticity score."
    else:
        by = "the calibrated detectors" if calibrated else "detectors not calibrated together"
        if stated:
            by += " and stated provenance evidence"
        text = f"{VERDICT_WORDS[verdict]}: {percent(1 - p)} likely authentic by {by}"
        if spread is not None:
            text += f" ({range_words((1 - spread[1], 1 - spread[0]))} given the calibration's uncertainty)"
        text += "."
        if stated:
            text += " It counts " + "; ".join(_stated_words(s, prov) for s in stated) + "."
        if rule == "pixel_evidence_over_trusted_capture":
            text += " Trusted camera credentials conflict with strong pixel evidence of manipulation."
        elif rule == "pixel_evidence_over_known_authentic":
            text += (
                " A reviewed authentic near-duplicate conflicts with strong pixel evidence of manipulation."
            )
        elif rule == "degraded_media":
            text += f" Its pixels are degraded ({'; '.join(degraded)}), so they cannot make it an accusation."
        elif rule == "limited_scope":
            text += f" Kept a step closer to uncertain: {'; '.join(limited)}."
        elif rule == "uncalibrated":
            text += (
                " Kept a step closer to uncertain: the fusion was fitted for other models, so the"
                " verdict bands' error rates were not measured for these."
            )
        elif rule == "metadata_ai":
            text += (
                " Not called authentic: its own metadata names generative AI. Anyone can write that"
                " metadata, so it accuses nothing, but it rules out vouching for the file."
            )
        elif rule == "face_unweighed":
            text += (
                " Not called authentic: it shows a face, and face swaps in media of this kind were not among"
                " the fakes the score was calibrated on, so the face-forgery model is not counted here."
            )
    text += _unnamed_limits(rule, p is not None and rule not in DECIDING_SIGNALS, limited, degraded)
    if flag == "tampered":
        text += " Its Content Credentials are invalid (tampered provenance), reported separately."
    elif flag == "ingredient_invalid":
        text += (
            " Its own Content Credentials are intact, but an ingredient's are invalid (broken provenance"
            " of a source), reported separately."
        )
    elif flag == "unreadable":
        text += " Its Content Credentials could not be read."
    return text


def _stated_words(signal: Signal, prov: ProvenanceReport | None) -> str:
    """What a counted stated prior is, and its log-odds, in a few words."""
    assert signal.contribution is not None
    amount = f"{signal.contribution:+.2f} log-odds"
    if signal.name == "metadata" and prov is not None:
        names = ", ".join(dict.fromkeys(h.name for h in strong_ai_hints(prov)))
        return f"unsigned metadata that indicates generative AI ({names}; not a signature, {amount})"
    if signal.name == "content_credentials" and prov is not None:
        who = _signer(prov)
        return f"trusted Content Credentials from {who} recording an unedited camera capture ({amount})"
    return f"a near-duplicate reviewed by people as authentic ({amount})"


def _unnamed_limits(
    rule: str | None, pixels_score: bool, limited: Sequence[str], degraded: Sequence[str]
) -> str:
    """The reasons of ``limited`` the rule's own words did not name: degraded pixels (scored with the
    degraded section and bands, so never an accusation), then the other limits of scope."""
    named = set(degraded) if rule == "degraded_media" else set(limited) if rule == "limited_scope" else set()
    text = ""
    weak = [r for r in degraded if r not in named]
    if weak:
        text += f" Its pixels are degraded ({'; '.join(weak)})"
        text += ", so they cannot make it an accusation." if pixels_score else "."
    rest = [r for r in limited if r not in named and r not in degraded]
    if rest:
        text += f" Limited scope: {'; '.join(rest)}."
    return text
