"""Print the calibration of the seed-level verdicts for the README: the share of 500 simulated studies
called "different" with no effect (3 seeds × 7 photos and 5 × 7) and with a 0.5 dB effect at 5 seeds.

Usage: python scripts/stats_calibration.py [--studies 500]
"""
from __future__ import annotations

import argparse

from analysis import calibration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=500, help="simulated studies per setting")
    args = parser.parse_args()
    print(f"simulated per-image tables: seed SD {calibration.SEED_SD} dB, image SD {calibration.IMAGE_SD} dB, "
          f"residual SD {calibration.RESIDUAL_SD} dB; {args.studies} studies each; α = 0.05, one comparison")
    for n_seeds, effect in ((3, 0.0), (5, 0.0), (5, 0.5)):
        for paired in (True, False):
            a, b = calibration.simulate(args.studies, n_seeds, 7, effect=effect, seed=n_seeds * 10 + int(effect * 10))
            rates = calibration.verdict_rates(a, b, paired=paired)
            what = "false-positive rate" if effect == 0 else "power"
            print(f"{n_seeds} seeds × 7 photos, effect {effect:.1f} dB, {'paired' if paired else 'Welch'} t over seeds: "
                  f"{what} (verdict 'different') {rates['different']:.1%}; equivalent {rates['equivalent']:.1%}; "
                  f"crossed-bootstrap 95% interval excludes 0 in {rates['interval_excludes_0']:.1%}")


if __name__ == "__main__":
    main()
