"""Classifiers used by the demo, the evaluation and the benchmarks.

Both models output logits (no softmax), which is what the attack differentiates by default.
They are defined here, not taken from torchvision, so that nothing is downloaded and the
architectures stay fixed across library versions.
"""

from __future__ import annotations

from typing import List, Optional

import torch
from torch import nn

__all__ = ["BasicBlock", "LeNet", "PaperLeNet", "ResNet", "resnet18_like"]


def _check_num_classes(num_classes: int) -> None:
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")


class LeNet(nn.Module):
    """LeNet-style CNN for 1x28x28 digits, as used for JSMA on MNIST.

    Layers and shapes for an input ``(N, 1, 28, 28)``::

        conv 5x5, 32 channels, ReLU   -> (N, 32, 24, 24)
        max-pool 2x2                  -> (N, 32, 12, 12)
        conv 5x5, 64 channels, ReLU   -> (N, 64, 8, 8)
        max-pool 2x2                  -> (N, 64, 4, 4)
        flatten                       -> (N, 1024)
        linear 1024 -> 200, ReLU      -> (N, 200)
        linear 200 -> num_classes     -> (N, num_classes) logits

    There is no dropout or batch normalisation, so the model computes the same function in
    train and eval mode; it still starts in train mode like any ``nn.Module``, and the attack
    expects ``.eval()``.

    Args:
        num_classes: Number of output logits.
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        _check_num_classes(num_classes)
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * 4 * 4, 200), nn.ReLU(), nn.Linear(200, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` for images ``(N, 1, 28, 28)``."""
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise ValueError(f"LeNet expects input of shape (N, 1, 28, 28), got {tuple(x.shape)}")
        return self.classifier(self.features(x))


class PaperLeNet(nn.Module):
    """The LeNet of Caffe's MNIST example, the kind of network the paper attacks.

    Layers and shapes for an input ``(N, 1, 28, 28)`` (as Caffe's ``lenet_train_test``: no
    non-linearity after the convolutions)::

        conv 5x5, 20 channels         -> (N, 20, 24, 24)
        max-pool 2x2                  -> (N, 20, 12, 12)
        conv 5x5, 50 channels         -> (N, 50, 8, 8)
        max-pool 2x2                  -> (N, 50, 4, 4)
        flatten                       -> (N, 800)
        linear 800 -> 500, ReLU       -> (N, 500)
        linear 500 -> num_classes     -> (N, num_classes) logits

    Weights start as Caffe's ``xavier`` filler (uniform in +-sqrt(3 / fan_in)), biases at 0.
    Train it with ``schedule="caffe_inv"`` (:func:`jsma_fast.mnist.training.train_classifier`).

    Args:
        num_classes: as :class:`LeNet`.
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        _check_num_classes(num_classes)
        self.features = nn.Sequential(
            nn.Conv2d(1, 20, kernel_size=5),
            nn.MaxPool2d(2),
            nn.Conv2d(20, 50, kernel_size=5),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(50 * 4 * 4, 500), nn.ReLU(), nn.Linear(500, num_classes)
        )
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()
                bound = (3.0 / fan_in) ** 0.5
                nn.init.uniform_(module.weight, -bound, bound)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` for images ``(N, 1, 28, 28)``."""
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise ValueError(
                f"PaperLeNet expects input of shape (N, 1, 28, 28), got {tuple(x.shape)}"
            )
        return self.classifier(self.features(x))


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convolutions with batch norm and an identity (or 1x1
    projection) shortcut.

    Shapes: ``(N, in_channels, H, W) -> (N, channels, ceil(H / stride), ceil(W / stride))``.

    Args:
        in_channels: Input channels.
        channels: Output channels.
        stride: Stride of the first convolution and of the projection shortcut.
    """

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.downsample: Optional[nn.Module] = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ResNet with basic blocks (He et al., 2016), laid out like torchvision's ResNet-18/34.

    Shapes for an input ``(N, in_channels, 224, 224)``::

        stem conv 7x7/2 (64) + BN + ReLU  -> (N, 64, 112, 112)
        max-pool 3x3/2                    -> (N, 64, 56, 56)
        stage 1, 64 channels              -> (N, 64, 56, 56)
        stage 2, 128 channels, stride 2   -> (N, 128, 28, 28)
        stage 3, 256 channels, stride 2   -> (N, 256, 14, 14)
        stage 4, 512 channels, stride 2   -> (N, 512, 7, 7)
        global average pool + flatten     -> (N, 512)
        linear 512 -> num_classes         -> (N, num_classes) logits

    The global average pool makes any input of at least 32x32 work.

    Args:
        blocks: Number of basic blocks in each of the four stages.
        num_classes: Number of output logits.
        in_channels: Input channels.
    """

    def __init__(self, blocks: List[int], num_classes: int = 1000, in_channels: int = 3) -> None:
        super().__init__()
        if len(blocks) != 4 or any(b < 1 for b in blocks):
            raise ValueError(f"blocks must be 4 positive counts, got {blocks}")
        _check_num_classes(num_classes)
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        stages: List[nn.Module] = []
        in_ch = 64
        for i, (count, channels) in enumerate(zip(blocks, (64, 128, 256, 512))):
            stride = 1 if i == 0 else 2
            layers = [BasicBlock(in_ch, channels, stride)]
            layers += [BasicBlock(channels, channels) for _ in range(count - 1)]
            stages.append(nn.Sequential(*layers))
            in_ch = channels
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

        # The usual ResNet initialisation, so that random weights give non-degenerate logits.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` for images ``(N, in_channels, H, W)``."""
        x = self.stages(self.stem(x))
        return self.fc(torch.flatten(self.pool(x), 1))


def resnet18_like(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """ResNet-18-shaped CNN (basic blocks [2, 2, 2, 2], 64-128-256-512 channels) for 224x224
    inputs, defined in this project with randomly initialised weights.

    With the defaults it has the same parameter count as torchvision's ``resnet18``
    (11,689,512). It uses batch normalisation: put it in eval mode before attacking it.

    Args:
        num_classes: Number of output logits.
        in_channels: Input channels (3 for RGB).

    Returns:
        A ``ResNet`` mapping ``(N, in_channels, 224, 224)`` to logits ``(N, num_classes)``.
    """
    return ResNet([2, 2, 2, 2], num_classes=num_classes, in_channels=in_channels)
