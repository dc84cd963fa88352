import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

from chromaproxy.eval.knn import knn_predict


def test_hand_computed_toy_case():
    train = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [-1.0, 0.2]])
    labels = torch.tensor([0, 0, 1, 1, 2])
    test = torch.tensor([[1.0, 0.05], [0.05, 1.0], [-1.0, 0.0]])
    got = knn_predict(train, labels, test, ks=[1, 3])
    assert got[(1, "majority")].tolist() == [0, 1, 2]
    # k=3 for the last query: neighbours are class 2 (cos~0.98), then 1 and 0 at similar, lower similarity
    assert got[(3, "weighted")].tolist()[:2] == [0, 1]
    assert got[(3, "weighted")][2] == 2


@pytest.mark.parametrize("vote", ["weighted", "majority"])
def test_predictions_match_scikit_learn_brute_force_cosine(vote):
    generator = torch.Generator().manual_seed(0)
    train = torch.randn(600, 16, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 7, (600,), generator=generator)
    test = torch.randn(150, 16, generator=generator, dtype=torch.float64)
    ks = [1, 3, 5, 10, 20, 200]
    ours = knn_predict(train, labels, test, ks, temperature=0.07, chunk=64)
    weights = (lambda d: np.exp((1 - d) / 0.07)) if vote == "weighted" else "uniform"
    for k in ks:
        reference = KNeighborsClassifier(n_neighbors=k, algorithm="brute", metric="cosine", weights=weights)
        reference.fit(train.numpy(), labels.numpy())
        assert np.array_equal(ours[(k, vote)].numpy(), reference.predict(test.numpy())), k
