"""The figures of the studies, one module per study (``table1``, ``sensitivity``, ``fusion``,
``recognition``). Each function takes the tables its study computes and returns a matplotlib figure
drawn in :mod:`analysis.style` (display names, fixed colours per mechanism and task, paper widths, no
font size of its own); the notebook saves it with :meth:`analysis.outputs.OutputDir.figure`.
Error bars say in the figure what they are (:func:`analysis.style.bars_note`)."""
