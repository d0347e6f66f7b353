"""Beneath the surface: compare a visible image with its infrared / multispectral / X-ray images
(superpixel graphs, Siamese GCN/GAT) and map where they differ. Planned; nothing is implemented yet."""
