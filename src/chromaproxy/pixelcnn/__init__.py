"""PixelCNN++ parts shared by PIC (chroma given lightness) and the Grayscale / Pyramid PixelCNNs:
causal shifted convolutions and gated residual blocks, the discretized logistic mixture, and samplers."""
