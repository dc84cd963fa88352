"""Micro-annotation's pieces against naive references: patterns, spectral clustering (planted clusters and
the dense generalised eigenproblem), heatmaps (Eq. 3.1), suppress_distractors, micro.json, the scripted
annotator, and the annotate command end to end on real pets3 photos."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg
import torch
from typer.testing import CliRunner

from chromaproxy.cli import app
from chromaproxy.errors import UserError
from chromaproxy.segment.micro import class_patterns, heatmaps, suppress_distractors, unit_patterns
from chromaproxy.segment.micro_file import check_micro, new_micro, read_micro, set_mark, write_micro
from chromaproxy.segment.micro_script import cue_segmentation, scripted_marks
from chromaproxy.segment.spectral import normalised_affinity, spectral_clusters


def _planted(k: int, n: int = 900, channels: int = 24, seed: int = 0):
    """k groups of non-negative unit vectors, each on its own block of channels plus a shared noise floor."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    x = rng.uniform(0, 0.15, (n, channels))
    block = channels // k
    for j in range(k):
        x[truth == j, j * block:(j + 1) * block] += rng.uniform(0.5, 1.0, ((truth == j).sum(), block))
    return x / np.linalg.norm(x, axis=1, keepdims=True), truth


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("k", [2, 3, 4])
def test_spectral_clustering_recovers_planted_clusters(k):
    x, truth = _planted(k)
    result = spectral_clusters(x)
    assert result.k == k
    assert _same_partition(result.assign, truth)
    assert result.eigenvalues[0] == pytest.approx(0, abs=1e-8)
    sizes = np.bincount(result.assign)
    assert (np.diff(sizes) <= 0).all()  # numbered largest first


def test_number_of_clusters_stays_within_two_to_four():
    assert spectral_clusters(_planted(6, channels=36)[0]).k == 4  # six groups: capped at M = 4
    rng = np.random.default_rng(1)
    one_blob = np.abs(1 + 0.05 * rng.normal(size=(300, 16)))
    assert spectral_clusters(one_blob / np.linalg.norm(one_blob, axis=1, keepdims=True)).k == 2  # at least m = 2


def test_eigenvalues_match_the_dense_generalised_problem():
    x, _ = _planted(3, n=120)
    w = x @ x.T  # built here only, to check the implicit operator
    d = np.diag(w.sum(1))
    dense = scipy.linalg.eigh(d - w, d, eigvals_only=True)[:4]
    assert np.allclose(spectral_clusters(x).eigenvalues, dense, atol=1e-8)
    operator, scale = normalised_affinity(x)
    v = np.random.default_rng(0).normal(size=120)
    assert np.allclose(operator @ v, scale * (w @ (scale * v)))


def test_class_patterns_are_the_unit_features_of_labelled_foreground():
    cams = torch.zeros(2, 3, 4, 4)
    cams[0, 1, :2, :2] = 1.0  # class 1 on image 0: 4 positions over 0.2 * max
    cams[1, 2, 3, 3], cams[1, 2, 0, 0] = 1.0, 0.1  # class 2 on image 1: one position (0.1 < 0.2)
    cams[1, 1] = 5.0  # class 1 not labelled on image 1: ignored
    features = torch.rand(2, 5, 4, 4) + 0.1
    labels = torch.tensor([[True, True, False], [True, False, True]])
    found = class_patterns([(cams, features, labels)])
    assert sorted(found) == [1, 2] and found[1].shape == (4, 5) and found[2].shape == (1, 5)
    assert torch.allclose(found[2][0], features[1, :, 3, 3] / features[1, :, 3, 3].norm())
    assert torch.allclose(found[1].norm(dim=1), torch.ones(4))


def test_heatmaps_are_inner_products_with_the_cluster_means():
    generator = torch.Generator().manual_seed(0)
    features, means = torch.randn(2, 6, 3, 5, generator=generator), torch.rand(3, 6, generator=generator)
    maps = heatmaps(features, means)
    for b in range(2):
        for m in range(3):
            for y in range(3):
                for x in range(5):
                    phi = features[b, :, y, x].clamp(min=0)
                    phi = phi / phi.norm() if phi.norm() > 0 else phi
                    assert maps[b, m, y, x].item() == pytest.approx(float(phi @ means[m]), abs=1e-6)


