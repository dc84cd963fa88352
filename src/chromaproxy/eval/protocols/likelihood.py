"""The likelihood protocol for an image-model run (``pixelcnn``, ``grayscale_pixelcnn``,
``pyramid_pixelcnn``): exact test bits per RGB dimension, split into the model's factors, with the weights
inference uses (the Polyak average when the run kept one).

Records (``tap`` null):
- ``bits_per_dim`` with ``part`` = ``total`` (−log₂ p(X), or the bound −log₂ p(X, X̂)) and one per factor
  (``gray`` / ``colour``; ``8`` / ``16`` / ``32`` …), each factor's share of the total, so they add up —
  the thesis's Table 4.1 reports p(X̂) 0.459 and p(X | X̂) 2.52 this way;
- a pyramid's ``bits_per_dim_at`` per ``resolution`` r: the bound on the r x r image itself,
  Σ of the factors up to r over 3·r² (Table 4.2's row: lower at higher resolution).
``likelihood.samples`` images drawn with ``likelihood.seed`` go to ``eval/likelihood_samples.png``.
"""

from __future__ import annotations

import torch

from chromaproxy.data.augment import to_float
from chromaproxy.eval.protocols.spec import Protocol
from chromaproxy.eval.results import record
from chromaproxy.inference.sample import draw_images, image_model_task, save_picture, tile
from chromaproxy.network import load_network
from chromaproxy.pixelcnn.image_models import Decode, PyramidPixelCNN

SAMPLES_FILE = "likelihood_samples.png"


def run(session, options) -> list[dict]:
    _, network = load_network(session.run, session.checkpoint)
    task = image_model_task(network.to(session.device).eval(), session.run)
    totals: dict[str, float] = {}
    for start in range(0, len(session.test), session.cfg.eval.batch_size):
        rgb = to_float(session.test.images[start : start + session.cfg.eval.batch_size]).to(session.device)
        with torch.no_grad():
            parts = task.bits_per_dim_parts(task.make_batch(rgb, None, None)[1])
        for name, bits in parts.items():
            totals[name] = totals.get(name, 0.0) + bits.sum().item()
    mean = {name: value / len(session.test) for name, value in totals.items()}
    params = {"weights": session.weights, "images": len(session.test)}
    records = [record(None, "likelihood", "bits_per_dim", sum(mean.values()), part="total", unit="bits", **params)]
    records += [record(None, "likelihood", "bits_per_dim", v, part=k, unit="bits", **params) for k, v in mean.items()]
    if isinstance(task.model, PyramidPixelCNN):
        records += _per_resolution(mean, session.test.images.shape[-1], params)
    if options.samples > 0:
        images = draw_images(task, options.samples, session.test.images.shape[-1], options.seed, Decode())
        session.pictures.append(save_picture(tile(images, columns=8), session.run / "eval" / SAMPLES_FILE, scale=2))
    return records


def _per_resolution(mean: dict[str, float], side: int, params: dict) -> list[dict]:
    """Bits per dim of each pyramid level's own image, from the factors' shares of the full image's."""
    records, cumulative = [], 0.0
    for name, share in mean.items():
        cumulative += share * side**2  # this factor's bits per channel of one pixel column, summed
        resolution = int(name)
        records.append(record(None, "likelihood", "bits_per_dim_at", cumulative / resolution**2,
                              resolution=resolution, unit="bits", **params))
    return records


PROTOCOL = Protocol(
    run,
    headline=lambda cfg: {"metric": "bits_per_dim", "part": "total"},
    column=lambda r: f"bpd {r['part']}" if "part" in r else f"bpd at {r['resolution']}",
    title="likelihood: test bits per RGB dimension",
    whole_network=True,
)
