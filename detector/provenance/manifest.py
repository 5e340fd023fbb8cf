"""Turn a C2PA manifest store (the SDK's JSON) into the report's provenance models.

Input is what ``c2pa.Reader.json()`` returns, plus the certificate details from ``crjson()``
keyed by manifest label. Output: status codes with plain meanings, the active manifest (claim
generator, signer, timestamp, actions, ingredient tree) and the AI declaration. Thumbnails and
other embedded resources are never copied.
"""

from __future__ import annotations

import re
from typing import Any

from detector.provenance.types import (
    UNTRUSTED,
    Action,
    ActiveManifest,
    AIDeclaration,
    Ingredient,
    IngredientValidation,
    Signer,
    StatusCode,
    StatusKind,
    source_type_ai,
    status_meaning,
)

Json = dict[str, Any]
MAX_INGREDIENT_DEPTH = 16
TRUSTED = "signingCredential.trusted"
CREATING_ACTIONS = frozenset({"c2pa.created"})
_RANK = {"none_declared": 0, "ai_edited": 1, "generated": 2}
_MANIFEST_IN_URL = re.compile(r"/c2pa/([^/]+)")
_KINDS: tuple[StatusKind, ...] = ("success", "informational", "failure")


def status_codes(store: Json) -> list[StatusCode]:
    """Every status code of the active manifest and of the ingredient deltas, in SDK order."""
    results = store.get("validation_results")
    if not isinstance(results, dict):  # older stores: a flat list of failures
        return [_status(s, "failure", "active") for s in _dicts(store.get("validation_status"))]
    codes = _grouped(results.get("activeManifest"), "active")
    for delta in _dicts(results.get("ingredientDeltas")):
        codes.extend(_grouped(delta.get("validationDeltas"), "ingredient"))
    return codes


def _grouped(groups: Any, scope: str) -> list[StatusCode]:
    if not isinstance(groups, dict):
        return []
    return [_status(s, kind, scope) for kind in _KINDS for s in _dicts(groups.get(kind))]


def _status(entry: Json, kind: StatusKind, scope: str) -> StatusCode:
    code = str(entry.get("code", "unknown"))
    url = entry.get("url")
    match = _MANIFEST_IN_URL.search(url) if isinstance(url, str) else None
    return StatusCode(
        code=code,
        meaning=status_meaning(code),
        kind=kind,
        scope="ingredient" if scope == "ingredient" else "active",
        manifest=match.group(1) if match else None,
        url=url if isinstance(url, str) else None,
        explanation=_str(entry.get("explanation")),
    )


def active_manifest(store: Json, label: str, certs: dict[str, Json]) -> ActiveManifest:
    """The active manifest with its signer, actions and ingredient tree."""
    manifest = _manifests(store).get(label, {})
    name, version = claim_generator(manifest)
    cert = certs.get(label, {})
    tsa = _dict(cert.get("timeStampInfo"))
    sig = _dict(manifest.get("signature_info"))
    return ActiveManifest(
        label=label,
        claim_generator=name,
        claim_generator_version=version,
        title=_str(manifest.get("title")),
        format=_str(manifest.get("format")),
        signer=signer(cert, sig),
        signing_time=_str(tsa.get("timestamp")) or _str(sig.get("time")),
        timestamp_authority=_name_of(_dict(_dict(tsa.get("certificateInfo")).get("subject"))),
        actions=actions(manifest),
        ingredients=ingredient_tree(store, label, deltas=_delta_index(store)),
    )


def claim_generator(manifest: Json) -> tuple[str | None, str | None]:
    """Name and version of the tool that made the claim (claim_generator_info, else the string)."""
    for info in _dicts(manifest.get("claim_generator_info")):
        if info.get("name"):
            return str(info["name"]), _str(info.get("version"))
    raw = _str(manifest.get("claim_generator"))
    if not raw:
        return None, None
    first = raw.split()[0]
    name, _, version = first.partition("/")
    return name.replace("_", " "), version or None


def signer(cert: Json, signature_info: Json) -> Signer:
    """Signer from the certificate subject/issuer (crJSON), else from ``signature_info``.

    The SDK's ``signature_info.issuer`` holds the signing certificate's subject organisation.
    """
    info = _dict(cert.get("certificateInfo"))
    subject, issuer = _dict(info.get("subject")), _dict(info.get("issuer"))
    algorithm = _str(cert.get("algorithm")) or _str(signature_info.get("alg"))
    return Signer(
        organisation=_str(subject.get("O")) or _str(signature_info.get("issuer")),
        common_name=_str(subject.get("CN")) or _str(signature_info.get("common_name")),
        issuer=_str(issuer.get("O")) or _str(issuer.get("CN")),
        algorithm=algorithm.lower() if algorithm else None,
    )


def actions(manifest: Json) -> list[Action]:
    """Entries of every ``c2pa.actions*`` assertion of one manifest."""
    found: list[Action] = []
    for assertion in _dicts(manifest.get("assertions")):
        if not str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        for entry in _dicts(_dict(assertion.get("data")).get("actions")):
            params = _dict(entry.get("parameters"))
            found.append(
                Action(
                    action=str(entry.get("action", "unknown")),
                    software_agent=_agent(entry.get("softwareAgent")),
                    when=_str(entry.get("when")),
                    digital_source_type=_str(entry.get("digitalSourceType")),
                    description=_str(entry.get("description")) or _str(params.get("description")),
                )
            )
    return found


def _agent(value: Any) -> str | None:
    if isinstance(value, dict):
        parts = [_str(value.get("name")), _str(value.get("version"))]
        return " ".join(p for p in parts if p) or None
    return _str(value)