def _micro(means: dict[int, torch.Tensor], channels: int) -> dict:
    classes = {c: {"name": f"class{c}", "eigenvalues": [0.0, 0.5], "means": m, "sizes": [10] * len(m)} for c, m in means.items()}
    return new_micro("toy", channels, classes)


def test_suppress_distractors_zeroes_exactly_the_distractor_positions():
    generator = torch.Generator().manual_seed(1)
    cams, features = torch.rand(3, 3, 4, 5, generator=generator) + 0.5, torch.randn(3, 6, 4, 5, generator=generator)
    means = {1: torch.rand(3, 6, generator=generator), 2: torch.rand(2, 6, generator=generator)}
    micro = _micro(means, 6)
    set_mark(micro, "1", 2, "distractor")
    set_mark(micro, "2", 0, "object")
    labels = torch.tensor([[True, True, True], [True, True, False], [True, False, True]])
    out = suppress_distractors(cams, features, labels, micro)
    expected = cams.clone()
    for b in range(3):
        for y in range(4):
            for x in range(5):
                phi = unit_patterns(features)[b, :, y, x]
                scores = [float(phi @ m) for m in means[1]]
                if labels[b, 1] and max(scores) > 0 and scores.index(max(scores)) == 2:
                    expected[b, 1, y, x] = 0
    assert torch.equal(out, expected)
    assert (out != cams).any() and torch.equal(cams[:, 2], out[:, 2])


def test_suppress_distractors_refuses_a_micro_of_other_features():
    micro = _micro({1: torch.rand(2, 6)}, 6)
    cams, labels = torch.rand(1, 2, 3, 3), torch.ones(1, 2, dtype=torch.bool)
    with pytest.raises(UserError, match="6-channel"):
        suppress_distractors(cams, torch.rand(1, 8, 3, 3), labels, micro)
    with pytest.raises(UserError, match="not a micro.json"):
        suppress_distractors(cams, torch.rand(1, 6, 3, 3), labels, {"classes": {}})


