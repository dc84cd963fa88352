"""``python -m chromaproxy`` (also what ``torchrun -m chromaproxy`` runs)."""

from chromaproxy.cli import main

main()
