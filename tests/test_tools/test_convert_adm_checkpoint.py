"""tools/model_converters/convert_adm_checkpoint.py end to end: what it writes loads into the backbone and the shipped
configs."""
import re
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from mmdiff.models.backbones import DiffusionUNetBackbone, declared_out_channels
from tests.test_utils.adm_reference import AdmUNet
from tests.test_utils.tool_runs import ROOT, ToolRun, run_in_process

TOOL = ROOT / 'tools' / 'model_converters' / 'convert_adm_checkpoint.py'
FLAGS = ['--image-size', '64', '--num-head-channels', '32']


def convert(*args) -> ToolRun:
    return run_in_process(TOOL, args)


@pytest.fixture(scope='module')
def adm(tmp_path_factory):
    """A six-level ADM U-Net (the ImageNet-256 layout at width 32, attention at 8/4/2 px of 64) and its file."""
    torch.manual_seed(0)
    model = AdmUNet(in_channels=3, model_channels=32, out_channels=6, num_res_blocks=2, attention_ds=(8, 16, 32),
                    channel_mult=(1, 1, 2, 2, 4, 4), num_head_channels=32).eval()
    path = tmp_path_factory.mktemp('adm') / 'adm.pt'
    torch.save(model.state_dict(), path)
    return model, path


@pytest.fixture(scope='module')
def converted(adm, tmp_path_factory):
    out = tmp_path_factory.mktemp('converted') / 'adm-small.pth'
    result = convert(adm[1], out, *FLAGS)
    assert result.returncode == 0, result.stderr
    assert 'init_cfg=dict(type=\'Pretrained\'' in result.stdout
    return out


def backbone_from(checkpoint: Path, **kwargs) -> DiffusionUNetBackbone:
    arch = torch.load(checkpoint, weights_only=True)['meta']['arch']
    backbone = DiffusionUNetBackbone(arch=arch, init_cfg=dict(type='Pretrained', checkpoint=str(checkpoint)),
                                     **kwargs)
    backbone.init_weights()
    return backbone


def test_converted_checkpoint_loads_into_the_backbone_and_computes_the_adm_function(adm, converted):
    model, _ = adm
    backbone = backbone_from(converted)
    x, t = torch.randn(2, 3, 64, 64), torch.tensor([150, 150])
    with torch.no_grad():
        torch.testing.assert_close(backbone.unet(x, t).sample, model(x, t), rtol=1e-4, atol=1e-5)
    assert backbone.out_strides == (4, 8, 16, 32)