def ai_declaration(store: Json, label: str, _depth: int = 0) -> AIDeclaration:
    """What the manifest ``label`` declares about AI, else what its ingredients declare.

    A manifest's own actions win. Otherwise a ``parentOf`` ingredient passes its declaration on,
    a generated ``componentOf`` ingredient makes the result ``ai_edited``, and ``inputTo``
    ingredients (references, prompts) pass nothing on.
    """
    manifest = _manifests(store).get(label)
    if manifest is None or _depth > MAX_INGREDIENT_DEPTH:
        return AIDeclaration()
    own = AIDeclaration()
    for action in actions(manifest):
        if not action.digital_source_type:
            continue
        value = source_type_ai(action.digital_source_type, created=action.action in CREATING_ACTIONS)
        if _RANK[value] > _RANK[own.value]:
            own = AIDeclaration(
                value=value,
                source_manifest=label,
                source_type=action.digital_source_type,
                action=action.action,
                software_agent=action.software_agent,
            )
    if own.value != "none_declared":
        return own
    best = own
    for ingredient in _dicts(manifest.get("ingredients")):
        child_label = _ingredient_manifest(ingredient)
        relationship = ingredient.get("relationship", "componentOf")
        if child_label is None or relationship == "inputTo":
            continue
        child = ai_declaration(store, child_label, _depth + 1)
        value = child.value
        if relationship == "componentOf" and value == "generated":
            value = "ai_edited"
        if _RANK[value] > _RANK[best.value]:
            best = child.model_copy(update={"value": value, "from_ingredient": True})
    return best


def ingredient_tree(
    store: Json, label: str, deltas: dict[str, tuple[list[str], list[str]]], _depth: int = 0
) -> list[Ingredient]:
    """The ingredients of manifest ``label``, each with its own validation and children."""
    manifest = _manifests(store).get(label, {})
    tree: list[Ingredient] = []
    for ingredient in _dicts(manifest.get("ingredients")):
        child_label = _ingredient_manifest(ingredient)
        uri = f"self#jumbf=/c2pa/{label}/c2pa.assertions/{ingredient.get('label', '')}"
        failures, successes = _ingredient_codes(ingredient, deltas.get(uri))
        children: list[Ingredient] = []
        if child_label is not None and _depth < MAX_INGREDIENT_DEPTH:
            children = ingredient_tree(store, child_label, deltas, _depth + 1)
        tree.append(
            Ingredient(
                title=_str(ingredient.get("title")),
                format=_str(ingredient.get("format")),
                relationship=_str(ingredient.get("relationship")),
                manifest=child_label,
                validation=_ingredient_validation(child_label, failures, successes),
                validation_codes=failures,
                ai_declaration=ai_declaration(store, child_label).value if child_label else "none_declared",
                children=children,
            )
        )
    return tree


def _ingredient_codes(
    ingredient: Json, delta: tuple[list[str], list[str]] | None
) -> tuple[list[str], list[str]]:
    """Failure and success codes of one ingredient.

    Codes recorded in the ingredient when it was added are kept, except that trust is judged
    now, with this reader's anchors: when the SDK reports a current delta for the ingredient,
    the recorded trust codes are replaced by the delta's.
    """
    failures = [str(s.get("code")) for s in _dicts(ingredient.get("validation_status"))]
    results = _dict(_dict(ingredient.get("validation_results")).get("activeManifest"))
    failures += [str(s.get("code")) for s in _dicts(results.get("failure"))]
    successes = [str(s.get("code")) for s in _dicts(results.get("success"))]
    if delta is not None:
        failures = [c for c in failures if c != UNTRUSTED] + delta[0]
        successes = [c for c in successes if c != TRUSTED] + delta[1]
    return list(dict.fromkeys(failures)), list(dict.fromkeys(successes))


def _ingredient_validation(
    label: str | None, failures: list[str], successes: list[str]
) -> IngredientValidation:
    if label is None:
        return "no_manifest"
    if any(code != UNTRUSTED for code in failures):
        return "invalid"
    if UNTRUSTED in failures:
        return "valid_untrusted"
    return "trusted" if TRUSTED in successes else "valid"


def _delta_index(store: Json) -> dict[str, tuple[list[str], list[str]]]:
    """Ingredient assertion URI -> (failure codes, success codes) from the validation deltas."""
    index: dict[str, tuple[list[str], list[str]]] = {}
    results = _dict(store.get("validation_results"))
    for delta in _dicts(results.get("ingredientDeltas")):
        groups = _dict(delta.get("validationDeltas"))
        failures = [str(s.get("code")) for s in _dicts(groups.get("failure"))]
        successes = [str(s.get("code")) for s in _dicts(groups.get("success"))]
        index[str(delta.get("ingredientAssertionURI"))] = (failures, successes)
    return index


def _ingredient_manifest(ingredient: Json) -> str | None:
    label = ingredient.get("active_manifest") or _dict(ingredient.get("manifest_data")).get("identifier")
    return str(label) if label else None


def certificates(crjson: Json) -> dict[str, Json]:
    """Manifest label -> crJSON ``signature`` object (certificate subject, issuer, timestamp)."""
    return {
        str(m.get("label")): _dict(m.get("signature"))
        for m in _dicts(crjson.get("manifests"))
        if m.get("label")
    }


def _manifests(store: Json) -> dict[str, Json]:
    manifests = store.get("manifests")
    return {k: v for k, v in manifests.items() if isinstance(v, dict)} if isinstance(manifests, dict) else {}


def _name_of(dn: Json) -> str | None:
    return _str(dn.get("CN")) or _str(dn.get("O"))


def _dicts(value: Any) -> list[Json]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _dict(value: Any) -> Json:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int | float) and str(value) else None
