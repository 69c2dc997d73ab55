"""The HardCoRe-NAS search space as data: macro structure, per-block options, depths.

The space knows which distinct block measurements it needs at an input resolution (the latency table's
keys, fixed parts included) and converts between a choice (one option per block, one depth per stage)
and an architecture string.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from itertools import product

from shared.arch_string import ArchDef, BlockDef, format_number, parse_arch
from shared.block_key import BlockKey

__all__ = [
    "HARDCORENAS",
    "HARDCORENAS_EXTENDED",
    "HARDCORENAS_LARGE",
    "SPACES",
    "ArchChoice",
    "BlockGeometry",
    "BlockOption",
    "SearchSpace",
    "SearchSpaceError",
    "StageSpec",
    "get_space",
]

_ACT_CODE = {"relu": "re", "relu6": "r6", "hard_swish": "hs", "swish": "sw"}


class SearchSpaceError(ValueError):
    """A resolution, choice or architecture that does not belong to the search space."""


@dataclass(frozen=True)
class BlockOption:
    """One per-block option: expansion ratio, depthwise kernel, squeeze-excite ratio (0 = off)."""

    exp_ratio: float
    kernel: int
    se_ratio: float

    def __str__(self) -> str:
        se = "se" if self.se_ratio else "nose"
        return f"e{format_number(self.exp_ratio)}_k{self.kernel}_{se}"


@dataclass(frozen=True)
class StageSpec:
    """One searchable stage: output channels, the first block's stride and the activation."""

    out_chs: int
    stride: int
    act: str  # timm name: relu or hard_swish


@dataclass(frozen=True)
class BlockGeometry:
    """Where a block sits: channels, stride, input resolution and activation."""

    in_chs: int
    out_chs: int
    stride: int
    resolution: int
    act: str


@dataclass(frozen=True)
class ArchChoice:
    """A discrete architecture of the space: per stage the option index of each kept block.

    ``options[s]`` has one entry per executed block of searchable stage ``s`` (its length is the depth).
    """

    options: tuple[tuple[int, ...], ...]

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(len(stage) for stage in self.options)


