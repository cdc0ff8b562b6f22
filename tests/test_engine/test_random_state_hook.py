"""RandomStateHook: generator states saved in checkpoints, restored on resume only, untouched by validation."""
import random
from types import SimpleNamespace

import numpy as np
import torch

from mmdiff.engine.hooks import RandomStateHook
from mmdiff.engine.hooks.random_state_hook import capture_random_state, restore_random_state


def draws() -> tuple:
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_restoring_a_captured_state_repeats_the_draws():
    torch.manual_seed(0)
    state = capture_random_state()
    first = draws()
    draws()
    restore_random_state(state)
    assert draws() == first
    # plain tensors and Python values: a weights_only load reads them
    assert isinstance(state['numpy']['state']['key'], torch.Tensor) and isinstance(state['torch'], torch.Tensor)


def test_the_state_is_restored_when_training_resumes_from_the_checkpoint():
    hook = RandomStateHook()
    checkpoint = dict(meta=dict(iter=4))
    hook.before_save_checkpoint(None, checkpoint)
    expected = draws()
    hook.after_load_checkpoint(None, checkpoint)
    hook.before_train_epoch(SimpleNamespace(iter=4))
    assert draws() == expected


def test_a_checkpoint_loaded_to_start_a_new_run_leaves_the_generators_alone():
    hook = RandomStateHook()
    checkpoint = dict(meta=dict(iter=4))
    hook.before_save_checkpoint(None, checkpoint)
    expected = draws()
    hook.after_load_checkpoint(None, checkpoint)
    hook.before_train_epoch(SimpleNamespace(iter=0))  # load_from: the new run starts at iteration 0
    assert draws() != expected


def test_validation_hands_the_generators_back_as_it_found_them():
    hook = RandomStateHook()
    state = capture_random_state()
    expected = draws()
    restore_random_state(state)
    hook.before_val(None)
    torch.rand(100), np.random.rand(100), random.random()  # what a validation dataloader or model may draw
    hook.after_val(None)
    assert draws() == expected
