"""Clustering for semantic pseudo-labels (SSL++): IIC heads and their mutual-information objective."""
