"""mmdet's and mmseg's own analysis tools, as installed, run on the demo configs from a folder outside the
repository, in this process (tests/test_tools/test_upstream_tools.py shows each package's installed tools finding
mmdiff through a config's ``custom_imports`` alone, in a fresh interpreter)."""
import math
import re
from pathlib import Path
from typing import Tuple

import cv2
import mmdet
import mmpretrain
import mmseg
import pytest
import torch
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.utils import import_modules_from_strings
from mmseg.structures import SegDataSample
from torch import nn

from mmdiff.datasets.synthetic_shapes import make_shapes_segmentation_dataset
from tests.test_utils.detection_demo import DEMO_CONFIG, demo_options
from tests.test_utils.tool_runs import ROOT, run_in_process

pytestmark = pytest.mark.slow  # end-to-end runs of the tools: `make test` runs them, `make test-quick` does not

MMDET_TOOLS = Path(mmdet.__file__).parent / '.mim' / 'tools' / 'analysis_tools'
MMSEG_TOOLS = Path(mmseg.__file__).parent / '.mim' / 'tools' / 'analysis_tools'
SEG_DEMO_CONFIG = ROOT / 'configs' / 'upernet' / 'upernet_adm-tiny-t10_demo-shapes-128x128.py'
DEMO_IMAGE_SIZE = 128  # both demo configs' image size; the detection pipeline resizes the 64 px shapes to it
UNITS = {'': 1, 'K': 1e3, 'M': 1e6, 'G': 1e9, 'T': 1e12, 'P': 1e15}
# mmseg 1.2.2's get_flops.py passes both `input_shape` and `inputs` to mmengine's get_model_complexity_info, which
# refuses that (open-mmlab/mmsegmentation#3241); the fix merged upstream (#3551, unreleased) passes None instead.
MMSEG_FLOPS_BUG = ('        input_shape,\n        inputs=data', '        None,\n        inputs=data')


@pytest.fixture()
def outside_repo(tmp_path) -> Path:
    """An empty working directory outside the repository."""
    folder = tmp_path / 'cwd'
    folder.mkdir()
    assert ROOT not in folder.parents
    return folder


def printed_sizes(output: str) -> dict:
    """The ``Input shape``, ``Flops`` and ``Params`` lines of a get_flops.py report, sizes as numbers."""
    report = dict(re.findall(r'^(Input shape|Flops|Params): (.+)$', output, re.MULTILINE))
    assert set(report) == {'Input shape', 'Flops', 'Params'}, output
    sizes = {'Input shape': tuple(int(side) for side in re.findall(r'\d+', report['Input shape']))}
    for key in ('Flops', 'Params'):
        number, unit = re.fullmatch(r'([\d.]+)([KMGTP]?)', report[key].strip()).groups()
        sizes[key] = float(number) * UNITS[unit]
    return sizes


