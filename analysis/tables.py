"""How a results table is shown in a paper: LaTeX (booktabs, a ``table`` float with caption and label)
and Markdown, both rendered from the numeric table by pandas' Styler rules here.

- numbers stay numbers until shown: PSNR columns with 2 decimals, SSIM with 3, p-values with 2
  significant digits or "< 0.001", counts as integers, other floats as the caller's ``float_format``
  (default, and any "{:.Ng}": N significant digits of the column's largest value, the same decimals on
  every row); numeric columns right-aligned;
- a metric with a ``<metric>_std`` column (or ``<metric>_mean`` / ``<metric>_std``) is shown as one
  column "mean ± std" (just the mean where the std is missing, e.g. one seed);
- the best value of each column the caller declares higher- or lower-is-better is bold, computed
  from the numbers (ties all bold);
- text is escaped for LaTeX and Greek letters and symbols go to math mode (κ → ``$\\kappa$``).

The CSV copy of a table (written by :class:`analysis.outputs.OutputDir`) keeps every digit; these
renderings are for reading only.
"""
from __future__ import annotations

import math
import re
from typing import Callable, Sequence

import numpy as np
import pandas as pd

FloatFormat = str | Callable[[float], str] | None

# Tables longer than this are data, not paper tables: written as CSV only.
LONG_TABLE_ROWS = 60

_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                   "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
# Symbols pdflatex's default input encoding rejects or prints wrongly, in math mode.
_LATEX_SYMBOLS = {
    "α": r"$\alpha$", "β": r"$\beta$", "γ": r"$\gamma$", "δ": r"$\delta$", "ε": r"$\varepsilon$",
    "κ": r"$\kappa$", "λ": r"$\lambda$", "μ": r"$\mu$", "ρ": r"$\rho$", "σ": r"$\sigma$", "τ": r"$\tau$",
    "ω": r"$\omega$", "Δ": r"$\Delta$", "Ĉ": r"$\hat{C}$", "±": r"$\pm$", "×": r"$\times$", "≥": r"$\geq$",
    "≤": r"$\leq$", "≈": r"$\approx$", "→": r"$\rightarrow$", "−": r"$-$", "∩": r"$\cap$", "·": r"$\cdot$",
    "<": r"$<$", ">": r"$>$", "|": r"$|$", "…": r"\ldots{}", "—": "---", "–": "--", "²": r"$^2$", "★": r"$\star$",
}

_P_VALUE = re.compile(r"(^|_)p(_value|_holm|_adj)?($|_)|^p_|p_value|p_holm")
_COUNT = re.compile(r"(^|_)(n|k|count|counts|seeds|n_seeds|units|channels|tasks|images|classes|draws|rows)($|_)")


def latex_text(text: str) -> str:
    """Plain text for LaTeX: specials escaped, Greek letters and symbols in math mode."""
    return "".join(_LATEX_SPECIALS.get(ch, _LATEX_SYMBOLS.get(ch, ch)) for ch in str(text))


def format_p(p: float) -> str:
    """A p-value: 2 significant digits, or "< 0.001"."""
    if p < 0.001:
        return "< 0.001"
    return f"{float(f'{p:.2g}'):g}" if p < 0.1 else f"{p:.2f}"


def _significant(values: pd.Series, digits: int) -> Callable[[float], str]:
    """``digits`` significant digits for the column's largest |value|, the same decimals on every row
    (so that 1.10 and 1.00 line up instead of printing as 1.1 and 1)."""
    finite = np.abs(pd.to_numeric(values, errors="coerce").to_numpy(dtype=float))
    finite = finite[np.isfinite(finite) & (finite > 0)]
    top = float(finite.max()) if finite.size else 1.0
    decimals = int(min(6, max(0, digits - 1 - math.floor(math.log10(top)))))
    return lambda v: f"{v:.{decimals}f}"


def _generic(float_format: FloatFormat, values: pd.Series | None = None) -> Callable[[float], str]:
    """The formatter of a float column no rule covers: ``float_format``; a significant-digits format
    ("{:.3g}", and the default of 3) is applied column-wise by :func:`_significant`."""
    match = re.fullmatch(r"\{:\.(\d+)g\}|%\.(\d+)g", float_format) if isinstance(float_format, str) else None
    if float_format is None or match:
        digits = int(next(g for g in match.groups() if g)) if match else 3
        return _significant(values if values is not None else pd.Series(dtype=float), digits)
    if callable(float_format):
        return float_format
    if "{" in float_format:
        return float_format.format
    if "%" in float_format:
        return lambda v: float_format % v
    raise ValueError(f"float_format {float_format!r}: use a format like '{{:.2f}}' or '%.2f', or a callable")


