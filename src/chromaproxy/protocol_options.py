"""Config sections of the evaluation protocols (``eval.*``, ``knn.*``, ``linear.*`` …).

Outside ``eval/`` so that ``config.py`` builds the ``Config`` class from them without importing the
evaluation code, which itself reads configs (no package import cycle).
Defaults follow REFERENCE.md: kNN as the peers (cosine, T = 0.07, weighted headline) and SSL++ (K = 10);
conv-block and MLP probes as RotNet's CIFAR-10 evaluation (100 epochs, lr 0.1 x0.2 at 35/70/85). The paper
protocols are presets: configs/eval-sslpp-cifar10.yaml (SSL++ Table II) and configs/eval-rotnet-cifar10.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from chromaproxy.color.encode import ANNEALED_T
from chromaproxy.ranges import Milestone, Momentum, NonNegative, Positive, Range


@dataclass
class EvalOptions:
    protocols: list[str] = field(default_factory=lambda: ["knn"])  # what `evaluate` runs without --protocol
    train_limit: Positive[int] | None = None  # probe on the first N labeled training images only (quick evaluation)
    test_limit: Positive[int] | None = None  # report on the first N test images only
    taps: list[str] = field(default_factory=lambda: ["all"])  # taps to evaluate; all = every tap of the backbone
    batch_size: Positive[int] = 500  # images per forward pass when extracting features


@dataclass
class KnnOptions:
    ks: list[Positive[int]] = field(default_factory=lambda: [1, 3, 5, 10, 15, 20, 200])  # all from one neighbour search
    temperature: Positive[float] = 0.07  # weighted vote exp(s / T)
    pooling: str = "avg"  # avg | grid<k> | size<N> | maxgrid<k> | maxsize<N>
    vote: Literal["weighted", "majority"] = "weighted"  # the headline vote; both are always reported


@dataclass
class ScheduleOptions:
    """How a probe or fine-tuning run is optimised: SGD with the lr schedules of ``train.*``."""

    epochs: Positive[int] = 100
    batch_size: Positive[int] = 128
    lr: Positive[float] = 0.1
    momentum: Momentum[float] = 0.9
    weight_decay: NonNegative[float] = 5e-4
    schedule: Literal["multistep", "cosine", "constant"] = "multistep"
    milestones: list[Milestone[float]] = field(default_factory=lambda: [0.35, 0.7, 0.85])  # RotNet: 35/70/85 of 100 epochs
    gamma: Positive[float] = 0.2
    warmup: Momentum[float] = 0.0


@dataclass
class ProbeOptions(ScheduleOptions):
    """Shared by the linear and MLP probes (trained on cached pooled features)."""

    pooling: str = "avg"  # avg | grid<k> | size<N> | maxgrid<k> | maxsize<N> (AlexNet ~9,000: maxsize9000)
    batch_size: Positive[int] = 256


@dataclass
class LinearOptions(ProbeOptions):
    batchnorm: bool = True  # BN (no affine) before the linear layer, as VISSL's per-layer probe


@dataclass
class MlpOptions(ProbeOptions):
    layers: list[Positive[int]] = field(default_factory=lambda: [1, 2, 3])  # fully connected layers (RotNet MultLayer, 200 units)
    hidden: Positive[int] = 200
    batchnorm: bool = False  # BN (no affine) on the input; the RotNet presets set it with pooling grid8 (flat map)


@dataclass
class ConvOptions(ScheduleOptions):
    """RotNet's "NIN block" classifier on a frozen tap's feature map, trained on the fly (crop + flip)."""


@dataclass
class FewshotOptions:
    labels_per_class: list[Positive[int]] = field(default_factory=lambda: [20, 100, 400, 1000])
    seeds: list[NonNegative[int]] = field(default_factory=lambda: [0, 1, 2])
    base: Literal["knn", "linear", "conv"] = "knn"


@dataclass
class FinetuneOptions(ScheduleOptions):
    lr: Positive[float] = 0.01
    cka_images: Positive[int] = 2000  # test images on which feature shift (linear CKA) is measured


@dataclass
class ColorQualityOptions:
    """The ``colorization`` protocol (section ``colorquality``: ``colorization.*`` is the task's section)."""

    decode: Literal["annealed", "mode", "mean"] = "annealed"  # how a classification head's bins become ab
    temperature: Positive[float] = ANNEALED_T  # annealed-mean temperature (Zhang et al. 2016)
    grid_images: NonNegative[int] = 8  # first N test images drawn gray | predicted | truth in eval/colorization_grid.png
    # prior of the rebalanced AuC: Zhang's 313 bins with the evaluated test images' own prior (the same for
    # every loss, so runs compare), or a classification run's saved training prior and bins
    rebalance_prior: Literal["test", "run"] = "test"
    samples: Annotated[int, Range(2)] = 4  # PIC runs: draws per test image (sample quality, saturation, diversity, the grid's columns)
    seed: NonNegative[int] = 0  # PIC runs: seed of the draws


@dataclass
class RetrievalOptions:
    """Instance retrieval on held-out DAVIS sequences (transitive invariance): patches of each sequence's
    masked object; a good embedding finds the same object in other frames (precision@k)."""

    videos: str | None = None  # a DAVIS-layout folder (frames/ and masks/, one sub-folder per sequence); None = <data root>/davis2016_val
    sequences: list[str] = field(default_factory=lambda: ["blackswan", "camel", "car-roundabout", "dog", "goat", "kite-surf"])  # held out from mining
    frame_step: Positive[int] = 5  # one patch every N frames of a sequence
    ks: list[Positive[int]] = field(default_factory=lambda: [1, 5, 10])  # precision@k for each k
    pooling: str = "avg"  # avg | grid<k> | size<N> | maxgrid<k> | maxsize<N>


@dataclass
class LikelihoodOptions:
    """The ``likelihood`` protocol of an image-model run: test bits/dim split by factor, and samples."""

    samples: NonNegative[int] = 32  # images drawn into eval/likelihood_samples.png (0 = none)
    seed: NonNegative[int] = 0  # seed of those draws


@dataclass
class SegOptions(ScheduleOptions):
    """The ``segmentation`` transfer protocol (section ``seg``): a head trained on a mask dataset's train
    split, mIoU on its test split. Sizes suit CPU runs on the shipped photos (<= 160 px)."""

    data: Literal["pets3", "coco200", "camvid", "voc"] = "pets3"  # mask dataset; voc reads seg.path (VOC2012 layout)
    path: str | None = None  # the dataset's folder instead of <data.root>/<seg.data>
    head: Literal["largefov", "hypercolumn"] = "largefov"  # DeepLab-LargeFOV on seg.tap, or a hypercolumn of eval.taps
    finetune: bool = True  # train the backbone too (false: frozen features, the head alone learns)
    tap: str | None = None  # the largefov head's tap (default: the deepest)
    hidden: Positive[int] = 256  # head channels (LargeFOV: 1024)
    dilation: Positive[int] = 6  # LargeFOV's fc6 dilation (12 at 321 px and stride 8; scaled to small maps)
    crop: Positive[int] = 96  # training crop side after random scaling
    scales: list[Positive[float]] = field(default_factory=lambda: [0.5, 1.0])  # random scale range of the photos
    test_scale: Positive[float] = 0.75  # test photos are scaled by this, predictions resized back to the mask
    train_limit: Positive[int] | None = None  # first N training images only (quick runs)
    test_limit: Positive[int] | None = None
    grid_images: NonNegative[int] = 6  # first N test photos drawn photo | truth | predicted in eval/segmentation_grid.png
    crf: bool = True  # SEC runs: also score the dense-CRF post-processed output (miou_crf), as the paper does
    crf_grid: Annotated[int, Range(2, 64)] = 64  # SEC runs: side of the square grid the exact CRF runs on
    epochs: Positive[int] = 20
    batch_size: Positive[int] = 16
    lr: Positive[float] = 0.01
    schedule: Literal["multistep", "cosine", "poly", "constant"] = "poly"  # DeepLab: (1 - t/T)^0.9
    poly_power: Positive[float] = 0.9


PROTOCOL_OPTIONS: dict[str, type] = {
    "eval": EvalOptions,
    "knn": KnnOptions,
    "linear": LinearOptions,
    "mlp": MlpOptions,
    "conv": ConvOptions,
    "fewshot": FewshotOptions,
    "finetune": FinetuneOptions,
    "colorquality": ColorQualityOptions,
    "retrieval": RetrievalOptions,
    "likelihood": LikelihoodOptions,
    "seg": SegOptions,
}
