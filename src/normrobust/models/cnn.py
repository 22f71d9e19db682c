"""A small VGG-style CNN: [conv-norm-act] x ``convs_per_stage`` per stage, max-pool between stages,
global average pool, one linear classifier."""

from __future__ import annotations

from torch import nn

from .norms import make_norm


def conv_block(cin: int, cout: int, norm: str, act: type[nn.Module]) -> list[nn.Module]:
    # Convolutions keep their bias only where no norm follows (a norm's shift replaces it).
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=norm == "none"), make_norm(norm, cout), act()]


class SmallCNN(nn.Module):
    def __init__(self, norm: str, num_classes: int = 10, in_channels: int = 3, widths=(16, 32, 64),
                 convs_per_stage: int = 1, act: type[nn.Module] = nn.ReLU):
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for i, w in enumerate(widths):
            if i:
                layers.append(nn.MaxPool2d(2))
            for _ in range(convs_per_stage):
                layers += conv_block(cin, w, norm, act)
                cin = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))