def column_formatter(name: str, values: pd.Series, float_format: FloatFormat = None) -> Callable[[float], str]:
    """How the numbers of column ``name`` are shown (see the module docstring)."""
    key = str(name).lower()
    finite = pd.to_numeric(values, errors="coerce").dropna()
    integral = bool(len(finite)) and bool(np.all(np.isclose(finite, np.round(finite))))
    if _P_VALUE.search(key):
        return format_p
    if pd.api.types.is_integer_dtype(values) or (integral and _COUNT.search(key)):
        return lambda v: f"{int(round(v))}"
    if "ssim" in key:
        return lambda v: f"{v:.3f}"
    if "psnr" in key or key.endswith("_db"):
        return lambda v: f"{v:.2f}"
    return _generic(float_format, values)


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _show(value, fmt: Callable[[float], str]) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if _is_number(value):
        return fmt(float(value)) if np.isfinite(value) else ""
    return str(value)


def display_frame(df: pd.DataFrame, *, float_format: FloatFormat = None, higher_is_better: Sequence[str] = (),
                  lower_is_better: Sequence[str] = (), best_rows: Sequence[bool] | None = None
                  ) -> tuple[pd.DataFrame, pd.DataFrame, list[bool]]:
    """``(shown, bold, numeric)``: the table as display strings (mean ± std merged), a same-shaped
    boolean frame of the cells to set in bold, and which shown columns are numeric (right-aligned).

    ``best_rows`` limits the rows that compete for "best" (e.g. only measured rows, not published ones)."""
    for column in (*higher_is_better, *lower_is_better):
        if column not in df.columns:
            raise ValueError(f"best-of column {column!r} is not in the table; its columns are {list(df.columns)}")
    columns = list(df.columns)
    merged: dict[str, str] = {}  # shown column -> std column
    for column in columns:
        base = column[:-5] if str(column).endswith("_mean") else column
        std = f"{base}_std"
        if std in df.columns and column != std and pd.api.types.is_numeric_dtype(df[column]) \
                and pd.api.types.is_numeric_dtype(df[std]):
            merged[column] = std
    dropped = set(merged.values())
    shown_columns = [c for c in columns if c not in dropped]
    compete = np.ones(len(df), dtype=bool) if best_rows is None else np.asarray(best_rows, dtype=bool)
    if len(compete) != len(df):
        raise ValueError(f"best_rows has {len(compete)} entries for a table of {len(df)} rows")

    shown, bold, numeric = {}, {}, []
    for column in shown_columns:
        values = df[column]
        is_numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        numeric.append(is_numeric)
        fmt = column_formatter(column, values, float_format) if is_numeric else str
        if column in merged:
            std_fmt = fmt
            cells = []
            for mean, std in zip(values, df[merged[column]]):
                text = _show(mean, fmt)
                if text and _is_number(std) and np.isfinite(std):
                    text = f"{text} ± {_show(std, std_fmt)}"
                cells.append(text)
            name = column[:-5] if str(column).endswith("_mean") else column
        else:
            cells = [_show(v, fmt) if is_numeric else ("" if _missing(v) else str(v)) for v in values]
            name = column
        mask = np.zeros(len(df), dtype=bool)
        if column in higher_is_better or column in lower_is_better:
            numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
            candidates = np.where(compete & np.isfinite(numbers), numbers, np.nan)
            if np.isfinite(candidates).any():
                best = np.nanmax(candidates) if column in higher_is_better else np.nanmin(candidates)
                # ties as shown: equal after rounding to the displayed precision
                mask = np.array([c != "" and ok and _show(v, fmt) == _show(best, fmt)
                                 for c, ok, v in zip(cells, compete, numbers)])
        shown[name] = cells
        bold[name] = mask
    return (pd.DataFrame(shown, index=df.index), pd.DataFrame(bold, index=df.index), numeric)


def _missing(value) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def to_latex(shown: pd.DataFrame, bold: pd.DataFrame, numeric: Sequence[bool], *, caption: str, label: str,
             index: bool = False) -> str:
    """A booktabs ``table`` float (centred, caption above, label) through pandas' Styler."""
    align = ("l" if index else "") + "".join("r" if n else "l" for n in numeric)
    styler = shown.style.format(latex_text).format_index(latex_text, axis=1)
    styler = styler.format_index(latex_text, axis=0)
    styler = styler.apply(lambda _: np.where(bold.to_numpy(), "font-weight: bold;", ""), axis=None)
    if not index:
        styler = styler.hide(axis="index")
    return styler.to_latex(environment="table", position="htbp", position_float="centering", hrules=True,
                           caption=latex_text(caption), label=label, column_format=align, convert_css=True)


def to_markdown(shown: pd.DataFrame, bold: pd.DataFrame, numeric: Sequence[bool], *, caption: str | None,
                index: bool = False) -> str:
    """A pipe table (numbers right-aligned, best in ``**bold**``) with its caption below."""
    cells = shown.copy()
    for column in cells.columns:
        cells[column] = [f"**{c}**" if b else c for c, b in zip(cells[column], bold[column])]
    align = (["left"] if index else []) + ["right" if n else "left" for n in numeric]
    markdown = cells.to_markdown(index=index, disable_numparse=True, colalign=align)
    return f"{markdown}\n\nTable: {caption}\n" if caption else markdown + "\n"
