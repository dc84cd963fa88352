"""SEC: weakly supervised segmentation from image-level labels (Kolesnikov & Lampert 2016, "Seed, Expand
and Constrain"; thesis §2.3). A DeepLab-LargeFOV head gives per-class score maps (class 0 = background,
then the dataset's classes) trained with three losses, 1:1:1 (``segment/sec.py``):

- seed: cross-entropy on the localisation cues only (a first, GAP classifier's class activation maps
  above 0.2·max for present classes; the least salient 10 % of pixels for background), computed once
  before training by ``segment/cue_stage.py`` and packed into each training image (``segment/packing.py``);
- expand: global weighted rank pooling of each present class's scores (d = 0.996, background 0.999),
  −log(1 − max) for absent classes; ``sec.pooling=gmp|gap`` are the paper's ablations (d = 0 and 1);
- constrain: KL from the dense CRF's mean-field output on the photo downscaled to the score maps.

``sec.losses`` switches the terms for the ablations. Training sees image-level labels only: the masks
stay with evaluation (``--protocol segmentation`` scores this head's own output, see ``eval/sec_eval.py``).
An ordinary image (not packed: a classification batch, as the registry's contract tests give) has no
cues; its one label (plus background) is its image-level label and the seeding term is 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F

from chromaproxy.data.types import UNLABELED
from chromaproxy.errors import UserError
from chromaproxy.ranges import Fraction, Positive
from chromaproxy.segment.crf import CrfParams, dense_crf
from chromaproxy.segment.heads import largefov_head
from chromaproxy.segment.masks import IGNORE
from chromaproxy.segment.packing import cue_masks, is_packed, unpack
from chromaproxy.segment.sec import constrain_loss, expansion_loss, seeding_loss
from chromaproxy.tasks.base import Task, TaskContext

POOLING_DECAY = {"gmp": (0.0, 0.0), "gap": (1.0, 1.0)}  # global max / average pooling as GWRP's limits


@dataclass
class SecOptions:
    losses: list[Literal["seed", "expand", "constrain"]] = field(default_factory=lambda: ["seed", "expand", "constrain"])  # terms trained (ablations)
    pooling: Literal["gwrp", "gmp", "gap"] = "gwrp"  # the expansion loss's global pooling
    d_fg: Fraction[float] = 0.996  # GWRP decay of present foreground classes
    d_bg: Fraction[float] = 0.999  # GWRP decay of the background
    tap: str | None = None  # backbone tap the LargeFOV head reads; None = the deepest
    hidden: Positive[int] = 1024  # LargeFOV fc6/fc7 channels
    dilation: Positive[int] = 12  # LargeFOV fc6 dilation (12 at 41x41 output; scale it with the output size)
    crf_scale: Positive[float] = 12.0  # s of the constrain loss's CRF (θα = 80/s, θγ = 3/s output pixels; 12 at 41x41)
    fg_fraction: Fraction[float] = 0.2  # foreground cue: CAM above this fraction of its maximum
    bg_fraction: Fraction[float] = 0.1  # background cue: this share of least salient pixels
    init: Literal["cues", "random"] = "cues"  # SEC's backbone starts from the cue network's (the paper: both from ImageNet) or at random
    cue_epochs: Positive[int] = 30  # training epochs of the cue network (GAP multi-label classifier)
    cue_lr: Positive[float] = 1e-3  # its Adam learning rate
    cue_batch_size: Positive[int] = 32
    cues: str | None = None  # reuse the cues saved by another SEC run on the same images (its run folder)
    micro: str | None = None  # micro.json of a micro-annotation: suppress distractor patterns before the cues


class SecTask(Task):
    name = "sec"
    Options = SecOptions
    inputs = ("rgb", "L")
    augment_hflip = True  # a flip of a packed image mirrors photo and cues together
    segments: ClassVar[bool] = True  # the segmentation protocol scores ``scores`` itself (eval/sec_eval.py)

    def __init__(self, options: SecOptions, context: TaskContext) -> None:
        super().__init__(options, context)
        if not options.losses:
            raise UserError("sec.losses is empty; train at least one of seed, expand, constrain (e.g. sec.losses=[seed,expand])")
        channels = self.read_tap(context, options.tap)
        self.num_classes = context.num_classes + 1  # background first
        self.head = largefov_head(channels, self.num_classes, options.hidden, options.dilation)

    def make_batch(self, rgb: torch.Tensor, labels: torch.Tensor, generator: torch.Generator):
        """Photos (B, 3, S, S) and targets (image labels (B, K) bool, cue maps (B, S, S), photos)."""
        if is_packed(rgb):
            photos, cue_map, image_labels = unpack(rgb, self.num_classes)
        else:
            photos, cue_map = rgb, torch.full_like(rgb[:, 0], IGNORE, dtype=torch.long)
            image_labels = F.one_hot((labels + 1).clamp(min=0), self.num_classes).bool()  # UNLABELED → background only
            image_labels[:, 0] = True
            image_labels[labels == UNLABELED, 1:] = False
        return photos, (image_labels, cue_map, photos)

    def scores(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-class score maps (B, K, h, w): the segmentation this network predicts (before softmax)."""
        return self.head(features[self.taps[0]]).float()

    def forward(self, features: dict[str, torch.Tensor], targets) -> dict[str, torch.Tensor]:
        image_labels, cue_map, photos = targets
        log_probs = F.log_softmax(self.scores(features), dim=1)  # (B, K, h, w)
        probs = log_probs.exp()
        terms = {}
        if "seed" in self.options.losses:
            terms["seed"] = seeding_loss(log_probs, cue_masks(cue_map, self.num_classes, probs.shape[-2:]))
        if "expand" in self.options.losses:
            d_fg, d_bg = POOLING_DECAY.get(self.options.pooling, (self.options.d_fg, self.options.d_bg))
            terms["expand"] = expansion_loss(probs, image_labels, d_fg, d_bg)
        if "constrain" in self.options.losses:
            small = F.interpolate(photos.float() * 255, size=probs.shape[-2:], mode="bilinear", antialias=True, align_corners=False)
            with torch.no_grad():
                crf = dense_crf(probs, small.clamp(0, 255), CrfParams(scale=self.options.crf_scale))
            terms["constrain"] = constrain_loss(probs, crf)
        loss = sum(terms.values(), torch.zeros((), device=probs.device))
        return {"loss": loss, **{name: value.detach() for name, value in terms.items()}}
