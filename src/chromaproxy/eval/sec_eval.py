"""The segmentation protocol on a SEC run: SEC's OWN segmentation is measured, no head is trained.

A run whose task segments by itself (``Task.segments``, the ``sec`` task) is recognised from its config;
its whole network (backbone and LargeFOV head) is loaded and each test photo, resized to the run's
``data.image_size`` square as in training, is segmented by the per-class score maps; the softmax is
resized back to the photo's own size and scored against its mask (mIoU, pixel accuracy, IoU per class).
With ``seg.crf=true`` the same maps are also post-processed by the dense CRF, as the paper does at test
time: exact mean field on a grid of ``seg.crf_grid`` (at most 64 x 64, ``segment/crf.py``; 1.3 s a photo at 64
and 0.3 s at 48 on one CPU thread), with SEC's kernels at the
321 px scale the paper's network saw (s = 321 / grid), then resized to the photo (``miou_crf``).
The localisation cues the run trained on are scored too, against the TRAIN masks they were computed
without: ``cue_miou`` and ``cue_pixel_accuracy`` over the pixels that have a cue, and ``cue_coverage``,
the share of labelled pixels that have one (at the square training size).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from chromaproxy.checkpoint import load_checkpoint
from chromaproxy.data.augment import to_float
from chromaproxy.data.sources import resolve_root
from chromaproxy.errors import UserError
from chromaproxy.eval.results import record
from chromaproxy.eval.segmentation_grid import write_prediction_grid
from chromaproxy.network import load_network
from chromaproxy.segment.crf import MAX_POSITIONS, CrfParams, dense_crf
from chromaproxy.segment.cue_stage import CUE_DIR, CUES_FILE
from chromaproxy.segment.images import square_masks, square_photos
from chromaproxy.segment.masks import IGNORE, MaskSet
from chromaproxy.segment.metrics import class_iou, confusion_matrix, mean_iou, pixel_accuracy
from chromaproxy.segment.sources import load_masks
from chromaproxy.tasks import TASKS

GRID_FILE = "segmentation_grid.png"
PAPER_SIDE = 321  # the input side SEC's CRF settings belong to
CRF_CHUNK = 4  # photos per exact mean-field pass: a 64 x 64 grid's kernel is 64 MB per photo


def segmenting_task(cfg: Any) -> str | None:
    """The run's task that predicts segmentations itself, if any."""
    return next((name for name in cfg.tasks if getattr(TASKS[name], "segments", False)), None)


def sec_records(session: Any, options: Any) -> list[dict]:
    cfg, network = load_network(session.run, session.checkpoint or "last")
    if options.data != cfg.data.name:
        raise UserError(f"{session.run} is a SEC run on data.name={cfg.data.name}; its classes are that dataset's, "
                        f"so evaluate it with seg.data={cfg.data.name}")
    splits = load_masks(options.data, resolve_root(cfg.data.root), options.path or cfg.data.path)  # default: where it trained
    test = _first(splits.test, options.test_limit)
    session.manifest_extra.update(dataset=options.data, location=splits.location, classes=splits.classes,
                                  splits={"train": len(splits.train), "test": len(test)}, segmenter="the run's own SEC network")
    task = network.tasks[segmenting_task(cfg)]
    network.to(session.device)

    def predict(rgb: torch.Tensor) -> torch.Tensor:
        return task.scores(network.backbone.forward_features(network.input(rgb), task.taps))

    raw, crf, first = confusions(predict, test, cfg.data.image_size, len(splits.classes), options, session.device)
    if options.grid_images > 0:
        shown = torch.arange(min(options.grid_images, len(first)))
        session.pictures.append(write_prediction_grid(test.images[shown], test.masks[shown], first[shown], test.sizes[shown],
                                                      len(splits.classes), session.run / "eval" / GRID_FILE))
    params = {"data": options.data, "weights": session.weights}
    records = score_records(raw, "", splits.classes, params)
    if crf is not None:
        records += score_records(crf, "_crf", splits.classes, params)[:2]
    return records + cue_records(session.run, _first(splits.train, cfg.data.limit), splits.classes, params)


