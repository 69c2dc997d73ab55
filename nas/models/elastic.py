"""The supernet's elastic layers: a block holding the weights of all its options (:class:`ElasticBlock`), its
sliced squeeze-excite and the functional BN helpers they run on (sliced, per-image and grouped batch norm).

Each block runs one option with sliced weights (a fixed child), every image its own option at full width with
channel masks (multipath), or every option mixed by the caller's weights (the search); the BN helpers keep the
running statistics as the module's own BN would. :mod:`nas.models.supernet` assembles them into the network.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from timm.layers import make_divisible
from torch import Tensor, nn

from shared.search_space import BlockGeometry, SearchSpace

__all__ = ["ElasticBlock", "ElasticSqueezeExcite", "ElasticStage"]

_ACTS = {"relu": F.relu, "hard_swish": F.hardswish}


def _bn(x: Tensor, bn: nn.BatchNorm2d, chs: int | None = None) -> Tensor:
    """Batch norm with the first ``chs`` channels of ``bn`` (running statistics updated in place)."""
    c = x.shape[1] if chs is None else chs
    training = bn.training
    if training and x.numel() // c < 2:
        training = False  # one value per channel (a lone image at 1x1): normalise with the running statistics
    momentum = bn.momentum
    if training and momentum is None:  # cumulative average, as nn.BatchNorm2d (BN recalibration)
        bn.num_batches_tracked.add_(1)
        momentum = 1.0 / float(bn.num_batches_tracked)
    return F.batch_norm(
        x,
        bn.running_mean[:c],
        bn.running_var[:c],
        bn.weight[:c],
        bn.bias[:c],
        training=training,
        momentum=momentum,
        eps=bn.eps,
    )


def _bn_per_image(x: Tensor, bns: nn.ModuleList, groups: Tensor) -> Tensor:
    """Privatised BN for a multipath batch: image ``n`` uses copy ``groups[n]`` (its affine, its running stats).

    In training every copy normalises with the statistics of the *whole* mixed batch and every copy present
    updates its running statistics with them (so running statistics are mixtures, as in the original).
    Statistics of each copy's own few images would be too noisy at small batches and, being computed on
    correlated pixels of few images, systematically too small, so evaluation with the running statistics would
    blow the activations up.
    """
    c = x.shape[1]
    weight = torch.stack([bn.weight for bn in bns])[groups][:, :, None, None]
    bias = torch.stack([bn.bias for bn in bns])[groups][:, :, None, None]
    first = bns[0]
    if first.training and x.numel() // c > 1:
        var, mean = torch.var_mean(x, dim=(0, 2, 3), unbiased=False)
        with torch.no_grad():
            n = x.numel() // c
            unbiased = var * (n / (n - 1))
            for g in torch.unique(groups).tolist():
                bn = bns[g]
                bn.num_batches_tracked.add_(1)
                m = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
                bn.running_mean.lerp_(mean, m)
                bn.running_var.lerp_(unbiased, m)
        xhat = (x - mean[None, :, None, None]) * torch.rsqrt(var + first.eps)[None, :, None, None]
    else:
        rm = torch.stack([bn.running_mean for bn in bns])[groups][:, :, None, None]
        rv = torch.stack([bn.running_var for bn in bns])[groups][:, :, None, None]
        xhat = (x - rm) * torch.rsqrt(rv + first.eps)
    return xhat * weight + bias


def _grouped(x: Tensor, groups: Tensor, fn) -> Tensor:
    """Apply ``fn(g, x_g)`` to each sub-batch of images whose group id is ``g`` and reassemble the batch."""
    present = torch.unique(groups).tolist()
    if len(present) == 1:
        return fn(present[0], x)
    out = None
    for g in present:
        idx = (groups == g).nonzero(as_tuple=True)[0]
        y = fn(g, x.index_select(0, idx))
        if out is None:
            out = y.new_zeros((x.shape[0], *y.shape[1:]))
        out = out.index_copy(0, idx, y)
    return out


class ElasticSqueezeExcite(nn.Module):
    """Squeeze-excite at the widest expansion; narrower options use the leading rows/columns."""

    def __init__(self, mid_chs: int, rd_chs: int):
        super().__init__()
        self.conv_reduce = nn.Conv2d(mid_chs, rd_chs, 1, bias=True)
        self.conv_expand = nn.Conv2d(rd_chs, mid_chs, 1, bias=True)

    def forward_sliced(self, x: Tensor, rd_chs: int) -> Tensor:
        """SE of one option: ``x`` holds that option's channels, the reduction keeps ``rd_chs``."""
        mid = x.shape[1]
        s = x.mean((2, 3), keepdim=True)
        s = F.conv2d(s, self.conv_reduce.weight[:rd_chs, :mid], self.conv_reduce.bias[:rd_chs])
        s = F.conv2d(F.relu(s), self.conv_expand.weight[:mid, :rd_chs], self.conv_expand.bias[:mid])
        return x * F.hardsigmoid(s)

    def forward_masked(self, x: Tensor, rd_mask: Tensor, se_on: Tensor) -> Tensor:
        """Per-image SE at full width: ``rd_mask`` [B, rd] keeps each image's reduction, ``se_on`` [B] bool."""
        s = self.conv_reduce(x.mean((2, 3), keepdim=True)) * rd_mask[:, :, None, None]
        gate = F.hardsigmoid(self.conv_expand(F.relu(s)))
        gate = torch.where(se_on[:, None, None, None], gate, torch.ones_like(gate))
        return x * gate


