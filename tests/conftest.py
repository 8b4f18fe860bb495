"""Test-wide isolation: caches, run store and results go to a temporary folder, never the checkout."""
from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_storage(tmp_path_factory):
    root = tmp_path_factory.mktemp("csnet-storage")
    saved = {k: os.environ.get(k) for k in ("CSNET_CACHE", "CSNET_RUNS", "CSNET_RESULTS", "MPLBACKEND")}
    os.environ["CSNET_CACHE"] = str(root / "cache")
    os.environ["CSNET_RUNS"] = str(root / "runs")
    os.environ["CSNET_RESULTS"] = str(root / "results")
    os.environ["MPLBACKEND"] = "Agg"
    yield root
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def smoke_suite(_isolated_storage):
    """The whole notebook suite executed once at the smoke profile through the runner; the notebook
    tests read what it wrote (models land in the session's run store and are reused by later tests)."""
    from csnet import suite

    return suite.run_suite("smoke", results_root=_isolated_storage / "results", progress=False)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A two-step smoke `hard_select` run (one-hot text prompts, C = 8) in a store of its own module's."""
    import torch

    from csnet.profiles import run_config
    from csnet.store import get_or_train

    saved, threads = os.environ.get("CSNET_RUNS"), torch.get_num_threads()
    os.environ["CSNET_RUNS"] = str(tmp_path_factory.mktemp("runs"))
    torch.set_num_threads(1)
    try:
        cfg = run_config("smoke", fusion="hard_select", text_encoder="onehot", steps=2, warmup_steps=1,
                         patch_size=16, batch_size=2, model={"dim": 8, "heads": (1, 1, 1, 1)})
        yield get_or_train(cfg, progress=False)
    finally:
        torch.set_num_threads(threads)
        if saved is None:
            os.environ.pop("CSNET_RUNS", None)
        else:
            os.environ["CSNET_RUNS"] = saved


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test (2 cores shared with other jobs: one thread avoids oversubscription)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
