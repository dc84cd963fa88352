"""Semantic segmentation: mask datasets, joint image/mask augmentation, mIoU, segmentation heads."""