def test_micro_json_round_trip_and_errors(tmp_path):
    micro = _micro({1: torch.rand(2, 4), 3: torch.rand(4, 4)}, 4)
    set_mark(micro, "3", 1, "distractor")
    write_micro(tmp_path / "micro.json", micro)
    again = read_micro(tmp_path / "micro.json")
    assert again == json.loads(json.dumps(micro)) and again["classes"]["3"]["clusters"][1]["mark"] == "distractor"
    with pytest.raises(ValueError):
        set_mark(micro, "1", 0, "maybe")
    broken = json.loads(json.dumps(micro))
    broken["classes"]["1"]["clusters"][0]["mean"] = [1.0]
    with pytest.raises(UserError, match="cluster 0 needs a 'mean' of 4"):
        check_micro(broken, "micro.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(UserError, match="not valid JSON"):
        read_micro(tmp_path / "bad.json")


def test_scripted_annotator_marks_clusters_off_the_mask_as_distractors():
    features = torch.zeros(1, 2, 4, 4)
    features[0, 0, :, :2] = 1.0  # left half: pattern A, inside the object mask
    features[0, 1, :, 2:] = 1.0  # right half: pattern B, on the background
    cams = torch.zeros(1, 2, 4, 4)
    cams[0, 1] = 1.0
    masks = torch.zeros(1, 8, 8, dtype=torch.uint8)
    masks[0, :, :4] = 1
    micro = _micro({1: torch.eye(2)}, 2)
    overlaps = scripted_marks(micro, (cams, features, torch.tensor([[True, True]])), masks, 0.2)
    assert overlaps == {1: [1.0, 0.0]}
    assert [c["mark"] for c in micro["classes"]["1"]["clusters"]] == ["object", "distractor"]


def test_cue_segmentation_reads_the_strongest_labelled_cam_above_the_threshold():
    cams = torch.zeros(1, 3, 2, 2)
    cams[0, 1] = torch.tensor([[1.0, 0.1], [0.5, 0.0]])
    cams[0, 2] = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    out = cue_segmentation(cams, torch.tensor([[True, True, True]]), 2, 0.2)
    assert out.tolist() == [[[1, 0], [2, 0]]]


def test_annotate_scripted_end_to_end_on_pets3(tmp_path, one_thread):
    from conftest import data_root

    from chromaproxy.segment.camnet import save_cam_network, train_cam_network
    from chromaproxy.segment.masks import image_labels
    from chromaproxy.segment.sources import load_masks

    if not (data_root() / "pets3").is_dir():
        pytest.skip("pets3 not found (set CHROMAPROXY_DATA)")
    splits = load_masks("pets3", data_root())
    network = train_cam_network(splits.train.images[:64], image_labels(splits.train.masks[:64], 4), steps=2, batch_size=8, width=8)
    with torch.no_grad():
        network.classify.bias += 1.0  # two steps leave every CAM negative: lift them so each class has a foreground
    save_cam_network(network, tmp_path / "run", "pets3", splits.classes)
    result = CliRunner().invoke(app, ["annotate", str(tmp_path / "run"), "--scripted", "--samples", "3", "--root", str(data_root())])
    assert result.exit_code == 0, result.output
    micro = read_micro(tmp_path / "run" / "micro.json")
    assert set(micro["classes"]) <= {"1", "2", "3"} and micro["classes"]
    assert all(c["mark"] in ("object", "distractor") for e in micro["classes"].values() for c in e["clusters"])
    index = json.loads((tmp_path / "run" / "micro" / "index.json").read_text())
    strips = [s for entry in index["classes"].values() for s in entry["strips"]]
    assert strips and all((tmp_path / "run" / "micro" / s).is_file() for s in strips)
    assert "clusters marked distractor" in result.output
    micro["classes"][next(iter(micro["classes"]))]["clusters"][0]["mark"] = None  # a mark the cache must keep
    write_micro(tmp_path / "run" / "micro.json", micro)
    from chromaproxy.segment.annotate import Settings, prepare

    assert prepare(tmp_path / "run", splits.train, splits.classes, network, Settings("pets3", samples=3)) == micro
    with pytest.raises(UserError, match="--recompute"):
        prepare(tmp_path / "run", splits.train, splits.classes, network, Settings("pets3", samples=4))


def test_annotate_without_a_cue_network_is_a_user_error(tmp_path):
    result = CliRunner().invoke(app, ["annotate", str(tmp_path)])  # main() prints a UserError as one line
    assert isinstance(result.exception, UserError) and "holds no cue network" in str(result.exception)


def test_the_stand_in_cam_network_learns_and_reloads(tmp_path, one_thread):
    from chromaproxy.segment.camnet import label_loss, load_cam_network, save_cam_network, train_cam_network

    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.tensor([[True, c == 1, c == 2] for c in [1, 2] * 4])
    images[labels[:, 1], 0] = 255  # class 1 photos are red: learnable in a few steps
    network = train_cam_network(images, labels, steps=0, batch_size=8, width=4)
    before = label_loss(network, images, labels).item()
    network = train_cam_network(images, labels, steps=5, batch_size=8, width=4)
    assert label_loss(network, images, labels).item() < before
    cams, features, predicted = network(images)
    assert cams.shape == (8, 3, 4, 4) and features.shape == (8, 16, 4, 4) and (cams[:, 0] == 0).all()
    assert predicted[:, 0].all() and torch.equal(network(images, labels)[2], labels)
    save_cam_network(network, tmp_path, "toy", ["background", "red", "other"])
    again, settings = load_cam_network(tmp_path)
    assert settings["data"] == "toy" and torch.equal(again(images)[0], cams)
    (tmp_path / "cue_network.json").write_text("{")
    with pytest.raises(UserError, match="cannot be loaded"):
        load_cam_network(tmp_path)
