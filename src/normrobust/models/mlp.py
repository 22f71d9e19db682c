"""Goodfellow et al.'s (FGSM paper) MNIST models on flattened images.

``LinearClassifier``: the shallow softmax classifier, flatten → Linear (no norm).
``MaxoutNet``: flatten → maxout layers → Linear. A maxout layer is Linear(in, hidden·pieces),
optionally BatchNorm1d over those hidden·pieces units, then the max over each unit's ``pieces``
(pieces of one unit are adjacent), then dropout. Maxout units are their own nonlinearity.
"""

from __future__ import annotations

from torch import nn

from .norms import make_norm1d


class LinearClassifier(nn.Module):
    def __init__(self, in_features: int, num_classes: int = 10):
        super().__init__()
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, x):
        return self.fc(x.flatten(1))


class Maxout(nn.Module):
    def __init__(self, cin: int, units: int, pieces: int, norm: str = "none"):
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(cin, units * pieces, bias=norm == "none")
        self.norm = make_norm1d(norm, units * pieces)

    def forward(self, x):
        z = self.norm(self.linear(x))
        return z.view(z.shape[0], self.units, self.pieces).amax(dim=2)


class MaxoutNet(nn.Module):
    def __init__(self, norm: str, in_features: int, num_classes: int = 10, hidden=(240, 240), pieces: int = 5,
                 dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_features
        for h in hidden:
            layers.append(Maxout(cin, h, pieces, norm))
            if dropout:
                layers.append(nn.Dropout(dropout))
            cin = h
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.fc(self.features(x.flatten(1)))
