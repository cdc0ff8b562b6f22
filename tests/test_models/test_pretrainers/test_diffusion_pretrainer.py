"""DiffusionPretrainer: the denoising objective learns, EMA checkpoints feed the backbone, runs resume, samples."""
import re
from pathlib import Path

import cv2
import pytest
import torch
from mmengine.optim import OptimWrapper
from mmengine.runner.checkpoint import _load_checkpoint

from mmdiff.models import DiffusionPretrainer, DiffusionUNetBackbone
from mmdiff.models.backbones import adm_unet_config
from mmdiff.utils.diffusion_sampling import sample_images
from tests.test_utils.tool_runs import ROOT, ToolRun, run_in_process

CONFIG = ROOT / 'configs/diffusion_pretraining/ddpm_adm-digits_2k_digits-16px.py'
# the config's model with a quick schedule: batches of 8, an EMA that moves fast, a 4-image grid every 2 iters
QUICK = ['train_dataloader.batch_size=8', 'custom_hooks.0.momentum=0.5', 'custom_hooks.1.interval=2',
         'custom_hooks.1.num_images=4', 'custom_hooks.1.num_inference_steps=2', 'default_hooks.checkpoint.interval=2',
         'param_scheduler.0.end=2', 'param_scheduler.1.begin=2', 'default_hooks.logger.interval=1']
TINY = adm_unet_config(image_size=8, model_channels=8, channel_mult=(1, 2), num_res_blocks=1,
                       attention_resolutions=(4, ), num_head_channels=8, learn_sigma=False, norm_num_groups=4)
PREPROCESSOR = dict(type='mmpretrain.ClsDataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3)


def train(work_dir: Path, max_iters: int, *extra) -> ToolRun:
    result = run_in_process(ROOT / 'tools/train.py', [
        CONFIG, '--work-dir', work_dir, *extra, '--cfg-options', *QUICK, f'train_cfg.max_iters={max_iters}',
        f'param_scheduler.1.end={max_iters}'])
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope='module')
def run_of_4_iters(tmp_path_factory) -> Path:
    work_dir = tmp_path_factory.mktemp('pretrain')
    train(work_dir, 4)
    return work_dir


def fixed_batch_loss(model: DiffusionPretrainer, images: torch.Tensor) -> float:
    """The loss with the same timesteps and noise every call."""
    torch.manual_seed(123)
    with torch.no_grad():
        return model.loss(images)['loss'].item()


@pytest.mark.parametrize('prediction_type', ['epsilon', 'v_prediction'])
def test_a_few_iterations_reduce_the_loss_on_a_fixed_batch(prediction_type):
    torch.manual_seed(0)
    model = DiffusionPretrainer(arch=TINY, noise_scheduler=dict(type='DDPMScheduler', prediction_type=prediction_type),
                                data_preprocessor=PREPROCESSOR)
    ramp = torch.linspace(-1, 1, 8)
    images = torch.stack([ramp.view(1, 8, 1).expand(3, 8, 8), ramp.view(1, 1, 8).expand(3, 8, 8)]).repeat(4, 1, 1, 1)
    before = fixed_batch_loss(model, images)
    optimizer = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=3e-3))
    for _ in range(30):
        model.train_step(dict(inputs=list((images * 127.5 + 127.5).round().to(torch.uint8))), optimizer)
    after = fixed_batch_loss(model, images)
    assert after < 0.8 * before, (before, after)


def test_class_conditional_unet_trains_on_the_labels():
    from mmpretrain.structures import DataSample
    model = DiffusionPretrainer(arch=dict(TINY, num_class_embeds=3))
    inputs = torch.rand(2, 3, 8, 8) * 2 - 1
    loss = model(inputs, [DataSample().set_gt_label(label) for label in (0, 2)])['loss']
    loss.backward()
    assert model.unet.class_embedding.weight.grad[[0, 2]].abs().sum() > 0
    assert model.unet.class_embedding.weight.grad[1].abs().sum() == 0
    with pytest.raises(ValueError, match='class-conditional \\(num_class_embeds=3\\), so every sample needs a gt'):
        model(inputs, None)
    images = sample_images(model.unet, model.noise_scheduler, 4, 'ddim', 2)  # classes drawn in turn
    assert images.shape == (4, 3, 8, 8)


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match=r'outputs 6 channels for 3 input channels \(a learned-variance model'):
        DiffusionPretrainer(arch=dict(TINY, out_channels=6))
    with pytest.raises(ValueError, match=r"noise_scheduler prediction_type='sample' is not supported; choose one "
                       r"of \['epsilon', 'v_prediction'\]"):
        DiffusionPretrainer(arch=TINY, noise_scheduler=dict(type='DDPMScheduler', prediction_type='sample'))
    with pytest.raises(ValueError, match='trains image-space UNet2DModel U-Nets'):
        DiffusionPretrainer(arch='sd-tiny')
    with pytest.raises(ValueError, match=r"mode='predict' is not supported by DiffusionPretrainer"):
        DiffusionPretrainer(arch=TINY)(torch.zeros(1, 3, 8, 8), mode='predict')
    with pytest.raises(ValueError, match=r"sampler='euler' is not supported; choose one of \['ddpm', 'ddim'\]"):
        sample_images(DiffusionPretrainer(arch=TINY).unet, DiffusionPretrainer(arch=TINY).noise_scheduler, 1,
                      'euler')


