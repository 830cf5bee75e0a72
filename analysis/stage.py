"""What the rules have worked out about one table, handed from the rules to the result builders."""

from __future__ import annotations

import dataclasses
from functools import cached_property

import numpy as np
import pandas as pd

from analysis.calls import Calls
from analysis.crossval import HeldOut
from analysis.fragments import FragmentCalls
from analysis.logp import LogPCheck
from analysis.model import FittedModel, ModelFailure
from analysis.params import Parameters
from analysis.validate import PeakTable


@dataclasses.dataclass
class Stage:
    table: PeakTable
    frame: pd.DataFrame  # the table's rows, positions 0..n-1
    params: Parameters
    fragments: FragmentCalls
    members: np.ndarray  # valid rows that are not in-source fragments
    series: np.ndarray  # 1-based RT rank within the name (0 for non-members)
    anchor_index: np.ndarray  # the model's series index of each anchor
    design: np.ndarray
    model: FittedModel | ModelFailure
    calls: Calls | None  # None when no model could be fitted
    main: np.ndarray  # frame position of each row's main peak (−1: none)
    prefix_keys: np.ndarray
    lopo: list[HeldOut]
    lohgo: list[HeldOut]
    logp: LogPCheck
    oac_notes: dict[int, str]  # row number -> why its O-acetylation is inconsistent

    @property
    def fitted(self) -> bool:
        return self.calls is not None

    @property
    def n(self) -> int:
        return len(self.frame)

    @cached_property
    def anchor(self) -> np.ndarray:
        """MS/MS-confirmed valid rows."""
        return self.frame["anchor"].to_numpy(dtype=bool) & self.frame["valid"].to_numpy(dtype=bool)

    @cached_property
    def is_main(self) -> np.ndarray:
        return self.members & (self.main == np.arange(self.n))

    @cached_property
    def extra(self) -> np.ndarray:
        return self.members & (self.main >= 0) & ~self.is_main

    def component(self, name: str) -> float:
        """A calibrated variance component by name (0 when there is no model)."""
        return self.calls.component(name) if self.calls is not None else 0.0