def model_counts(config: Path, scope: str, data_batch, without=()) -> Tuple[int, int]:
    """The parameters of the model ``config`` builds, leaving out the top-level submodules ``without``, and the
    multiply-accumulates of its Conv2d and Linear layers in one tensor-mode forward of ``data_batch`` (a function
    of the scope's packages giving the batch a dataloader would): counted with forward hooks from each layer's
    output size and kernel, sharing nothing with the tools' traced FLOP counter."""
    cfg = Config.fromfile(str(config))
    import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(scope)
    model = MODELS.build(cfg.model).eval()
    parameters = sum(parameter.numel() for name, parameter in model.named_parameters()
                     if name.split('.')[0] not in without)
    macs = []

    def count(module: nn.Module, args, output: torch.Tensor) -> None:
        per_output = module.in_features if isinstance(module, nn.Linear) else (
            module.in_channels // module.groups * math.prod(module.kernel_size))
        macs.append(output.numel() * per_output)

    handles = [module.register_forward_hook(count) for module in model.modules()
               if isinstance(module, (nn.Conv2d, nn.Linear))]
    data = model.data_preprocessor(data_batch())
    with torch.no_grad():
        model(data['inputs'], data['data_samples'], mode='tensor')
    for handle in handles:
        handle.remove()
    return parameters, sum(macs)


def assert_counted(sizes: dict, parameters: int, macs: int):
    """The printed parameter count the model's, to the three decimals printed; the FLOPs (one per
    multiply-accumulate, the counter's convention) at least the convolutions' and linear layers' ``macs``, and at
    most 15 % more for what else it counts (norms, attention products, RoI pooling: 2 % for the segmentor, 9 % for
    the detector)."""
    unit = max(value for value in UNITS.values() if value <= parameters)
    assert math.isclose(sizes['Params'], parameters, abs_tol=0.5e-3 * unit), (sizes['Params'], parameters)
    assert macs <= sizes['Flops'] <= 1.15 * macs, (sizes['Flops'], macs)


def test_mmdet_browse_dataset_draws_every_training_sample(detection_shapes, outside_repo, tmp_path):
    output_dir = tmp_path / 'browse'
    result = run_in_process(MMDET_TOOLS / 'browse_dataset.py', [
        DEMO_CONFIG, '--not-show', '--output-dir', output_dir, '--cfg-options', *demo_options(detection_shapes)],
                            cwd=outside_repo)
    assert result.returncode == 0, result.stderr
    train_images = sorted(path.name for path in (detection_shapes / 'images' / 'train').iterdir())
    assert len(train_images) == 8
    assert sorted(path.name for path in output_dir.iterdir()) == train_images
    for name in train_images:  # each drawn as the training pipeline gives it: resized from 64 to 128 px
        drawn = cv2.imread(str(output_dir / name))
        assert drawn is not None and drawn.shape == (DEMO_IMAGE_SIZE, DEMO_IMAGE_SIZE, 3)
    assert not any(outside_repo.iterdir())


def test_mmdet_get_flops_counts_the_demo_detector(detection_shapes, outside_repo):
    """mmdet's tool traces the Mask R-CNN demo with the backbone's default (fixed) noise."""
    options = [*demo_options(detection_shapes), 'val_dataloader.batch_size=1']  # one image per count, as the tool means
    result = run_in_process(MMDET_TOOLS / 'get_flops.py', [DEMO_CONFIG, '--num-images', '2', '--cfg-options',
                                                            *options], cwd=outside_repo)
    assert result.returncode == 0, result.stderr
    sizes = printed_sizes(result.stdout)
    assert sizes['Input shape'] == (DEMO_IMAGE_SIZE, DEMO_IMAGE_SIZE) and sizes['Flops'] > 1e9
    # with random weights more than the 200 proposals the test config keeps pass the RPN's NMS: the count is the
    # same for any image of the input shape
    assert_counted(sizes, *model_counts(DEMO_CONFIG, 'mmdet', lambda: demo_mm_inputs(
        batch_size=1, image_shapes=[(3, DEMO_IMAGE_SIZE, DEMO_IMAGE_SIZE)])))


def test_mmseg_get_flops_counts_the_demo_segmentor(outside_repo, tmp_path):
    script = (MMSEG_TOOLS / 'get_flops.py').read_text()
    if MMSEG_FLOPS_BUG[0] in script:
        script = script.replace(*MMSEG_FLOPS_BUG)
    patched = tmp_path / 'mmseg_get_flops.py'
    patched.write_text(script)
    # the tool counts a random image; the data only keeps the config's paths valid
    data_root = tmp_path / 'shapes_seg'
    make_shapes_segmentation_dataset(str(data_root), num_train=2, num_val=1, image_size=64, max_objects=2, seed=4)
    options = [f'{loader}.dataset.data_root={data_root}/'
               for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    result = run_in_process(patched, [SEG_DEMO_CONFIG, '--shape', DEMO_IMAGE_SIZE, DEMO_IMAGE_SIZE, '--cfg-options',
                                      *options], cwd=outside_repo)
    assert result.returncode == 0, result.stderr
    sizes = printed_sizes(result.stdout)
    assert sizes['Input shape'] == (DEMO_IMAGE_SIZE, DEMO_IMAGE_SIZE)
    # the tool drops the auxiliary head before counting
    shape = (DEMO_IMAGE_SIZE, DEMO_IMAGE_SIZE)
    assert_counted(sizes, *model_counts(SEG_DEMO_CONFIG, 'mmseg', lambda: dict(
        inputs=[torch.rand(3, *shape)], data_samples=[SegDataSample(metainfo=dict(ori_shape=shape, pad_shape=shape))]),
        without=('auxiliary_head', )))


@pytest.fixture(scope='module')
def demo_scalars(demo_run) -> Path:
    """The scalars log (vis_data/scalars.json, a loss line per iteration) of the session's two-iteration demo run."""
    scalars = list((demo_run / 'work').glob('*/vis_data/scalars.json'))
    assert len(scalars) == 1
    return scalars[0]


@pytest.mark.parametrize('package', [mmdet, mmseg, mmpretrain], ids=lambda package: package.__name__)
def test_analyze_logs_plots_a_demo_runs_loss_curve(package, demo_scalars, outside_repo, tmp_path):
    """Each package's analyze_logs.py (seaborn, pandas) draws the loss curve of the run's log."""
    curve = tmp_path / 'loss.png'
    tools = Path(package.__file__).parent / '.mim' / 'tools' / 'analysis_tools'
    task = [] if package is mmseg else ['plot_curve']  # mmseg's tool only plots, without a task argument
    result = run_in_process(tools / 'analyze_logs.py', [*task, demo_scalars, '--keys', 'loss', '--out', curve],
                            cwd=outside_repo, env=dict(MPLBACKEND='Agg'))
    assert result.returncode == 0, result.stderr
    drawn = cv2.imread(str(curve))
    assert drawn is not None and drawn.shape[0] > 100 and drawn.shape[1] > 100
