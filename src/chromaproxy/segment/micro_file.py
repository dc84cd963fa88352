"""micro.json: what micro-annotation hands to the cue stage (``sec.micro=RUN/micro.json``).

```
{"format": 1, "data": "pets3", "channels": 128,
 "classes": {"1": {"name": "Abyssinian (cat)", "eigenvalues": [0.0, 0.41, ...],
                   "clusters": [{"mean": [128 floats], "patterns": 5120, "mark": "object"}, ...]}}}
```

Keys of ``classes`` are class ids (class 0, background, is never clustered); ``mean`` is the cluster's
mean unit pattern, which is all ``suppress_distractors`` needs besides the mark; ``mark`` is ``"object"``,
``"distractor"`` or null (not marked yet, treated as object). Written atomically, so a page click and a
training run reading the file never see half of it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from chromaproxy.errors import UserError
from chromaproxy.io import atomic_write_text

FORMAT = 1
MICRO, CACHE, INDEX = "micro.json", "micro", "index.json"  # RUN/micro.json; RUN/micro/ the page's cache
OBJECT, DISTRACTOR = "object", "distractor"
MARKS = (OBJECT, DISTRACTOR, None)


def new_micro(data: str, channels: int, classes: dict[int, dict]) -> dict:
    """A micro.json dict; ``classes`` maps a class id to {"name", "eigenvalues", "means" (M, C), "sizes"}."""
    entries = {}
    for c, entry in sorted(classes.items()):
        clusters = [{"mean": [round(float(v), 6) for v in mean], "patterns": int(size), "mark": None}
                    for mean, size in zip(entry["means"], entry["sizes"])]
        eigenvalues = [round(float(v), 6) for v in entry["eigenvalues"]]
        entries[str(c)] = {"name": entry["name"], "eigenvalues": eigenvalues, "clusters": clusters}
    return {"format": FORMAT, "data": data, "channels": int(channels), "classes": entries}


def check_micro(micro: object, source: str) -> dict:
    """``micro`` itself if it is a well-formed micro.json, else a UserError naming the first problem."""
    def fail(problem: str) -> None:
        raise UserError(f"{source}: {problem}; write it again with 'chromaproxy annotate RUN'")

    if not isinstance(micro, dict) or micro.get("format") != FORMAT:
        fail(f"not a micro.json of format {FORMAT}")
    if not isinstance(micro.get("channels"), int) or not isinstance(micro.get("classes"), dict):
        fail("needs 'channels' (an integer) and 'classes' (an object)")
    for key, entry in micro["classes"].items():
        if not key.isdigit() or int(key) == 0:
            fail(f"class key {key!r} must be a foreground class id (1, 2, ...)")
        for i, cluster in enumerate(entry.get("clusters", []) if isinstance(entry, dict) else [None]):
            if not isinstance(cluster, dict) or len(cluster.get("mean") or []) != micro["channels"]:
                fail(f"class {key} cluster {i} needs a 'mean' of {micro['channels']} numbers")
            if cluster.get("mark") not in MARKS:
                fail(f"class {key} cluster {i} has mark {cluster.get('mark')!r}; use object, distractor or null")
    return micro


def read_micro(path: Path) -> dict:
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise UserError(f"{path} cannot be read ({error.strerror}); run 'chromaproxy annotate RUN' to write it") from None
    try:
        return check_micro(json.loads(text), str(path))
    except json.JSONDecodeError as error:
        raise UserError(f"{path} is not valid JSON ({error.msg}, line {error.lineno})") from None


def write_micro(path: Path, micro: dict) -> None:
    atomic_write_text(Path(path), json.dumps(check_micro(micro, str(path)), indent=1) + "\n")


def set_mark(micro: dict, class_id: str, cluster: int, mark: str | None) -> None:
    """Mark one cluster; a KeyError/IndexError/ValueError names what does not exist."""
    if mark not in MARKS:
        raise ValueError(f"mark must be object, distractor or null, not {mark!r}")
    micro["classes"][str(class_id)]["clusters"][int(cluster)]["mark"] = mark


def class_clusters(micro: dict, channels: int, num_classes: int):
    """Yield (class id, means (M, C) float32, distractor (M,) bool) per class, checking that micro.json
    was made with features of ``channels`` channels and classes below ``num_classes`` (a dict parsed
    from the file by anyone, not only ``read_micro``, is checked whole first)."""
    check_micro(micro, "micro.json")
    if micro["channels"] != channels:
        raise UserError(f"micro.json was made from {micro['channels']}-channel features but the cue network gives "
                        f"{channels}; annotate the run whose cue network is used (chromaproxy annotate RUN)")
    for key, entry in micro["classes"].items():
        if int(key) >= num_classes:
            raise UserError(f"micro.json has class {key} but the cue network knows {num_classes} classes; it belongs to another dataset")
        clusters = entry["clusters"]
        if clusters:
            means = torch.tensor([cluster["mean"] for cluster in clusters], dtype=torch.float32)
            yield int(key), means, torch.tensor([cluster["mark"] == DISTRACTOR for cluster in clusters])
