"""Merge chains of edges through pass-through nodes into one edge (OSM ways arrive split at
every shape node: a street block is a dozen 5-20 m edges).

A node is pass-through when it joins exactly two other nodes and traffic only flows through it:
one edge in and one out (a one-way street), or two in and two out pairing up as the two
directions of one street. Chains are merged edge by edge from a node that is not
pass-through; a ring made only of pass-through nodes is left as it is. Merged edges keep the
id of their first piece.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from mapmatch.network import EdgeInput


def _pass_through(edges: list[EdgeInput]) -> set[int]:
    ins: dict[int, list[int]] = defaultdict(list)
    outs: dict[int, list[int]] = defaultdict(list)
    for e in edges:
        if e.source_id == e.target_id:
            ins[e.source_id].append(e.source_id)  # a self-loop keeps its node
            outs[e.source_id].append(e.source_id)
            continue
        outs[e.source_id].append(e.target_id)
        ins[e.target_id].append(e.source_id)
    through = set()
    for node in set(ins) | set(outs):
        i, o = ins.get(node, []), outs.get(node, [])
        one_way = len(i) == 1 and len(o) == 1 and i[0] != o[0]
        two_way = len(i) == 2 and len(o) == 2 and sorted(i) == sorted(o) and i[0] != i[1]
        if one_way or two_way:
            through.add(node)
    return through


def merge_chains(edges: list[EdgeInput]) -> list[EdgeInput]:
    """Edges with pass-through chains merged (geometry concatenated, ids of the first piece)."""
    through = _pass_through(edges)
    by_source: dict[int, list[int]] = defaultdict(list)
    for k, e in enumerate(edges):
        by_source[e.source_id].append(k)
    used = np.zeros(len(edges), dtype=bool)
    merged: list[EdgeInput] = []
    for k, e in enumerate(edges):
        if used[k] or e.source_id in through:
            continue
        used[k] = True
        pieces = [e.coords]
        prev, node = e.source_id, e.target_id
        while node in through:
            nxt = [j for j in by_source[node] if not used[j] and edges[j].target_id != prev]
            if not nxt:
                break
            j = nxt[0]
            used[j] = True
            pieces.append(edges[j].coords[1:])
            prev, node = node, edges[j].target_id
        merged.append(EdgeInput(e.edge_id, e.source_id, node, np.vstack(pieces)))
    # Rings of pass-through nodes only: keep their edges unmerged.
    merged += [e for k, e in enumerate(edges) if not used[k]]
    return merged
