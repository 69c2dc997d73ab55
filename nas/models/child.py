"""Child extraction: a discrete choice of the supernet as a standalone timm ``MobileNetV3``."""

from __future__ import annotations

from timm.models.mobilenetv3 import MobileNetV3

from nas.models.supernet import ElasticSupernet
from shared.builders import build_network
from shared.search_space import ArchChoice

__all__ = ["extract_child"]


def extract_child(
    supernet: ElasticSupernet, choice: ArchChoice, *, drop_rate: float = 0.0, drop_path_rate: float = 0.0
) -> MobileNetV3:
    """Build the timm network of ``choice`` from its arch string and copy the supernet's sliced weights in.

    In eval mode its output equals the supernet's in ``set_child(choice)`` mode.
    """
    space = supernet.space
    net = build_network(
        space.arch_from_choice(choice),
        num_classes=supernet.num_classes,
        drop_rate=drop_rate,
        drop_path_rate=drop_path_rate,
    )
    net.load_state_dict(supernet.child_state_dict(choice), strict=True)
    return net.to(next(supernet.parameters()).device)
