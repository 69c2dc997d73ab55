"""The elastic one-shot supernet of HardCoRe-NAS.

Every searchable block holds the weights of all its options: a shared 1x1 expansion (``conv_pw``, ``bn1``) and
projection (``conv_pwl``) sliced by prefix for the expansion ratio, one depthwise conv + BN per kernel size, a
shared squeeze-excite sliced the same way and a privatised final BN per (expansion, SE). A stage runs its first
block always and weights the outputs after blocks 2, 3 and 4 by depth.

Three ways to run it:

* **fixed child** (:meth:`ElasticSupernet.set_child`): one option per block and one depth per stage, computed
  with sliced weights; equal to the timm network :func:`nas.models.child.extract_child` builds.
* **multipath** (:meth:`ElasticSupernet.set_multipath`): every image of a batch draws its own option per block
  and depth per stage (uniformly). Computed at full width with per-image channel masks, so a step costs about
  one heaviest-network step; each image uses its own ``bn2``/``bn3`` copy (affine and running statistics), all
  normalised in training with the statistics of the whole mixed batch (as the original).
* **weighted** (:meth:`ElasticSupernet.forward_weighted`): the search mode. Every option runs on the whole batch
  and is mixed per image by the caller's weights, so ``d loss / d weight`` is the gradient the search needs.

Fixed parts (stem, ds stage, last conv, head) are the very modules of timm's ``MobileNetV3`` under the same
names, so a heaviest-network state dict maps onto the supernet key by key.
"""


from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from timm.models._efficientnet_builder import _init_weight_goog
from torch import Tensor, nn

from nas.models.elastic import ElasticBlock, ElasticStage
from shared.builders import build_network
from shared.search_space import HARDCORENAS, ArchChoice, SearchSpace

__all__ = ["ElasticSupernet"]


