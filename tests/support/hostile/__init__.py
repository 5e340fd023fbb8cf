"""Hostile and broken media, generated in code, with what trueframe must answer for each.

Two tables:

* :data:`HOSTILE`: the eight inputs of the Foundation issue as (name, HTTP status, error code, maker)
  rows, used by the API tests over the real pipeline and the Serve app.
* :data:`CASES`: the hostile-input suite (``tests/e2e/test_hostile*.py``): more than 60 kinds of
  truncated files, decompression bombs, header lies, polyglots, exotic codecs, bad metadata and
  hostile names. Each :class:`Case` has a stable ``name`` (also its file name on disk), a maker, and
  the outcome expected from a full analysis: ``"report"`` or one of a few error codes. ``stage`` says
  where a typed error comes from: ``"intake"`` (sniffing, limits, header probe: also what an
  analyzer that only probes, like the fake one, answers) or ``"decode"`` (only a real analysis that
  decodes the pixels sees it; intake accepts the file).

Makers take a scratch folder and return the bytes; base media are built once per process.
"""

from tests.support.hostile.case import REPORT, Case, Stage
from tests.support.hostile.check import check_http_answer, check_report, leftovers
from tests.support.hostile.forge import flip_signature_byte
from tests.support.hostile.media import encode
from tests.support.hostile.simple import HOSTILE, clip, jpeg, picture, png_1x1
from tests.support.hostile.suite import CASE_IDS, CASES, by_name

__all__ = [
    "CASES",
    "CASE_IDS",
    "HOSTILE",
    "REPORT",
    "Case",
    "Stage",
    "by_name",
    "check_http_answer",
    "check_report",
    "clip",
    "encode",
    "flip_signature_byte",
    "jpeg",
    "leftovers",
    "picture",
    "png_1x1",
]
