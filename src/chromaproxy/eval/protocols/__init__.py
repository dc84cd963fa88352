"""Protocol registry: each entry is a protocol module's ``PROTOCOL`` (``spec.Protocol``: its run function
and display rules); adding a protocol is one module plus one line here."""

from chromaproxy.eval.protocols import (
    colorization, conv, fewshot, finetune, knn, likelihood, linear, mlp, retrieval, segmentation,
)
from chromaproxy.eval.protocols.spec import Protocol

PROTOCOLS: dict[str, Protocol] = {
    "knn": knn.PROTOCOL,
    "linear": linear.PROTOCOL,
    "mlp": mlp.PROTOCOL,
    "conv": conv.PROTOCOL,
    "fewshot": fewshot.PROTOCOL,
    "finetune": finetune.PROTOCOL,
    "colorization": colorization.PROTOCOL,
    "retrieval": retrieval.PROTOCOL,
    "segmentation": segmentation.PROTOCOL,
    "likelihood": likelihood.PROTOCOL,
}