def _first(images: MaskSet, limit: int | None) -> MaskSet:
    return images if limit is None else images.subset(torch.arange(min(limit, len(images))))


def score_records(confusion: torch.Tensor, suffix: str, classes: list[str], params: dict) -> list[dict]:
    records = [record(None, "segmentation", f"miou{suffix}", mean_iou(confusion), **params),
               record(None, "segmentation", f"pixel_accuracy{suffix}", pixel_accuracy(confusion), **params)]
    for index, iou in enumerate(class_iou(confusion).tolist()):
        if iou == iou:  # NaN: neither in the masks nor predicted
            records.append(record(None, "segmentation", f"iou{suffix}", iou, **{"class": classes[index]}, **params))
    return records


@torch.no_grad()
def confusions(predict, test: MaskSet, side: int, num_classes: int, options: Any, device: torch.device):
    """Confusion matrices of the raw score maps and (``options.crf``) of their CRF output, else None; and the
    first batch's raw predictions on the canvas (B, S, S)."""
    raw = torch.zeros(num_classes, num_classes, dtype=torch.long)
    crf = raw.clone() if options.crf else None
    grid, first = min(side, options.crf_grid, int(MAX_POSITIONS**0.5)), None
    for start in range(0, len(test), options.batch_size):
        part = test.subset(torch.arange(start, min(start + options.batch_size, len(test))))
        rgb = to_float(square_photos(part, side).to(device))
        probs = F.softmax(predict(rgb), dim=1)  # (B, K, h, w)
        confusion, predicted = _scored(probs, part)
        raw, first = raw + confusion, predicted if first is None else first
        if crf is not None:
            small = F.interpolate(rgb * 255, size=(grid, grid), mode="bilinear", antialias=True, align_corners=False)
            coarse = F.interpolate(probs, size=(grid, grid), mode="bilinear", align_corners=False)
            params = CrfParams(scale=PAPER_SIDE / grid)
            refined = [dense_crf(p, r, params) for p, r in zip(coarse.split(CRF_CHUNK), small.clamp(0, 255).split(CRF_CHUNK))]
            crf += _scored(torch.cat(refined), part)[0]
    return raw, crf, first


def _scored(probs: torch.Tensor, part: MaskSet) -> tuple[torch.Tensor, torch.Tensor]:
    """Confusion of ``probs`` (B, K, h, w), each resized to its photo's own size, against the masks; and
    the predictions on the canvas (B, S, S), 0 beyond each photo."""
    total = torch.zeros(probs.shape[1], probs.shape[1], dtype=torch.long)
    canvas = torch.zeros(part.masks.shape, dtype=torch.long)
    for i, (h, w) in enumerate(part.sizes.tolist()):
        predicted = F.interpolate(probs[i : i + 1], size=(h, w), mode="bilinear", align_corners=False).argmax(1)[0].cpu()
        total += confusion_matrix(predicted, part.masks[i, :h, :w], probs.shape[1])
        canvas[i, :h, :w] = predicted
    return total, canvas


def cue_records(run, train: MaskSet, classes: list[str], params: dict) -> list[dict]:
    """The saved cues against the train masks, over the pixels that have a cue; and their coverage."""
    path = run / CUE_DIR / CUES_FILE
    if not path.is_file():
        return []
    cues = load_checkpoint(path)["cues"]  # (N, S, S) uint8, 255 = no cue
    if len(cues) != len(train):
        raise UserError(f"{path} holds cues for {len(cues)} images, but the run's train split has {len(train)}")
    masks = square_masks(train, cues.shape[-1])
    labelled = masks != IGNORE
    truth = torch.where(cues == IGNORE, torch.full_like(masks, IGNORE), masks)
    confusion = confusion_matrix(cues, truth, len(classes))
    coverage = float((labelled & (cues != IGNORE)).sum() / labelled.sum().clamp(min=1))
    cue_params = {**params, "split": "train"}
    return [record(None, "segmentation", "cue_miou", mean_iou(confusion), **cue_params),
            record(None, "segmentation", "cue_pixel_accuracy", pixel_accuracy(confusion), **cue_params),
            record(None, "segmentation", "cue_coverage", coverage, **cue_params)]