@dataclass(frozen=True)
class SearchSpace:
    """The HardCoRe-NAS macro structure and per-block options (defaults: the published space)."""

    name: str = "hardcorenas"
    stem_chs: int = 32
    stem_act: str = "hard_swish"
    first_chs: int = 16  # the fixed ds block
    first_act: str = "relu"
    stages: tuple[StageSpec, ...] = (
        StageSpec(24, 2, "relu"),
        StageSpec(40, 2, "relu"),
        StageSpec(80, 2, "hard_swish"),
        StageSpec(112, 1, "hard_swish"),
        StageSpec(192, 2, "hard_swish"),
    )
    last_chs: int = 960
    last_act: str = "hard_swish"
    num_features: int = 1280
    num_classes: int = 1000
    exp_ratios: tuple[float, ...] = (3.0, 4.0, 6.0)
    kernels: tuple[int, ...] = (3, 5)
    se_ratios: tuple[float, ...] = (0.0, 0.25)
    depths: tuple[int, ...] = (2, 3, 4)
    options: tuple[BlockOption, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # spec option order: expansion-major, then kernel, SE fastest
        opts = tuple(BlockOption(e, k, s) for e, k, s in product(self.exp_ratios, self.kernels, self.se_ratios))
        object.__setattr__(self, "options", opts)

    # -- sizes ---------------------------------------------------------------------------------------
    @property
    def max_depth(self) -> int:
        return max(self.depths)

    @property
    def num_stages(self) -> int:
        return len(self.stages)

    @property
    def num_blocks(self) -> int:
        """Searchable block positions (stages x max depth): 20 for the default space."""
        return self.num_stages * self.max_depth

    @property
    def num_options(self) -> int:
        return len(self.options)

    def with_classes(self, num_classes: int) -> SearchSpace:
        """The same space with another classifier width."""
        return _replace(self, num_classes=num_classes)

    # -- geometry ------------------------------------------------------------------------------------
    def check_resolution(self, resolution: int) -> int:
        """Return the resolution if the space accepts it (a positive multiple of 32)."""
        if not isinstance(resolution, int) or isinstance(resolution, bool) or resolution < 32 or resolution % 32:
            raise SearchSpaceError(f"resolution: expected a positive multiple of 32, got {resolution!r}")
        return resolution

    def geometry(self, resolution: int = 224) -> list[list[BlockGeometry]]:
        """Per searchable stage, the geometry of each of its ``max_depth`` block positions."""
        res = self.check_resolution(resolution) // 2  # after the stem
        in_chs = self.first_chs
        out: list[list[BlockGeometry]] = []
        for stage in self.stages:
            blocks = []
            for j in range(self.max_depth):
                stride = stage.stride if j == 0 else 1
                blocks.append(BlockGeometry(in_chs, stage.out_chs, stride, res, stage.act))
                res //= stride
                in_chs = stage.out_chs
            out.append(blocks)
        return out

    def final_resolution(self, resolution: int = 224) -> int:
        """Spatial size entering the last conv and the head."""
        res = self.check_resolution(resolution) // 2
        for stage in self.stages:
            res //= stage.stride
        return res

    def block_key(self, stage: int, block: int, option: int, resolution: int = 224) -> BlockKey:
        """The key measuring option ``option`` at block ``block`` of searchable stage ``stage``."""
        geo = self.geometry(resolution)[stage][block]
        opt = self.options[option]
        return BlockKey(
            type="ir",
            in_chs=geo.in_chs,
            out_chs=geo.out_chs,
            stride=geo.stride,
            resolution=geo.resolution,
            exp_ratio=opt.exp_ratio,
            kernel=opt.kernel,
            se_ratio=opt.se_ratio,
            act=geo.act,
        )

    def block_keys_table(self, resolution: int = 224) -> list[list[list[BlockKey]]]:
        """``[stage][block][option] -> key`` for every searchable position."""
        return [
            [[self.block_key(s, j, i, resolution) for i in range(self.num_options)] for j in range(self.max_depth)]
            for s in range(self.num_stages)
        ]

    def searchable_keys(self, resolution: int = 224) -> list[BlockKey]:
        """Distinct searchable block measurements, in stage/block/option order (120 for the default)."""
        seen: dict[BlockKey, None] = {}
        for stage in self.block_keys_table(resolution):
            for block in stage:
                for key in block:
                    seen.setdefault(key, None)
        return list(seen)

    def fixed_keys(self, resolution: int = 224) -> dict[str, BlockKey]:
        """The always-present parts: stem, first (ds) stage, last conv and head."""
        res = self.check_resolution(resolution)
        last_res = self.final_resolution(res)
        return {
            "stem": BlockKey("stem", 3, self.stem_chs, 2, res, kernel=3, act=self.stem_act),
            "first": BlockKey("ds", self.stem_chs, self.first_chs, 1, res // 2, kernel=3, act=self.first_act),
            "last": BlockKey("cn", self.stages[-1].out_chs, self.last_chs, 1, last_res, kernel=1, act=self.last_act),
            "head": BlockKey(
                "head",
                self.last_chs,
                self.num_features,
                1,
                last_res,
                kernel=1,
                act=self.last_act,
                num_classes=self.num_classes,
            ),
        }

    def all_keys(self, resolution: int = 224) -> list[BlockKey]:
        """Every distinct measurement a latency table of this space needs."""
        return list(self.fixed_keys(resolution).values()) + self.searchable_keys(resolution)

    # -- choices <-> architecture strings ---------------------------------------------------------------
    def _block_def(self, geo: BlockGeometry, opt: BlockOption) -> BlockDef:
        return BlockDef(
            type="ir",
            repeats=1,
            kernel=(opt.kernel,),
            stride=geo.stride,
            exp_ratio=opt.exp_ratio,
            out_chs=geo.out_chs,
            se_ratio=opt.se_ratio or None,
            act=None if geo.act == "hard_swish" else _ACT_CODE[geo.act],
        )

    def check_choice(self, choice: ArchChoice) -> None:
        """Raise :class:`SearchSpaceError` unless every stage has an allowed depth and valid options."""
        if len(choice.options) != self.num_stages:
            raise SearchSpaceError(f"expected {self.num_stages} searchable stages, got {len(choice.options)}")
        for s, stage in enumerate(choice.options):
            if len(stage) not in self.depths:
                raise SearchSpaceError(f"stage {s + 1}: depth {len(stage)} not in {self.depths}")
            for j, idx in enumerate(stage):
                if not 0 <= idx < self.num_options:
                    raise SearchSpaceError(f"stage {s + 1}, block {j}: option {idx} not in 0..{self.num_options - 1}")

    def arch_from_choice(self, choice: ArchChoice) -> ArchDef:
        """The architecture string (as :class:`ArchDef`) of a discrete choice."""
        self.check_choice(choice)
        geometry = self.geometry(224)
        first = BlockDef("ds", 1, (3,), 1, 1.0, self.first_chs, None, _act_code_or_none(self.first_act))
        stages: list[tuple[BlockDef, ...]] = [(first,)]
        for s, stage in enumerate(choice.options):
            stages.append(tuple(self._block_def(geometry[s][j], self.options[i]) for j, i in enumerate(stage)))
        last = BlockDef("cn", 1, (1,), 1, None, self.last_chs, None, _act_code_or_none(self.last_act))
        stages.append((last,))
        return ArchDef(tuple(stages))

    def choice_from_arch(self, arch: ArchDef | str) -> ArchChoice:
        """Inverse of :meth:`arch_from_choice`; raises if the network is not in this space."""
        if isinstance(arch, str):
            arch = parse_arch(arch)
        expected = self.num_stages + 2
        if len(arch) != expected:
            raise SearchSpaceError(
                f"expected {expected} stages (first, {self.num_stages} searchable, last), got {len(arch)}"
            )
        geometry = self.geometry(224)
        index = {opt: i for i, opt in enumerate(self.options)}
        options: list[tuple[int, ...]] = []
        for s, stage in enumerate(arch.stages[1:-1]):
            if len(stage) not in self.depths:
                raise SearchSpaceError(f"stage {s + 1}: depth {len(stage)} not in {self.depths}")
            chosen = []
            for j, block in enumerate(stage):
                if block.type != "ir" or block.repeats != 1 or len(block.kernel) != 1:
                    raise SearchSpaceError(f"stage {s + 1}, block {j}: {block} is not a single 'ir' block")
                opt = BlockOption(float(block.exp_ratio or 0), block.kernel[0], float(block.se_ratio or 0.0))
                if opt not in index:
                    raise SearchSpaceError(f"stage {s + 1}, block {j}: option {opt} is not in the space")
                if self._block_def(geometry[s][j], opt) != block:
                    raise SearchSpaceError(
                        f"stage {s + 1}, block {j}: {block} does not match the space's "
                        f"{self._block_def(geometry[s][j], opt)}"
                    )
                chosen.append(index[opt])
            options.append(tuple(chosen))
        choice = ArchChoice(tuple(options))
        if self.arch_from_choice(choice) != arch:
            raise SearchSpaceError("the first or last stage does not match the space")
        return choice

    def heaviest(self) -> ArchChoice:
        """Every block at the last option (largest expansion, kernel, SE on), maximum depth."""
        return ArchChoice(tuple((self.num_options - 1,) * self.max_depth for _ in self.stages))

    def lightest(self) -> ArchChoice:
        """Every block at option 0, minimum depth."""
        return ArchChoice(tuple((0,) * min(self.depths) for _ in self.stages))

    def random_choice(self, rng: random.Random) -> ArchChoice:
        """A network drawn uniformly: per stage a depth, then an option per block (in that order from ``rng``)."""
        return ArchChoice(tuple(
            tuple(rng.randrange(self.num_options) for _ in range(rng.choice(self.depths))) for _ in self.stages
        ))


def _act_code_or_none(act: str) -> str | None:
    return None if act == "hard_swish" else _ACT_CODE[act]


def _replace(space: SearchSpace, **changes: object) -> SearchSpace:
    from dataclasses import fields, replace

    init_fields = {f.name for f in fields(space) if f.init}
    assert set(changes) <= init_fields
    return replace(space, **changes)  # type: ignore[arg-type]


#: The default space of the paper and the published A-F networks.
HARDCORENAS = SearchSpace()
#: Expansion set {2, 2.5, 3, 4, 6}: 20 options per block (``--reduced_exp_ratio False``).
HARDCORENAS_EXTENDED = SearchSpace(name="hardcorenas-extended", exp_ratios=(2.0, 2.5, 3.0, 4.0, 6.0))
#: The x1.2 "large" variant (``mobilenasnet_large``).
HARDCORENAS_LARGE = SearchSpace(
    name="hardcorenas-large",
    stem_chs=40,
    first_chs=24,
    stages=(
        StageSpec(32, 2, "relu"),
        StageSpec(48, 2, "relu"),
        StageSpec(96, 2, "hard_swish"),
        StageSpec(136, 1, "hard_swish"),
        StageSpec(232, 2, "hard_swish"),
    ),
    last_chs=1152,
)
SPACES: dict[str, SearchSpace] = {s.name: s for s in (HARDCORENAS, HARDCORENAS_EXTENDED, HARDCORENAS_LARGE)}


def get_space(name: str) -> SearchSpace:
    """Look a space up by name, with a clear error listing the known ones."""
    try:
        return SPACES[name]
    except KeyError:
        raise SearchSpaceError(f"space: unknown search space {name!r}, expected one of {sorted(SPACES)}") from None