class ElasticBlock(nn.Module):
    """One searchable inverted-residual position holding all options (expansion x kernel x SE)."""

    def __init__(self, geo: BlockGeometry, space: SearchSpace):
        super().__init__()
        self.in_chs, self.out_chs, self.stride = geo.in_chs, geo.out_chs, geo.stride
        self.act = _ACTS[geo.act]
        self.has_skip = geo.in_chs == geo.out_chs and geo.stride == 1
        self.exp_ratios, self.kernels, self.se_ratios = space.exp_ratios, space.kernels, space.se_ratios
        if any(r not in (0.0, max(self.se_ratios)) for r in self.se_ratios):
            raise ValueError("the elastic block supports SE ratios {0, r} only")
        self.mid_chs = [make_divisible(geo.in_chs * e) for e in self.exp_ratios]
        se_ratio = max(self.se_ratios)
        self.rd_chs = [make_divisible(m * se_ratio) if se_ratio else 0 for m in self.mid_chs]
        mid_max, rd_max = max(self.mid_chs), max(self.rd_chs)

        self.conv_pw = nn.Conv2d(geo.in_chs, mid_max, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid_max)
        self.conv_dw = nn.ModuleList(
            nn.Conv2d(
                mid_max, mid_max, k, geo.stride, padding=((geo.stride - 1) + (k - 1)) // 2, groups=mid_max, bias=False
            )
            for k in self.kernels
        )
        self.bn2 = nn.ModuleList(nn.BatchNorm2d(mid_max) for _ in self.kernels)
        self.se = ElasticSqueezeExcite(mid_max, rd_max) if rd_max else None
        self.conv_pwl = nn.Conv2d(mid_max, geo.out_chs, 1, bias=False)
        self.bn3 = nn.ModuleList(nn.BatchNorm2d(geo.out_chs) for _ in range(len(self.exp_ratios) * len(self.se_ratios)))

        # option index -> (er_idx, k_idx, se_idx), the search space's order: expansion-major, then kernel, SE fastest
        n_k, n_se = len(self.kernels), len(self.se_ratios)
        opts = torch.arange(len(self.exp_ratios) * n_k * n_se)
        self.register_buffer("opt_er", opts // (n_k * n_se), persistent=False)
        self.register_buffer("opt_k", (opts // n_se) % n_k, persistent=False)
        self.register_buffer("opt_se", opts % n_se, persistent=False)
        ch = torch.arange(mid_max)
        self.register_buffer("width_mask", torch.stack([(ch < m).float() for m in self.mid_chs]), persistent=False)
        rd = torch.arange(rd_max)
        self.register_buffer("rd_mask", torch.stack([(rd < r).float() for r in self.rd_chs]), persistent=False)

    @property
    def num_options(self) -> int:
        return len(self.exp_ratios) * len(self.kernels) * len(self.se_ratios)

    def split_option(self, option: int) -> tuple[int, int, int]:
        """``option`` -> (expansion index, kernel index, SE index)."""
        n_k, n_se = len(self.kernels), len(self.se_ratios)
        return option // (n_k * n_se), (option // n_se) % n_k, option % n_se

    def bn3_index(self, er_idx: int, se_idx: int) -> int:
        return er_idx * len(self.se_ratios) + se_idx

    # -- one option for the whole batch (fixed child, search) ---------------------------------------------
    def _expand(self, x: Tensor, mid: int) -> Tensor:
        return self.act(_bn(F.conv2d(x, self.conv_pw.weight[:mid]), self.bn1, mid))

    def _depthwise(self, h: Tensor, k_idx: int) -> Tensor:
        conv, mid = self.conv_dw[k_idx], h.shape[1]
        h = F.conv2d(h, conv.weight[:mid], None, conv.stride, conv.padding, groups=mid)
        return self.act(_bn(h, self.bn2[k_idx], mid))

    def _project(self, h: Tensor, er_idx: int, se_idx: int) -> Tensor:
        mid = h.shape[1]
        if self.se_ratios[se_idx]:
            h = self.se.forward_sliced(h, self.rd_chs[er_idx])
        return _bn(F.conv2d(h, self.conv_pwl.weight[:, :mid]), self.bn3[self.bn3_index(er_idx, se_idx)])

    def forward_option(self, x: Tensor, option: int) -> Tensor:
        """The block as option ``option`` alone, with sliced weights."""
        er_idx, k_idx, se_idx = self.split_option(option)
        mid = self.mid_chs[er_idx]
        y = self._project(self._depthwise(self._expand(x, mid), k_idx), er_idx, se_idx)
        return y + x if self.has_skip else y

    def forward_weighted(self, x: Tensor, weights: Tensor) -> Tensor:
        """Every option on the whole batch, mixed per image: ``weights`` [num_options, B]."""
        h = self._expand(x, max(self.mid_chs))
        dw = [self._depthwise(h, k) for k in range(len(self.kernels))]
        out = 0
        for i in range(self.num_options):
            er_idx, k_idx, se_idx = self.split_option(i)
            y = self._project(dw[k_idx][:, : self.mid_chs[er_idx]], er_idx, se_idx)
            if self.has_skip:
                y = y + x
            out = out + weights[i].view(-1, 1, 1, 1).to(y.dtype) * y
        return out

    # -- one option per image (multipath) ---------------------------------------------------------------
    def forward_multipath(self, x: Tensor, options: Tensor) -> Tensor:
        """Each image ``n`` through option ``options[n]``: full width with per-image masks, grouped BNs."""
        uniq = torch.unique(options)
        if len(uniq) == 1:
            return self.forward_option(x, int(uniq))
        er, k, se = self.opt_er[options], self.opt_k[options], self.opt_se[options]
        h = self.act(_bn(self.conv_pw(x), self.bn1))

        h = _grouped(h, k, lambda k_idx, hk: self.conv_dw[k_idx](hk))
        h = self.act(_bn_per_image(h, self.bn2, k))
        h = h * self.width_mask[er][:, :, None, None]
        se_on = self.se_ratios_tensor(se)
        if self.se is not None and bool(se_on.any()):
            h = self.se.forward_masked(h, self.rd_mask[er], se_on)
        y = self.conv_pwl(h)
        y = _bn_per_image(y, self.bn3, er * len(self.se_ratios) + se)
        return y + x if self.has_skip else y

    def se_ratios_tensor(self, se_idx: Tensor) -> Tensor:
        on = torch.tensor([r > 0 for r in self.se_ratios], device=se_idx.device)
        return on[se_idx]

    # -- weights of one option as a standalone timm InvertedResidual -----------------------------------------
    def option_state_dict(self, option: int) -> dict[str, Tensor]:
        """State dict (timm ``InvertedResidual`` names) of option ``option``: prefix slices of shared tensors."""
        er_idx, k_idx, se_idx = self.split_option(option)
        mid, rd = self.mid_chs[er_idx], self.rd_chs[er_idx]
        sd: dict[str, Tensor] = {"conv_pw.weight": self.conv_pw.weight[:mid]}
        sd.update(_bn_state("bn1", self.bn1, mid))
        sd["conv_dw.weight"] = self.conv_dw[k_idx].weight[:mid]
        sd.update(_bn_state("bn2", self.bn2[k_idx], mid))
        if self.se_ratios[se_idx]:
            sd["se.conv_reduce.weight"] = self.se.conv_reduce.weight[:rd, :mid]
            sd["se.conv_reduce.bias"] = self.se.conv_reduce.bias[:rd]
            sd["se.conv_expand.weight"] = self.se.conv_expand.weight[:mid, :rd]
            sd["se.conv_expand.bias"] = self.se.conv_expand.bias[:mid]
        sd["conv_pwl.weight"] = self.conv_pwl.weight[:, :mid]
        sd.update(_bn_state("bn3", self.bn3[self.bn3_index(er_idx, se_idx)]))
        return {k: v.detach().clone() for k, v in sd.items()}

    def load_heaviest(self, sd: Mapping[str, Tensor]) -> None:
        """Seed every option from a heaviest block's state dict (timm names): smaller dw kernels take the centre."""
        with torch.no_grad():
            self.conv_pw.weight.copy_(sd["conv_pw.weight"])
            _load_bn(self.bn1, sd, "bn1")
            big = sd["conv_dw.weight"]
            for conv, bn in zip(self.conv_dw, self.bn2, strict=True):
                k, kb = conv.kernel_size[0], big.shape[-1]
                off = (kb - k) // 2
                conv.weight.copy_(big[..., off : off + k, off : off + k])
                _load_bn(bn, sd, "bn2")
            if self.se is not None:
                for name in ("conv_reduce.weight", "conv_reduce.bias", "conv_expand.weight", "conv_expand.bias"):
                    self.se.get_parameter(name).copy_(sd[f"se.{name}"])
            self.conv_pwl.weight.copy_(sd["conv_pwl.weight"])
            for bn in self.bn3:
                _load_bn(bn, sd, "bn3")


def _bn_state(prefix: str, bn: nn.BatchNorm2d, chs: int | None = None) -> dict[str, Tensor]:
    c = bn.num_features if chs is None else chs
    out = {f"{prefix}.{n}": getattr(bn, n)[:c] for n in ("weight", "bias", "running_mean", "running_var")}
    out[f"{prefix}.num_batches_tracked"] = bn.num_batches_tracked
    return out


def _load_bn(bn: nn.BatchNorm2d, sd: Mapping[str, Tensor], prefix: str) -> None:
    for n in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
        getattr(bn, n).copy_(sd[f"{prefix}.{n}"])


class ElasticStage(nn.Sequential):
    """The ``max_depth`` elastic blocks of one stage (module names ``0..3`` like timm's stage)."""
