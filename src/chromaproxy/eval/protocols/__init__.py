"""Protocol registry: each protocol is ``run(session, options) -> list of result records``."""

from chromaproxy.eval.protocols import colorization, conv, fewshot, finetune, knn, linear, mlp

PROTOCOLS = {
    "knn": knn.run,
    "linear": linear.run,
    "mlp": mlp.run,
    "conv": conv.run,
    "fewshot": fewshot.run,
    "finetune": finetune.run,
    "colorization": colorization.run,
}
