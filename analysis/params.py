"""Analysis parameters: defaults, types, ranges and validation."""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from typing import Any

from analysis.errors import ParameterError

ON_INVALID_ROWS = ("reject", "skip")


@dataclasses.dataclass(frozen=True)
class ParameterSpec:
    name: str
    kind: type
    default: Any
    low: float | None
    high: float | None
    unit: str
    help: str
    choices: tuple[str, ...] = ()
    low_inclusive: bool = True
    high_inclusive: bool = True

    def describe_range(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        lo = "[" if self.low_inclusive else "("
        hi = "]" if self.high_inclusive else ")"
        return f"{lo}{_fmt(self.low)}, {_fmt(self.high)}{hi}"


def _fmt(value: float | None) -> str:
    if value is None:
        return "∞"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _parameter(default: Any, **spec: Any) -> Any:
    """A field of `Parameters`: its default, and the rest of its ParameterSpec (range, unit, help)."""
    return dataclasses.field(default=default, metadata={"spec": spec})


@dataclasses.dataclass(frozen=True)
class Parameters:
    """Every tunable of one analysis, validated on construction; each field is its parameter's only definition."""

    fragment_window: float = _parameter(
        0.05,
        low=0.0,
        high=5.0,
        unit="min",
        help="Largest RT difference between an in-source fragment and its precursor.",
        low_inclusive=False,
    )
    fragment_min_precursor_ratio: float = _parameter(
        1.0,
        low=0.0,
        high=1000.0,
        unit="×",
        help="A precursor must have at least this many times the fragment's volume to absorb it.",
    )
    pi_level: float = _parameter(
        0.95,
        low=0.5,
        high=0.9999,
        unit="",
        help="Coverage of the prediction interval drawn around each predicted RT.",
    )
    alpha: float = _parameter(
        0.05,
        low=0.0,
        high=0.5,
        unit="",
        help="False discovery rate for outlier calls (Benjamini–Hochberg) and anchor screening.",
        low_inclusive=False,
    )
    min_anchors: int = _parameter(
        5,
        low=2,
        high=100_000,
        unit="anchors",
        help="Fewest usable anchors for which an RT model is fitted at all.",
    )
    oac_tolerance: float = _parameter(
        0.05,
        low=0.0,
        high=5.0,
        unit="min",
        help="How much earlier than its base an O-acetylated peak may elute before it is flagged.",
    )
    on_invalid_rows: str = _parameter(
        "reject",
        low=None,
        high=None,
        unit="",
        help="reject: analyse nothing until the file is fixed; skip: analyse the valid rows.",
        choices=ON_INVALID_ROWS,
    )
    max_rows: int = _parameter(
        1_000_000,
        low=1,
        high=10_000_000,
        unit="rows",
        help="Largest number of data rows accepted in one table.",
    )

    def __post_init__(self) -> None:
        problems = []
        for spec in PARAMETER_SPECS:
            value = getattr(self, spec.name)
            message = _check(spec, value)
            if message:
                problems.append(message)
        if problems:
            raise ParameterError("; ".join(problems))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> Parameters:
        """Build from user input (strings or JSON values); unknown names are an error."""
        values = dict(values or {})
        unknown = sorted(set(values) - set(SPECS_BY_NAME))
        if unknown:
            raise ParameterError(
                f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                f"known parameters: {', '.join(SPECS_BY_NAME)}"
            )
        converted = {name: _convert(SPECS_BY_NAME[name], raw) for name, raw in values.items()}
        return cls(**converted)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> Parameters:
        return dataclasses.replace(self, **changes)


def _specs() -> tuple[ParameterSpec, ...]:
    """The ParameterSpec of each field of `Parameters`, in field order (the fields hold the defaults)."""
    kinds = typing.get_type_hints(Parameters)
    return tuple(
        ParameterSpec(name=field.name, kind=kinds[field.name], default=field.default, **field.metadata["spec"])
        for field in dataclasses.fields(Parameters)
    )


PARAMETER_SPECS: tuple[ParameterSpec, ...] = _specs()
SPECS_BY_NAME = {spec.name: spec for spec in PARAMETER_SPECS}


def _convert(spec: ParameterSpec, raw: Any) -> Any:
    if spec.kind is str:
        if not isinstance(raw, str):
            raise ParameterError(f"{spec.name}: expected {spec.describe_range()}, got {raw!r}")
        return raw.strip().lower()
    if isinstance(raw, bool):
        raise ParameterError(f"{spec.name}: expected a number, got {raw!r}")
    if isinstance(raw, str):
        text = raw.strip()
        try:
            number = float(text)
        except ValueError:
            raise ParameterError(f"{spec.name}: {raw!r} is not a number") from None
    elif isinstance(raw, int | float):
        number = float(raw)
    else:
        raise ParameterError(f"{spec.name}: expected a number, got {raw!r}")
    if spec.kind is int:
        if not math.isfinite(number) or number != int(number):
            raise ParameterError(f"{spec.name}: expected a whole number, got {raw!r}")
        return int(number)
    return number


def _check(spec: ParameterSpec, value: Any) -> str | None:
    if spec.kind is str:
        if value not in spec.choices:
            return f"{spec.name}: expected {spec.describe_range()}, got {value!r}"
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{spec.name}: expected a number, got {value!r}"
    if spec.kind is int and not isinstance(value, int):
        return f"{spec.name}: expected a whole number, got {value!r}"
    if not math.isfinite(value):
        return f"{spec.name}: must be finite, got {value!r}"
    below = value < spec.low if spec.low_inclusive else value <= spec.low
    above = spec.high is not None and (value > spec.high if spec.high_inclusive else value >= spec.high)
    if below or above:
        unit = f" {spec.unit}" if spec.unit and spec.unit != "×" else ""
        return f"{spec.name}: {value!r}{unit} is outside the allowed range {spec.describe_range()}"
    return None
