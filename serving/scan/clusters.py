"""Near-duplicate clusters of a scan: union-find over the PDQ index of the rows' hashes.

Two rows are in one cluster when they are linked by a chain of matches: the same content (sha256),
or an image within :data:`~detector.provenance.pdq.PDQ_THRESHOLD` bits of another image, or a video
at least :data:`~detector.provenance.pdq.VIDEO_MATCH_SHARE` of whose frames match another video's
(:mod:`serving.known.index`). A cluster is named after its first row, ``c_<first 12 hex of its
sha256>``; when a later row links two clusters the older name wins. Rows written to a JSONL journal
keep the name they had when written; CSV and Parquet results and the review queue use the final
clusters (:func:`assign_clusters`). Failed rows and rows without content get no cluster.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from serving.known.index import HashIndex, all_hits

Row = dict[str, Any]


class Clusters:
    """Rows added one by one; :meth:`add` names the row's cluster at that moment."""

    def __init__(self) -> None:
        self.index = HashIndex()
        self._parent: list[int] = []
        self._names: list[str] = []
        self._kinds: dict[int, str] = {}
        self._by_content: dict[str, int] = {}

    def _find(self, node: int) -> int:
        while self._parent[node] != node:
            self._parent[node] = self._parent[self._parent[node]]
            node = self._parent[node]
        return node

    def _union(self, a: int, b: int) -> None:
        ra, rb = self._find(a), self._find(b)
        if ra != rb:
            self._parent[max(ra, rb)] = min(ra, rb)  # the older cluster keeps its name

    def add(self, row: Row) -> str | None:
        """Put ``row`` in its cluster and return the cluster's name (None for failed rows)."""
        node = self._node(row)
        return None if node is None else self._names[self._find(node)]

    def name(self, row: Row) -> str | None:
        """The row's cluster name now (after every row was added); None for failed rows."""
        content = _content(row)
        node = self._by_content.get(content) if content else None
        return None if node is None else self._names[self._find(node)]

    def _node(self, row: Row) -> int | None:
        content = _content(row)
        if content is None:
            return None
        if content in self._by_content:
            return self._by_content[content]
        node = len(self._parent)
        self._parent.append(node)
        self._names.append("c_" + content.rsplit(":", 1)[-1][:12])
        self._by_content[content] = node
        kind, hashes = str(row.get("kind") or ""), str(row.get("pdq") or "").split()
        if hashes and kind in ("image", "video"):
            for hit in all_hits(self.index, hashes, kind, self._kinds):
                self._union(node, hit.entry)
            self.index.add(node, hashes)
            self._kinds[node] = kind
        return node


def _content(row: Row) -> str | None:
    """What identifies a row's content: its sha256 (else its path); None for failed rows."""
    if row.get("error_code"):
        return None
    if row.get("sha256"):
        return str(row["sha256"])
    return "path:" + str(row.get("path")) if row.get("path") else None


def assign_clusters(rows: Iterable[Row]) -> list[Row]:
    """The rows with the final ``cluster_id`` of each (merges included), in the same order."""
    chosen = list(rows)
    clusters = Clusters()
    for row in chosen:
        clusters.add(row)
    return [{**row, "cluster_id": clusters.name(row)} for row in chosen]


def representatives(rows: Iterable[Row]) -> list[Row]:
    """One row per cluster: its most suspicious member (highest P(manipulated)), with
    ``cluster_size`` and ``cluster_known_verdict`` (a member's reviewed near-duplicate, if any)."""
    best: dict[str, Row] = {}
    sizes: dict[str, int] = {}
    known: dict[str, str] = {}
    for row in assign_clusters(rows):
        cluster = row.get("cluster_id")
        if cluster is None:
            continue
        sizes[cluster] = sizes.get(cluster, 0) + 1
        if row.get("known_match_verdict"):
            known.setdefault(cluster, str(row["known_match_verdict"]))
        if cluster not in best or _score(row) > _score(best[cluster]):
            best[cluster] = row
    return [
        {**row, "cluster_size": sizes[c], "cluster_known_verdict": known.get(c)} for c, row in best.items()
    ]


def _score(row: Row) -> float:
    value = row.get("manipulated")
    return float(value) if value is not None else -1.0
