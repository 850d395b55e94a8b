"""The 10-11 October 2025 episode and the calm day: the model against public figures.

:data:`OCT2025_BANDS` states, for each observed quantity, the public figure and the
band the ``oct2025`` scenario must reach (docs/model.md section 8 explains each
band). :func:`check_episode` runs the scenario and its calm day (the same state with
no trigger jump) on common paths and reports, per target, the median, the share of
paths inside the band, and the share of paths inside *every* band at once.

``python -m analysis.episode`` prints the table; ``--write-docs`` rewrites the
calibration table of docs/model.md from a fresh run.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = ["CALM_LIMIT_USD", "OCT2025_BANDS", "Band", "EpisodeCheck", "check_episode",
           "markdown_table"]


class Band(NamedTuple):
    label: str
    observed: str
    low: float
    high: float
    unit: str  # "USD bn" or "%" or "share"


OCT2025_BANDS: dict[str, Band] = {
    "liquidations": Band("perp liquidations, 24 h", "~$19 bn reported (a lower bound)",
                         10e9, 45e9, "USD bn"),
    "long_share": Band("long share of liquidations", "85-90 %", 0.80, 1.0, "share"),
    "drawdown_btc": Band("BTC intraday fall", "~13 % (122k -> 106k)", 0.08, 0.20, "%"),
    "drawdown_alt": Band("altcoin intraday fall", "~47 % on average", 0.30, 0.60, "%"),
    "drawdown_eq": Band("equity (AI/tech) fall", "Nasdaq -3.6 %, S&P -2.7 %", 0.015, 0.06, "%"),
}
CALM_LIMIT_USD = 1.5e9
"""The calm day (the Oct-2025 state with no trigger jump) must liquidate a median under
$1.5 bn; ordinary days liquidate $0.3-1 bn."""


@dataclass(frozen=True)
class EpisodeCheck:
    medians: dict[str, float]  # target -> median over paths (oct2025)
    inside: dict[str, float]  # target -> share of paths inside its band
    inside_all: float  # share of paths inside every band at once
    calm_median_usd: float  # median liquidations on the calm day
    calm_q95_usd: float
    n_paths: int


def _per_path(paths: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    liq = paths["liquidated_long"] + paths["liquidated_short"]
    return {
        "liquidations": liq,
        "long_share": np.where(liq > 0, paths["liquidated_long"] / np.where(liq > 0, liq, 1), 0),
        "drawdown_btc": paths["drawdown_btc"],
        "drawdown_alt": paths["drawdown_alt"],
        "drawdown_eq": paths["drawdown_eq"],
    }


def check_episode(n_paths: int = 2048, seed: int = 0, overrides: dict | None = None,
                  dtype: str = "float32") -> EpisodeCheck:
    """Run ``oct2025`` (plus ``overrides``) and its calm day on the same paths."""
    import jax

    from kernels import simulate_block, stack_params
    from kernels.params import oct2025

    episode = oct2025()._replace(**(overrides or {}))
    calm = episode._replace(jump_btc=0.0, jump_alt=0.0, jump_eq=0.0)
    res = simulate_block(stack_params([episode, calm]), key=jax.random.key(seed),
                         n_paths=n_paths, dtype=dtype, return_paths=True)
    day = _per_path({k: np.asarray(v[0], dtype=np.float64) for k, v in res.paths.items()})
    calm_liq = np.asarray(res.paths["liquidated_long"][1] + res.paths["liquidated_short"][1],
                          dtype=np.float64)
    flags = {k: (day[k] >= b.low) & (day[k] <= b.high) for k, b in OCT2025_BANDS.items()}
    return EpisodeCheck(
        medians={k: float(np.median(day[k])) for k in OCT2025_BANDS},
        inside={k: float(v.mean()) for k, v in flags.items()},
        inside_all=float(np.mean(np.all(list(flags.values()), axis=0))),
        calm_median_usd=float(np.median(calm_liq)),
        calm_q95_usd=float(np.quantile(calm_liq, 0.95)),
        n_paths=n_paths,
    )


def _fmt(value: float, unit: str) -> str:
    if unit == "USD bn":
        return f"${value / 1e9:.1f} bn"
    if unit == "%":
        return f"{100 * value:.1f} %"
    return f"{value:.2f}"


def markdown_table(check: EpisodeCheck) -> str:
    """The calibration table (Markdown) of a :class:`EpisodeCheck`."""
    lines = ["| 10-11 Oct 2025 | public figure | band | `oct2025`, median | paths in band |",
             "|---|---|---|---|---|"]
    for k, b in OCT2025_BANDS.items():
        band = f"{_fmt(b.low, b.unit)} - {_fmt(b.high, b.unit)}"
        lines.append(f"| {b.label} | {b.observed} | {band} | "
                     f"{_fmt(check.medians[k], b.unit)} | {100 * check.inside[k]:.1f} % |")
    lines.append(f"| **all five at once** | | | | **{100 * check.inside_all:.1f} %** |")
    lines.append(f"| calm day (no trigger): liquidations | $0.3-1 bn on ordinary days | "
                 f"< {_fmt(CALM_LIMIT_USD, 'USD bn')} | {_fmt(check.calm_median_usd, 'USD bn')} "
                 f"(q95 {_fmt(check.calm_q95_usd, 'USD bn')}) | |")
    return "\n".join(lines) + (f"\n\n({check.n_paths} paths, seed 0, float32; "
                               "`python -m analysis.episode --write-docs` regenerates it.)\n")


START, END = "<!-- calibration-table -->", "<!-- /calibration-table -->"


def write_docs(table: str, doc: Path) -> None:
    """Replace the calibration table between its markers in ``doc``."""
    text = doc.read_text()
    i, j = text.index(START), text.index(END)
    doc.write_text(text[: i + len(START)] + "\n\n" + table + "\n" + text[j:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=2048)
    parser.add_argument("--write-docs", action="store_true",
                        help="rewrite the calibration table of docs/model.md")
    args = parser.parse_args(argv)
    table = markdown_table(check_episode(args.paths))
    print(table)
    if args.write_docs:
        write_docs(table, Path(__file__).resolve().parent.parent / "docs" / "model.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
