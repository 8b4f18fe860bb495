"""Every ``.tex`` table the suite writes compiles with a real LaTeX engine (pdflatex) in a minimal
document: tables shaped like each study's, written through :meth:`analysis.outputs.OutputDir.table`
(fast), and every ``.tex`` of the notebooks executed at the smoke profile (slow). Without pdflatex the
tests skip and say how to install it; CI (``.ci/run``) installs it."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import table1
from analysis.outputs import OutputDir

PREAMBLE = r"""\documentclass{article}
\usepackage[T1]{fontenc}
\usepackage{booktabs}
\usepackage[margin=1cm,landscape]{geometry}
\begin{document}
"""


def pdflatex() -> str:
    engine = shutil.which("pdflatex")
    if engine is None:
        pytest.skip("pdflatex not found: the LaTeX tables were not compiled. Install TeX Live to check them "
                    "(Debian/Ubuntu: apt-get install texlive-latex-base texlive-latex-recommended)")
    return engine


def compile_tables(tex_files: list[Path], workdir: Path) -> None:
    """Compile each table in its own minimal document; fail naming the table and LaTeX's error."""
    engine = pdflatex()
    assert tex_files, "no .tex table to compile"
    for n, tex in enumerate(tex_files):
        document = workdir / f"doc{n}.tex"
        document.write_text(PREAMBLE + tex.read_text(encoding="utf-8") + "\n\\end{document}\n", encoding="utf-8")
        done = subprocess.run([engine, "-interaction=nonstopmode", "-halt-on-error", document.name], cwd=workdir,
                              capture_output=True, text=True, timeout=120)
        log = done.stdout[-3000:]
        assert done.returncode == 0, f"{tex.name} does not compile:\n{log}"
        assert "Missing character" not in (workdir / f"doc{n}.log").read_text(errors="replace"), tex.name


def study_like_tables(out: OutputDir) -> list[Path]:
    """Tables with the columns, names and symbols of the notebooks' tables, through the real writer."""
    rng = np.random.default_rng(0)
    tasks = ["denoise_15", "denoise_25", "denoise_50", "derain", "dehaze"]
    rows = []
    for condition in table1.condition_order(["noise", "rain", "haze"]):
        row = {"channels": condition}
        for task in tasks:
            row.update({f"{task}_psnr": 30 + rng.random(), f"{task}_psnr_std": rng.random(),
                        f"{task}_ssim": rng.random(), f"{task}_ssim_std": 0.01 * rng.random()})
        row["n_seeds"] = 3
        rows.append(row)
    summary = pd.DataFrame(rows)
    written = [out.table(summary, "table1_summary", caption="Table I reproduced (hard_select, smoke): PSNR / SSIM",
                         higher_is_better=[f"{t}_psnr" for t in tasks])["tex"]]
    comparisons = pd.DataFrame({"a": ["channels for noise"] * 3, "b": ["random sets of the same size"] * 3,
                                "task": tasks[:3], "mean_diff": [1.234, -0.5, 0.01], "lo": [0.2, -1, -0.3],
                                "hi": [2.0, 0.1, 0.4], "p_value": [0.0004, 0.31, 0.049], "p_holm": [0.0012, 0.62, 0.098],
                                "n": [68, 68, 68]})
    written.append(out.table(comparisons, "paired_comparisons", caption="Paired differences, 95% CI & p (Holm)")["tex"])
    sweeps = pd.DataFrame({"sweep": ["omega", "kappa", "estimator"], "value": ["0.5", "2", "gumbel_softmax"],
                           "variant": ["ω=0.5", "κ=2", "β=1, γ=0.1"], "psnr": [28.1, 27.9, 28.3],
                           "psnr_lo": [27.0, 26.8, 27.1], "psnr_hi": [29.0, 29.1, 29.2], "ssim": [0.81, 0.8, 0.82]})
    written.append(out.table(sweeps, "sweeps", caption="Sweeps of ω, κ and the estimator (σ = 25)",
                             higher_is_better=["psnr", "ssim"])["tex"])
    recognisers = pd.DataFrame({
        "recogniser": ["text anchors: open_clip ViT-B-32 (random init — no weights offline)",
                       "frequency cues (AdaIR-style)", "implicit prompts (PromptIR-style) #1 & 100% ~ x^2"],
        "accuracy": [0.51234, 0.9, 0.75], "lo": [0.4, 0.85, 0.7], "hi": [0.6, 0.95, 0.8], "n": [120, 120, 120]})
    written.append(out.table(recognisers, "recognisers", caption="Recognisers: K/κĈ, Δ accuracy ≥ chance",
                             higher_is_better=["accuracy"])["tex"])
    indexed = pd.DataFrame({"ρ (Spearman)": [0.5, -0.25]}, index=["ablation vs gradient", "skip_fusion_level1"])
    written.append(out.table(indexed, "indexed", index=True)["tex"])
    return written


def test_study_tables_compile(tmp_path):
    pdflatex()
    compile_tables(study_like_tables(OutputDir(tmp_path / "tables")), tmp_path)


def test_compile_fails_on_raw_unicode(tmp_path):
    """The check can fail: a raw symbol pdflatex cannot typeset is caught."""
    pdflatex()
    bad = tmp_path / "bad.tex"
    bad.write_text("\\begin{tabular}{l}\\toprule κ → ★ \\\\ \\bottomrule\\end{tabular}\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="bad.tex"):
        compile_tables([bad], tmp_path)


@pytest.mark.slow
def test_every_table_the_notebooks_write_compiles(smoke_suite, tmp_path):
    pdflatex()
    tex_files = sorted(smoke_suite.root.rglob("*.tex"))
    compile_tables(tex_files, tmp_path)
