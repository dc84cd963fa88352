"""The color toolkit: Lab conversion, ab bins, soft targets and decodings, class rebalancing, and the
hue/chroma histograms of Larsson et al. Every function works on batched tensors on any device."""

from chromaproxy.color.bins import ab_pixels, data_bins, nearest_bin, nearest_bins, zhang_313_bins
from chromaproxy.color.encode import ANNEALED_T, decode_annealed_mean, decode_mean, decode_mode, soft_encode
from chromaproxy.color.histograms import (
    HUE_WEIGHT_SCALE,
    chroma_weight,
    histogram_target,
    hue_chroma,
    hue_chroma_to_ab,
    hue_weight,
)
from chromaproxy.color.lab import AB_SCALE, L_CENTER, join_lab, lab_to_rgb, rgb_to_lab, split_lab
from chromaproxy.color.rebalance import (
    ColorPrior,
    bin_counts,
    empirical_prior,
    is_grayish,
    load_prior,
    pixel_weights,
    rebalance_weights,
    save_prior,
    smooth_prior,
)

__all__ = [
    "AB_SCALE",
    "ANNEALED_T",
    "HUE_WEIGHT_SCALE",
    "L_CENTER",
    "ColorPrior",
    "ab_pixels",
    "bin_counts",
    "chroma_weight",
    "data_bins",
    "decode_annealed_mean",
    "decode_mean",
    "decode_mode",
    "empirical_prior",
    "histogram_target",
    "hue_chroma",
    "hue_chroma_to_ab",
    "hue_weight",
    "is_grayish",
    "join_lab",
    "lab_to_rgb",
    "load_prior",
    "nearest_bin",
    "nearest_bins",
    "pixel_weights",
    "rebalance_weights",
    "rgb_to_lab",
    "save_prior",
    "smooth_prior",
    "soft_encode",
    "split_lab",
    "zhang_313_bins",
]
