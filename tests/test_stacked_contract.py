"""The stacked engine's contract with its member trainers (MemberTrainer) holds for the Trainer, and the
old import paths of the stacked engine and model still give the same objects."""

from __future__ import annotations

import typing

import pytest

from lrdecay.trainer import Trainer, TrainConfig
from lrdecay.trainer.stacked import MemberTrainer


def _contract_names() -> set[str]:
    names = set(typing.get_type_hints(MemberTrainer))
    names |= {n for n, v in vars(MemberTrainer).items() if not n.startswith("_") and (callable(v) or isinstance(v, property))}
    return names


@pytest.mark.usefixtures("one_torch_thread")
def test_a_trainer_provides_every_name_of_the_member_trainer_contract():
    names = _contract_names()
    assert {"config", "epoch", "batch", "step_count", "epoch_time_done", "pred_buf", "close_epoch", "finish"} <= names
    t = Trainer(TrainConfig(preset="toy", n_train=40, n_test=0, width=4, depth=1, epochs=1, batch_size=20,
                            device="cpu", progress=False, plots=False))
    missing = sorted(n for n in names if not hasattr(t, n))
    assert not missing, f"Trainer lacks {missing} of MemberTrainer"
    assert t.resumed_from == 0 and t.epoch_time_done == 0.0
    # nothing the engine calls is private
    assert not [n for n in names if n.startswith("_")]


def test_the_old_import_paths_give_the_moved_objects():
    from lrdecay.sweep import stack_model, stack_train, tasks
    from lrdecay.trainer import stacked, stacked_model

    assert stack_train.StackedEngine is stacked.StackedEngine
    assert stack_train.execute_stacked is tasks.execute_stacked
    assert stack_model.StackedMLP is stacked_model.StackedMLP
    assert stack_model.stack_models is stacked_model.stack_models
