"""Two CPU processes under torchrun (gloo) train the same run; ranks agree, and match one process."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from csnet.profiles import run_config

RANK_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import torch
    torch.set_num_threads(1)
    from csnet.profiles import RunConfig
    from csnet.store import get_or_train
    cfg = RunConfig.from_dict(json.loads(os.environ["RUN_CONFIG"]))
    run = get_or_train(cfg, progress=False)
    weights = {"model." + k: v for k, v in run.model.state_dict().items()}
    weights.update({"image_encoder." + k: v for k, v in run.image_encoder.state_dict().items()})
    torch.save(weights, os.path.join(sys.argv[1], f"rank{os.environ.get('RANK', 'single')}.pt"))
    print("world", run.metrics["world_size"])
""")


@pytest.mark.slow
def test_two_process_ddp_ranks_agree_and_match_a_single_process(tmp_path):
    cfg = run_config("smoke", fusion="hard_select", text_encoder="onehot", steps=3, warmup_steps=1,
                     patch_size=16, batch_size=4, checkpoint_every=2, grad_clip=None, model={"dim": 8, "heads": (1, 1, 1, 1)})
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1", RUN_CONFIG=json.dumps(cfg.to_dict()),
               CSNET_RUNS=str(tmp_path / "ddp"))
    env.pop("WORLD_SIZE", None)
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
         str(tmp_path)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rank0, rank1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
    metrics = json.loads(next((tmp_path / "ddp").glob("*/metrics.json")).read_text())
    assert metrics["world_size"] == 2 and metrics["steps_done"] == 3

    single_env = dict(env, CSNET_RUNS=str(tmp_path / "single"))
    subprocess.run([sys.executable, str(script), str(tmp_path)], env=single_env, check=True, timeout=600)
    single = torch.load(tmp_path / "ranksingle.pt")
    # each rank takes half of every global batch: the restoration network's update is the
    # single-process one up to float rounding (the image encoder's batch norm sees per-rank batches)
    for name in (n for n in rank0 if n.startswith("model.")):
        torch.testing.assert_close(rank0[name], single[name], rtol=1e-3, atol=1e-4, msg=name)
