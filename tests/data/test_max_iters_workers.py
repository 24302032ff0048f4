"""``Global.max_iters_per_epoch`` with DataLoader workers ends cleanly (issue 15, item 7): the sampler
yields only the batches that are used, so no epoch leaves workers behind and Paddle never logs
``DataLoader N workers exit unexpectedly``."""

from __future__ import annotations

import logging

from tests.conftest import run_tool, tiny_config, write_config


def test_capped_epochs_with_workers_leave_no_worker_behind(digits_dir, caplog):
    from ppcls.data import build_dataloader

    section = tiny_config(digits_dir, "/nonexistent")["DataLoader"]["Train"]
    section["loader"] = {"num_workers": 2, "use_shared_memory": True}
    loader = build_dataloader(section, "Train", 3, seed=7)
    loader.batch_sampler.max_batches = 2  # as the runner sets it for Global.max_iters_per_epoch=2
    assert len(loader) == 2
    with caplog.at_level(logging.WARNING):
        for epoch in range(3):
            loader.batch_sampler.set_epoch(epoch)
            it = iter(loader)
            assert sum(1 for _ in it) == 2  # the epoch ends by StopIteration, not by a break
            workers = list(getattr(it, "_workers", []))
            it._try_shutdown_all(5)
            assert workers and not any(w.is_alive() for w in workers)
    assert "exit unexpectedly" not in caplog.text


def test_train_with_max_iters_and_workers_logs_no_worker_exit(digits_dir, tmp_path):
    cfg = tiny_config(digits_dir, str(tmp_path / "out"), epochs=2, max_iters_per_epoch=2)
    for split in ("Train", "Eval"):
        cfg["DataLoader"][split]["loader"] = {"num_workers": 2, "use_shared_memory": True}
    proc = run_tool("train.py", "-c", write_config(cfg, str(tmp_path / "c.yaml")), timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "[Train][Epoch 2/2][Iter: 2/2]" in out
    assert "exit unexpectedly" not in out
