"""Video: frame decoding, motion proposals, tracking and the transitive-invariance graph (Wang et al. 2017)."""