class ElasticSupernet(nn.Module):
    """The HardCoRe-NAS one-shot supernet; attribute names follow timm's ``MobileNetV3``.

    ``blocks[0]`` is the fixed ds stage, ``blocks[1..num_stages]`` the elastic stages, ``blocks[-1]`` the last
    1x1 conv. The default mode is the heaviest fixed child.
    """

    def __init__(self, space: SearchSpace = HARDCORENAS, num_classes: int = 1000, drop_rate: float = 0.0):
        super().__init__()
        self.space = space
        self.num_classes = num_classes
        self.drop_rate = drop_rate
        self.num_stages = space.num_stages
        self.max_depth = space.max_depth
        self.num_options = space.num_options
        self.num_depths = len(space.depths)
        # the fixed parts are exactly those of a timm network of the space (same names, same init)
        base = build_network(space.arch_from_choice(space.heaviest()), num_classes=num_classes)
        self.conv_stem, self.bn1 = base.conv_stem, base.bn1
        stages: list[nn.Module] = [base.blocks[0]]
        for geo_stage in space.geometry(224):
            stages.append(ElasticStage(*(ElasticBlock(geo, space) for geo in geo_stage)))
        stages.append(base.blocks[-1])
        self.blocks = nn.Sequential(*stages)
        for name, m in self.blocks[1:-1].named_modules():
            _init_weight_goog(m, name)
        self.global_pool, self.conv_head, self.norm_head = base.global_pool, base.conv_head, base.norm_head
        self.act2, self.flatten, self.classifier = base.act2, base.flatten, base.classifier
        self._mode = "child"
        self._choice = space.heaviest()
        self._generator: torch.Generator | None = None

    # -- modes ---------------------------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        """``child`` (fixed sub-network) or ``multipath`` (one random sub-network per image)."""
        return self._mode

    @property
    def choice(self) -> ArchChoice:
        """The fixed child of ``child`` mode."""
        return self._choice

    def set_child(self, choice: ArchChoice) -> None:
        """Mode (b): run one fixed sub-network."""
        self.space.check_choice(choice)
        self._mode, self._choice = "child", choice

    def set_multipath(self, generator: torch.Generator | None = None) -> None:
        """Mode (a): each forward draws, per image, a uniform option per block and a uniform depth per stage."""
        self._mode, self._generator = "multipath", generator

    def sample_paths(self, batch_size: int, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
        """Uniform per-image draws: options ``[num_stages, max_depth, B]`` and depth indices ``[num_stages, B]``."""
        g = self._generator
        options = torch.randint(0, self.num_options, (self.num_stages, self.max_depth, batch_size), generator=g)
        depths = torch.randint(0, self.num_depths, (self.num_stages, batch_size), generator=g)
        return options.to(device), depths.to(device)

    # -- forward -------------------------------------------------------------------------------------------
    def forward(self, x: Tensor, return_features: bool = False) -> Tensor | tuple[Tensor, list[Tensor]]:
        """Logits under the current mode; with ``return_features`` also the stem and stage outputs (8 tensors)."""
        if self._mode == "multipath":
            options, depths = self.sample_paths(x.shape[0], x.device)
            return self.forward_paths(x, options, depths, return_features=return_features)
        return self._run(x, lambda s, st, h: self._child_stage(s, st, h), return_features)

    def forward_paths(
        self, x: Tensor, options: Tensor, depths: Tensor, *, return_features: bool = False
    ) -> Tensor | tuple[Tensor, list[Tensor]]:
        """Multipath forward with explicit per-image draws (see :meth:`sample_paths` for the shapes)."""

        def stage(s: int, st: ElasticStage, h: Tensor) -> Tensor:
            outs = []
            for j, block in enumerate(st):
                h = block.forward_multipath(h, options[s, j])
                outs.append(h)
            return self._mix_depths(outs, depths[s])

        return self._run(x, stage, return_features)

    def forward_weighted(self, x: Tensor, alpha_w: Tensor, beta_w: Tensor) -> Tensor:
        """Mode (c), the search: every option on the whole batch, mixed per image.

        ``alpha_w`` [num_stages, max_depth, num_options, B] weights each option's block output,
        ``beta_w`` [num_stages, num_depths, B] weights the stage output after each allowed depth.
        """
        b = x.shape[0]
        expected_a = (self.num_stages, self.max_depth, self.num_options, b)
        if tuple(alpha_w.shape) != expected_a:
            raise ValueError(f"alpha_w: expected shape {expected_a}, got {tuple(alpha_w.shape)}")
        if tuple(beta_w.shape) != (self.num_stages, self.num_depths, b):
            expected_b = (self.num_stages, self.num_depths, b)
            raise ValueError(f"beta_w: expected shape {expected_b}, got {tuple(beta_w.shape)}")

        def stage(s: int, st: ElasticStage, h: Tensor) -> Tensor:
            outs = []
            for j, block in enumerate(st):
                h = block.forward_weighted(h, alpha_w[s, j])
                outs.append(h)
            return sum(
                beta_w[s, d].view(-1, 1, 1, 1).to(h.dtype) * outs[depth - 1]
                for d, depth in enumerate(self.space.depths)
            )

        return self._run(x, stage, False)

    def _child_stage(self, s: int, st: ElasticStage, h: Tensor) -> Tensor:
        for j, option in enumerate(self._choice.options[s]):
            h = st[j].forward_option(h, option)
        return h

    def _mix_depths(self, outs: list[Tensor], depth_idx: Tensor) -> Tensor:
        uniq = torch.unique(depth_idx)
        if len(uniq) == 1:
            return outs[self.space.depths[int(uniq)] - 1]
        stacked = torch.stack([outs[d - 1] for d in self.space.depths])
        return stacked[depth_idx, torch.arange(depth_idx.shape[0], device=depth_idx.device)]

    def _run(self, x: Tensor, stage_fn, return_features: bool):
        feats = []
        x = self.bn1(self.conv_stem(x))
        feats.append(x)
        x = self.blocks[0](x)
        feats.append(x)
        for s in range(self.num_stages):
            x = stage_fn(s, self.blocks[s + 1], x)
            feats.append(x)
        x = self.blocks[-1](x)
        feats.append(x)
        logits = self.forward_head(x)
        return (logits, feats) if return_features else logits

    def forward_head(self, x: Tensor) -> Tensor:
        x = self.flatten(self.act2(self.norm_head(self.conv_head(self.global_pool(x)))))
        if self.drop_rate > 0.0:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return self.classifier(x)

    # -- weights ----------------------------------------------------------------------------------------------
    def fixed_state_dict(self) -> dict[str, Tensor]:
        """State dict of the parts every sub-network shares unchanged (stem, ds stage, last conv, head)."""
        searchable = tuple(f"blocks.{s + 1}." for s in range(self.num_stages))
        return {k: v for k, v in self.state_dict().items() if not k.startswith(searchable)}

    def child_state_dict(self, choice: ArchChoice) -> dict[str, Tensor]:
        """The state dict (timm ``MobileNetV3`` names) of the sub-network ``choice``."""
        self.space.check_choice(choice)
        sd = {k: v.detach().clone() for k, v in self.fixed_state_dict().items()}
        for s, stage in enumerate(choice.options):
            for j, option in enumerate(stage):
                block_sd = self.blocks[s + 1][j].option_state_dict(option)
                sd.update({f"blocks.{s + 1}.{j}.{k}": v for k, v in block_sd.items()})
        return sd

    def load_heaviest(self, heaviest_state_dict: Mapping[str, Tensor]) -> None:
        """Seed the supernet from the heaviest network (timm names; a ``module.`` prefix is ignored).

        Shared tensors take the heaviest weights; every dw kernel size takes the centre of the largest one;
        every ``bn2``/``bn3`` copy takes the heaviest block's BN.
        """
        sd = {k.removeprefix("module."): v for k, v in heaviest_state_dict.items()}
        expected = {
            k: v
            for k, v in build_network(self.space.arch_from_choice(self.space.heaviest()), num_classes=self.num_classes)
            .state_dict()
            .items()
        }
        missing = sorted(set(expected) - set(sd))
        if missing:
            raise ValueError(f"not a heaviest-network state dict of this space: missing {missing[:3]}...")
        bad = [k for k in expected if tuple(sd[k].shape) != tuple(expected[k].shape)]
        if bad:
            raise ValueError(
                f"heaviest state dict shape mismatch at {bad[0]}: {tuple(sd[bad[0]].shape)} "
                f"vs {tuple(expected[bad[0]].shape)} (another class count?)"
            )
        fixed = self.fixed_state_dict()
        with torch.no_grad():
            for k, v in fixed.items():
                v.copy_(sd[k])
        for s in range(self.num_stages):
            for j in range(self.max_depth):
                prefix = f"blocks.{s + 1}.{j}."
                block_sd = {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}
                self.blocks[s + 1][j].load_heaviest(block_sd)
