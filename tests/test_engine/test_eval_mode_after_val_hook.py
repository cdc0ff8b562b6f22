"""EvalModeAfterFirstValHook: the published DifFeed's adapters stop updating their BatchNorm statistics after the
first validation (diffssl trains in eval mode from then on); without the hook (mmdiff's variant) they keep moving."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mmdiff.engine.hooks import EvalModeAfterFirstValHook
from tests.test_utils.tool_runs import ROOT, process_state_restored

DEMO = ROOT / 'configs/classification_heads/diffeed-attention-head_adm-tiny-b24-t150_demo-shapes.py'


def adapter_statistics(checkpoint: Path) -> torch.Tensor:
    """The running means of every feedback adapter's BatchNorm, concatenated."""
    state = torch.load(checkpoint, map_location='cpu', weights_only=False)['state_dict']
    return torch.cat([value for name, value in state.items() if '.adapters.' in name and 'running_mean' in name])


def train_three_epochs(root: Path, work_dir: Path, hooks: list) -> list:
    """The tiny DifFeed demo for three epochs on ``root``, validating after each; each epoch's checkpoint (saved
    before that epoch's validation) and the last one's meta."""
    cfg = Config.fromfile(str(DEMO))
    cfg.merge_from_dict({f'{loader}.dataset.data_root': str(root)
                         for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')})
    cfg.merge_from_dict({'train_cfg.max_epochs': 3, 'train_cfg.val_interval': 1, 'param_scheduler': [],
                         'default_hooks.checkpoint.interval': 1})
    cfg.custom_hooks = hooks
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = work_dir.name
    with process_state_restored():
        Runner.from_cfg(cfg).train()
    return [work_dir / f'epoch_{epoch}.pth' for epoch in (1, 2, 3)]


@pytest.mark.slow
def test_adapter_statistics_stop_after_the_first_validation_with_the_hook_only(classification_shapes, tmp_path):
    published = train_three_epochs(classification_shapes, tmp_path / 'published',
                                   [dict(type='mmdiff.EvalModeAfterFirstValHook')])
    epochs = [adapter_statistics(path) for path in published]
    assert torch.equal(epochs[1], epochs[0]) and torch.equal(epochs[2], epochs[0])  # epochs 2 and 3 train in eval
    assert torch.load(published[2], weights_only=False)['meta']['eval_mode_after_val'] is True
    variant = [adapter_statistics(path) for path in train_three_epochs(classification_shapes, tmp_path / 'variant', [])]
    assert not torch.equal(variant[1], variant[0]) and not torch.equal(variant[2], variant[1])
    torch.testing.assert_close(variant[0], epochs[0])  # the same first epoch, in train mode


def test_the_state_travels_in_the_checkpoint():
    hook, resumed = EvalModeAfterFirstValHook(), EvalModeAfterFirstValHook()
    checkpoint = dict(meta=dict(epoch=7))
    hook.before_save_checkpoint(None, checkpoint)
    resumed.after_load_checkpoint(None, checkpoint)
    assert checkpoint['meta'] == dict(epoch=7, eval_mode_after_val=False) and not resumed.validated
    hook.after_val_epoch(None)
    hook.before_save_checkpoint(None, checkpoint)
    resumed.after_load_checkpoint(None, checkpoint)
    assert resumed.validated
