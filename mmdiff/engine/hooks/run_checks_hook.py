"""Check a run's data and the checkpoint it loaded before the first training or test iteration."""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.runner import find_latest_checkpoint

from mmdiff.registry import HOOKS, register_module
from mmdiff.utils.channel_check import check_consumer_channels
from mmdiff.utils.checkpoint_weights import check_checkpoint_fits
from mmdiff.utils.dataset_check import check_dataloaders
from mmdiff.utils.runner_access import unwrap_model

# the hooks every shipped config lists in ``custom_hooks`` (configs/_base_/mmdiff_guards.py), whichever codebase's
# train tool runs it; mmdiff's tools/train.py adds any a user's config lacks
GUARD_HOOKS = ('mmdiff.NonFiniteLossHook', 'mmdiff.RandomStateHook', 'mmdiff.RunChecksHook')


def with_guard_hooks(custom_hooks: Optional[list], data_checked: bool) -> list:
    """``custom_hooks`` with each of :data:`GUARD_HOOKS` it lacks appended (as ``dict(type=...)``).

    Args:
        custom_hooks (list, optional): A config's ``custom_hooks``.
        data_checked (bool): The caller has run :func:`~mmdiff.utils.dataset_check.check_dataloaders` before the
            runner builds the datasets: ``RunChecksHook`` then leaves the data alone (``check_data=False``) rather
            than parse the annotation files again.
    """
    hooks = [dict(hook) for hook in custom_hooks or []]
    listed = {hook.get('type') for hook in hooks}
    for hook_type in GUARD_HOOKS:
        if not listed & {hook_type, hook_type.split('.', 1)[1]}:
            hooks.append(dict(type=hook_type))
    if data_checked:
        for hook in hooks:
            if hook['type'] in ('mmdiff.RunChecksHook', 'RunChecksHook'):
                hook['check_data'] = False
    return hooks


@register_module(HOOKS)
class RunChecksHook(Hook):
    """Refuse a run whose data or checkpoint would train or evaluate something other than what the config says.

    mmengine builds datasets that only log a warning for classes missing from the annotations, and it loads
    checkpoints non-strictly: a checkpoint of another model leaves the weights random with a warning. Before the
    first training iteration this hook checks the train and val datasets (annotation files that parse, list
    images and hold the config's classes; :func:`~mmdiff.utils.dataset_check.check_dataloaders`) and the checkpoint
    the run loaded: a resumed one must fit every weight, a ``load_from`` one at least one
    (:func:`~mmdiff.utils.checkpoint_weights.check_checkpoint_fits`). Before testing it checks the test dataset and
    that the tested checkpoint fits every weight. Before either, the neck's and the segmentation heads'
    ``in_channels`` must be the backbone's declared channels
    (:func:`~mmdiff.utils.channel_check.check_consumer_channels`). Each failure raises with what is missing.

    It runs under any codebase's train and test tools, since the shipped configs list it in ``custom_hooks``
    (``configs/_base_/mmdiff_guards.py``). A missing data folder or an annotation file without images fails earlier,
    when the runner builds the dataset, with the dataset's own error: mmdiff's ``tools/train.py`` and
    ``tools/test.py`` check the data before that, naming the layout and the data-root variable, and set
    ``check_data=False`` here.

    Args:
        check_data (bool): Check the datasets. Default: True.
    """
    priority = 'VERY_HIGH'

    def __init__(self, check_data: bool = True) -> None:
        self.check_data = check_data

    def before_train(self, runner) -> None:
        check_consumer_channels(unwrap_model(runner.model))
        if self.check_data:
            check_dataloaders(runner.cfg, ('train_dataloader', 'val_dataloader'))
        resume = bool(runner.cfg.get('resume'))
        checkpoint = runner.cfg.get('load_from')
        if resume and not checkpoint:
            checkpoint = find_latest_checkpoint(runner.work_dir)
        if checkpoint:
            check_checkpoint_fits(unwrap_model(runner.model).state_dict(), checkpoint,
                                  f'the model of {runner.cfg.filename}', exact=resume)

    def before_test(self, runner) -> None:
        check_consumer_channels(unwrap_model(runner.model))
        if self.check_data:
            check_dataloaders(runner.cfg, ('test_dataloader', ))
        checkpoint = runner.cfg.get('load_from')
        if checkpoint:
            check_checkpoint_fits(unwrap_model(runner.model).state_dict(), checkpoint,
                                  f'the model of {runner.cfg.filename}', exact=True)