def test_checkpoints_hold_ema_weights_that_the_backbone_loads(run_of_4_iters):
    checkpoint = _load_checkpoint(str(run_of_4_iters / 'iter_4.pth'), map_location='cpu')
    ema = {key: value for key, value in checkpoint['state_dict'].items() if key.startswith('unet.')}
    raw = {key[len('module.'):]: value for key, value in checkpoint['ema_state_dict'].items()
           if key.startswith('module.')}
    assert ema.keys() == raw.keys() == checkpoint['state_dict'].keys()  # the U-Net and nothing else
    assert any(not torch.equal(ema[key], raw[key]) for key in ema)
    for weights, expected in ((None, ema), ('raw', raw)):
        init_cfg = dict(type='Pretrained', checkpoint=str(run_of_4_iters / 'iter_4.pth'))
        if weights:
            init_cfg['weights'] = weights
        backbone = DiffusionUNetBackbone(arch='adm-digits', init_cfg=init_cfg, out_strides=(1, 2, 4, 8))
        backbone.init_weights()
        loaded = backbone.state_dict()
        assert all(torch.equal(loaded[key], value) for key, value in expected.items())
    with pytest.raises(ValueError, match=r"init_cfg\['weights'\]='last' is not supported; choose one of "
                       r"\['ema', 'raw'\]"):
        DiffusionUNetBackbone(arch='adm-digits', init_cfg=dict(type='Pretrained', checkpoint='x', weights='last'))


def test_sample_grids_are_saved_during_training(run_of_4_iters):
    grids = sorted(path.name for path in (run_of_4_iters / 'samples').iterdir())
    assert grids == ['iter_2.png', 'iter_4.png']
    # 4 images of 16x16 in a 2x2 grid with 2-pixel borders
    assert cv2.imread(str(run_of_4_iters / 'samples' / 'iter_4.png')).shape == (2 * 18 + 2, 2 * 18 + 2, 3)


def test_resume_continues_the_iteration_count(run_of_4_iters, tmp_path):
    for name in ('iter_2.pth', 'iter_4.pth', 'last_checkpoint'):
        (tmp_path / name).write_bytes((run_of_4_iters / name).read_bytes())
    result = train(tmp_path, 6, '--resume')
    log = result.stdout + result.stderr
    assert re.search(r'resumed epoch: \d+, iter: 4', log)
    assert re.search(r'Iter\(train\) \[6/6\]', log) and not re.search(r'Iter\(train\) \[[1-4]/6\]', log)
    resumed = _load_checkpoint(str(tmp_path / 'iter_6.pth'), map_location='cpu')
    assert resumed['meta']['iter'] == 6 and 'ema_state_dict' in resumed


def test_sampling_tool_writes_a_grid_of_the_expected_size(run_of_4_iters, tmp_path):
    out = tmp_path / 'grid.png'
    result = run_in_process(ROOT / 'tools/misc/sample_diffusion.py', [
        CONFIG, run_of_4_iters / 'iter_4.pth', '--out', out, '--num-images', 6, '--steps', 3, '--sampler', 'ddpm',
        '--weights', 'raw'])
    assert result.returncode == 0, result.stderr[-3000:]
    # 6 images of 16x16, 3 per row, 2 rows, 2-pixel borders
    assert cv2.imread(str(out)).shape == (2 * 18 + 2, 3 * 18 + 2, 3)
    assert 'saved 6 samples (ddpm, 3 steps, raw weights)' in result.stdout


def test_sampling_tool_refuses_a_config_that_is_not_a_pretraining_one(run_of_4_iters, tmp_path):
    probe = ROOT / 'configs/linear_probe/linear-probe_adm-digits-b18-t150_digits-16px.py'
    result = run_in_process(ROOT / 'tools/misc/sample_diffusion.py', [
        probe, run_of_4_iters / 'iter_4.pth', '--out', tmp_path / 'g.png', '--cfg-options',
        'model.backbone.init_cfg=None'])
    assert result.returncode != 0
    assert 'builds a ImageClassifier; give a pre-training config whose model is a DiffusionPretrainer' in result.stderr
    assert not (tmp_path / 'g.png').exists()
