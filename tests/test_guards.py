"""The run guards (vitrepro.training.guards) as units; the end-to-end behaviour is in
test_training_chain.py."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from vitrepro.training.guards import StopOnNonFiniteLoss, TrainingDivergedError


def test_non_finite_loss_guard_records_the_first_bad_step_without_a_step_tensor():
    # Flagged on the device from a Python step number: a step tensor made on a GPU every step
    # would be a blocking host-to-device copy, a host sync each step (pytorch/pytorch#120996).
    guard = StopOnNonFiniteLoss(check_every=1000)
    trainer = SimpleNamespace(global_step=0, checkpoint_callback=None)
    for step, loss in enumerate([1.0, 2.0, float("nan"), 3.0, float("inf")], start=1):
        trainer.global_step = step
        guard.on_train_batch_end(trainer, None, torch.tensor(loss))
    assert int(guard.first_bad_step) == 3 and bool(guard.flag)
    with pytest.raises(TrainingDivergedError, match="at step 3"):
        guard.on_save_checkpoint(trainer)
