"""Instance retrieval (transitive invariance): on held-out DAVIS sequences, an object patch's nearest
neighbours (cosine, pooled features per tap) should be the same object in other frames. The gallery
holds every sequence's object patches and up to four background patches (corners) of the same frames;
precision@k is the share of a query's k neighbours (itself excluded) that are its own object, so neither
scene colour nor near-duplicates suffice (patches are ``retrieval.frame_step`` frames apart). Chance is
the share of a sequence's object patches in the gallery (about 1 / (4 x sequences)).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from chromaproxy.data.sources import resolve_root
from chromaproxy.data.types import UNLABELED
from chromaproxy.eval.features import extract_features
from chromaproxy.eval.protocols.spec import Protocol
from chromaproxy.eval.results import record
from chromaproxy.eval.session import EvalSession
from chromaproxy.video.davis import object_patches


def precision_at_k(features: torch.Tensor, labels: torch.Tensor, ks: list[int]) -> dict[int, float]:
    """{k: mean share of same-label rows among the k nearest others} of each query, for features (N, D) and
    labels (N,); queries are the rows with a label (>= 0), background rows (UNLABELED) are gallery only."""
    normed = F.normalize(features.float(), dim=1)
    similarity = (normed @ normed.T).fill_diagonal_(-float("inf"))  # (N, N), no self-match
    queries = torch.nonzero(labels != UNLABELED).flatten()
    top = similarity[queries].topk(min(max(ks), len(labels) - 1), dim=1).indices  # (Q, K)
    same = (labels[top] == labels[queries, None]).float()  # (Q, K)
    return {k: same[:, :k].mean().item() for k in ks}


def run(session: EvalSession, options) -> list[dict]:
    root = Path(options.videos) if options.videos else resolve_root(session.cfg.data.root) / "davis2016_val"
    patches = object_patches(root, options.sequences, options.frame_step, session.cfg.data.image_size)
    features = extract_features(session.network.backbone, session.network.input, patches, session.taps,
                                options.pooling, session.device, session.cfg.eval.batch_size, description="retrieval features")
    records = []
    for tap, values in features.items():
        for k, precision in precision_at_k(values, patches.labels, options.ks).items():
            records.append(record(tap, "retrieval", "precision", precision, k=k, patches=len(patches),
                                  objects=int((patches.labels != UNLABELED).sum()),
                                  sequences=len(options.sequences), frame_step=options.frame_step))
    return records


PROTOCOL = Protocol(
    run,
    headline=lambda cfg: {"k": 5 if cfg is None or 5 in cfg.retrieval.ks else cfg.retrieval.ks[0]},
    column=lambda r: f"P@{r['k']}",
    title="retrieval: precision@k per tap (%) on held-out DAVIS sequences",
    describe=lambda session, options: f"{', '.join(session.taps)} ({len(options.sequences)} held-out DAVIS sequences, "
                                      f"a patch every {options.frame_step} frames)",
)
