"""Segmentation transfer protocol (Larsson et al. 2017, Sec. 4.2: colorization features fine-tuned for
VOC segmentation; options are the ``seg.*`` section). A LargeFOV or hypercolumn head (``segment.heads``)
on the run's backbone, which sees the run's own ``model.input`` (rgb, L or sobel), is trained on a mask
dataset's train split with random scale / crop / flip and pixel cross-entropy (255 ignored), end to end
or on frozen features; then mIoU, pixel accuracy and each class's IoU on its test split, every photo
predicted whole at ``seg.test_scale`` and scored at its mask's resolution.

A SEC run (``tasks=[sec]``) is measured differently: its own network segments, no head is trained
(``eval/sec_eval.py``). The mask dataset is the protocol's own (``seg.data``), not the run's ``data.name``; the manifest says so.
The session's backbone is never modified: the segmenter trains a deep copy.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from chromaproxy.data.augment import to_float
from chromaproxy.data.sources import resolve_root
from chromaproxy.device import autocast
from chromaproxy.eval.probes import scheduled_batches, sgd
from chromaproxy.eval.protocols.spec import Protocol
from chromaproxy.eval.results import record
from chromaproxy.eval.session import EvalSession
from chromaproxy.segment.augment import joint_augment
from chromaproxy.segment.heads import HypercolumnHead, Segmenter, largefov_head
from chromaproxy.segment.masks import IGNORE, MaskSet
from chromaproxy.segment.metrics import class_iou, confusion_matrix, mean_iou, pixel_accuracy
from chromaproxy.segment.sources import load_masks
from chromaproxy.eval.segmentation_grid import write_prediction_grid
from chromaproxy.eval.sec_eval import sec_records, segmenting_task

GRID_FILE = "segmentation_grid.png"


def build_segmenter(session: EvalSession, options, num_classes: int) -> tuple[Segmenter, str | None]:
    """The segmenter and the tap its results are reported under (None for a hypercolumn of several taps)."""
    backbone = copy.deepcopy(session.network.backbone)
    channels = {info.name: info.channels for info in backbone.feature_info}
    if options.head == "hypercolumn":
        taps = session.taps
        head = HypercolumnHead({tap: channels[tap] for tap in taps}, num_classes, options.hidden)
        return Segmenter(session.network.input, backbone, head, taps, options.finetune), None
    tap = backbone.resolve_taps([options.tap])[0] if options.tap else backbone.feature_info[-1].name
    head = largefov_head(channels[tap], num_classes, options.hidden, options.dilation)
    return Segmenter(session.network.input, backbone, head, [tap], options.finetune), tap


def train_segmenter(session: EvalSession, model: Segmenter, data: MaskSet, options) -> None:
    device, seed = session.device, session.cfg.seed
    model.to(device).train()
    optimizer = sgd(model, options)  # a frozen backbone's parameters have no gradients, so SGD leaves them
    generator = torch.Generator(device).manual_seed(seed)
    for index in scheduled_batches(len(data), optimizer, options, seed, "segmentation"):
        rgb = to_float(data.images[index].to(device))
        rgb, target = joint_augment(rgb, data.masks[index].to(device), data.sizes[index], options.crop,
                                    (min(options.scales), max(options.scales)), generator)
        if not (target != IGNORE).any():
            continue  # every crop fell on ignored pixels: nothing to learn from
        with autocast(device):
            scores = model(rgb)
        scores = F.interpolate(scores.float(), size=target.shape[-2:], mode="bilinear", align_corners=False)
        loss = F.cross_entropy(scores, target, ignore_index=IGNORE)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval()


@torch.no_grad()
def score_confusion(session: EvalSession, model: Segmenter, data: MaskSet, options, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Confusion matrix over the test split (whole photos at ``test_scale``, scores resized to the masks)
    and the first batch's predictions (B, S, S)."""
    model.to(session.device).eval()
    total, first = torch.zeros(num_classes, num_classes, dtype=torch.long), None
    side = data.images.shape[-1]
    for start in range(0, len(data), options.batch_size):
        rgb = to_float(data.images[start : start + options.batch_size].to(session.device))
        scaled = F.interpolate(rgb, scale_factor=options.test_scale, mode="bilinear", antialias=True, align_corners=False)
        with autocast(session.device):
            scores = model(scaled)
        scores = F.interpolate(scores.float(), size=(side, side), mode="bilinear", align_corners=False)  # (B, K, S, S)
        predicted = scores.argmax(1).cpu()
        total += confusion_matrix(predicted, data.masks[start : start + options.batch_size], num_classes)
        first = predicted if first is None else first
    return total, first


def _limited(images: MaskSet, limit: int | None) -> MaskSet:
    return images if limit is None else images.subset(torch.arange(min(limit, len(images))))


def run(session: EvalSession, options) -> list[dict]:
    if segmenting_task(session.cfg) is not None:
        return sec_records(session, options)  # a SEC run: its own score maps are measured, no head is trained
    splits = load_masks(options.data, resolve_root(session.cfg.data.root), options.path)
    train, test = _limited(splits.train, options.train_limit), _limited(splits.test, options.test_limit)
    session.manifest_extra.update(dataset=options.data, location=splits.location, classes=splits.classes,
                                  splits={"train": len(train), "test": len(test)})
    torch.manual_seed(session.cfg.seed)
    model, tap = build_segmenter(session, options, len(splits.classes))
    train_segmenter(session, model, train, options)
    confusion, first = score_confusion(session, model, test, options, len(splits.classes))
    if options.grid_images > 0:
        shown = torch.arange(min(options.grid_images, len(first)))
        session.pictures.append(write_prediction_grid(test.images[shown], test.masks[shown], first[shown], test.sizes[shown],
                                                      len(splits.classes), session.run / "eval" / GRID_FILE))
    params = {"data": options.data, "head": options.head, "finetune": options.finetune, "epochs": options.epochs,
              "weights": session.weights, **({"taps": model.taps} if tap is None else {})}
    records = [record(tap, "segmentation", "miou", mean_iou(confusion), **params),
               record(tap, "segmentation", "pixel_accuracy", pixel_accuracy(confusion), **params)]
    for index, iou in enumerate(class_iou(confusion).tolist()):
        if iou == iou:  # NaN: the class is neither in the test masks nor predicted
            records.append(record(tap, "segmentation", "iou", iou, **{"class": splits.classes[index]}, **params))
    return records


def _describe(session: EvalSession, options) -> str:
    """What the protocol runs on, for the line ``evaluate`` prints."""
    if segmenting_task(session.cfg) is not None:
        how = "the run's own SEC network" + (", with and without CRF" if options.crf else "")
    else:
        how = f"{options.head} head, " + ("fine-tuned" if options.finetune else "frozen backbone")
    return f"{options.data} masks ({how})"


PROTOCOL = Protocol(
    run,
    headline=lambda cfg: {"metric": "miou"},
    column=lambda r: r.get("class", r["metric"]),
    title="segmentation: mIoU, pixel accuracy and IoU per class (%)",
    whole_network=True,
    options_section="seg",
    describe=_describe,
)
