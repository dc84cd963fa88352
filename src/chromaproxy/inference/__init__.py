"""Using a trained run on new data: colorizing real photographs at their full resolution."""

from chromaproxy.inference.colorize import colorize_image, colorize_paths, find_images

__all__ = ["colorize_image", "colorize_paths", "find_images"]