def test_diffusers_folder_output_loads_with_model_dir(adm, converted, tmp_path):
    folder = tmp_path / 'adm-small'
    result = convert(adm[1], folder, *FLAGS, '--noise-schedule', 'cosine')
    assert result.returncode == 0, result.stderr
    assert (folder / 'unet' / 'config.json').is_file() and (folder / 'scheduler').is_dir()
    from_folder = DiffusionUNetBackbone(arch=None, model_dir=str(folder))
    assert from_folder.noise_scheduler.config.beta_schedule == 'squaredcos_cap_v2'
    from_checkpoint = backbone_from(converted, noise_scheduler=dict(from_folder.noise_scheduler.config,
                                                                    type='DDPMScheduler'))
    # the same weights, bit for bit; the features agree to float32 rounding (CPU kernels may sum in another order
    # for another allocation of the same weights, as seen with identical state dicts on a 2-core VM)
    folder_weights, checkpoint_weights = from_folder.state_dict(), from_checkpoint.state_dict()
    assert folder_weights.keys() == checkpoint_weights.keys()
    assert all(torch.equal(folder_weights[key], checkpoint_weights[key]) for key in folder_weights)
    images = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        for a, b in zip(from_folder(images), from_checkpoint(images)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_inverse_conversion_gives_back_the_adm_state_dict(adm, converted, tmp_path):
    out = tmp_path / 'back.pt'
    result = convert(converted, out, '--to-adm')
    assert result.returncode == 0, result.stderr
    original, back = adm[0].state_dict(), torch.load(out, weights_only=True)
    assert back.keys() == original.keys() and all(torch.equal(back[key], original[key]) for key in original)


def test_bad_inputs_fail_with_a_message_and_write_nothing(adm, tmp_path):
    out = tmp_path / 'out.pth'
    state = adm[0].state_dict()
    extra = tmp_path / 'extra.pt'
    torch.save(dict(state, **{'middle_block.1.extra': torch.zeros(2)}), extra)
    not_adm = tmp_path / 'not_adm.pt'
    torch.save({'conv_in.weight': torch.zeros(1)}, not_adm)
    cases = [
        (extra, FLAGS, r"refusing a partial conversion .* left over \['middle_block.1.extra'\]"),
        (adm[1], ['--image-size', '64'], r"do not record \['num_head_channels or num_heads'\]"),
        (adm[1], FLAGS + ['--num-res-blocks', '3', '--class-cond', 'True'],
         'contradict the weights .*num_res_blocks: 3 vs 2, class_cond: True vs False'),
        (not_adm, FLAGS, r"not a guided-diffusion .* starting \['conv_in.weight'\]"),
    ]
    for source, flags, message in cases:
        result = convert(source, out, *flags)
        assert result.returncode != 0
        assert re.search(message, result.stderr), result.stderr
        assert not out.exists()
    preset = convert(adm[1], out, '--preset', '256x256_diffusion_uncond')
    assert preset.returncode != 0 and 'num_channels: 256 vs 32' in preset.stderr


def test_existing_outputs_are_replaced_only_when_asked(adm, converted, tmp_path):
    for out in (tmp_path / 'mine.pth', tmp_path / 'my_folder'):  # a checkpoint, a diffusers folder
        if out.suffix:
            out.write_bytes(b'something the user made')
        else:
            out.mkdir()
            (out / 'notes.txt').write_text('mine')
        result = convert(adm[1], out, *FLAGS)
        assert result.returncode != 0
        assert re.search(rf"'{out}' already exists .* pass --overwrite", result.stderr), result.stderr
        assert (out.read_bytes() == b'something the user made' if out.suffix else
                sorted(p.name for p in out.iterdir()) == ['notes.txt'])
        assert convert(adm[1], out, *FLAGS, '--overwrite').returncode == 0
    back = tmp_path / 'back.pt'
    back.write_bytes(b'an ADM file the user made')
    assert convert(converted, back, '--to-adm').returncode != 0 and back.read_bytes() == b'an ADM file the user made'


CONFIGS = {
    'mask_rcnn_diffusion_coco.py': {'model.neck.in_channels': None},
    'upernet_diffusion_ade20k.py': {'model.decode_head.in_channels': None, 'model.auxiliary_head.in_channels': 2},
}


@pytest.mark.parametrize('config', CONFIGS, ids=CONFIGS.keys())
def test_shipped_configs_load_a_converted_checkpoint_through_init_cfg(config, converted):
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.utils import import_modules_from_strings

    cfg = Config.fromfile(str(ROOT / 'configs' / config))
    arch = torch.load(converted, weights_only=True)['meta']['arch']
    backbone = dict(cfg.model.backbone, arch=arch, init_cfg=dict(type='Pretrained', checkpoint=str(converted)))
    channels = declared_out_channels(backbone)
    options = {key: channels if level is None else channels[level] for key, level in CONFIGS[config].items()}
    cfg.model.backbone.arch = arch  # a dict replacing a preset name: assigned, not merged
    cfg.merge_from_dict({'model.backbone.init_cfg.checkpoint': str(converted), **options})
    import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    model.init_weights()
    state = torch.load(converted, weights_only=True)['state_dict']
    loaded = model.backbone.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in state.items())


def test_a_checkpoint_that_could_run_code_is_refused_with_a_message(tmp_path):
    """No traceback and no advice to load it unsafely: one line naming the file and the global."""
    path = tmp_path / 'hostile.pt'
    path.write_bytes(b'\x80\x04\x95\x1c\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94'
                     b'\x8c\x04true\x94\x85\x94R\x94.')  # pickle of os.system('true')
    result = run_in_process(TOOL, [path, tmp_path / 'out.pth', '--preset', '256x256_diffusion_uncond'])
    assert result.returncode != 0 and 'Traceback' not in result.stderr, result.stderr[-2000:]
    assert re.search(r"convert_adm_checkpoint: refusing to load '.*hostile.pt': it names the global posix.system",
                     result.stderr)
    assert not (tmp_path / 'out.pth').exists()
