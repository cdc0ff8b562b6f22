"""UNetPass: every tap equals what diffusers' own forward computes, the pass stops after the last wanted output,
feedback additions flow on, and the backbone built on it traces and exports."""
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mmdiff.models.backbones import DifFeedBackbone, DiffusionUNetBackbone
from mmdiff.models.backbones.fixed_noise import FixedNoise
from mmdiff.models.backbones.unet_builder import build_unet
from mmdiff.models.backbones.unet_pass import UNetPass
from mmdiff.models.backbones.unet_taps import list_unet_taps
from tests.test_utils.detection_demo import ROOT

PRESETS = {'adm-tiny': 32, 'adm-digits': 16, 'ddpm-cifar10': 32, 'sd-tiny': 32}


def preset_inputs(arch: str):
    torch.manual_seed(0)
    unet = build_unet(arch, None).eval()
    size = PRESETS[arch]
    sample = torch.randn(2, unet.config.in_channels, size, size)
    context = torch.randn(2, 4, unet.config.cross_attention_dim) if arch == 'sd-tiny' else None
    return unet, sample, torch.tensor([10, 500]), context


def hooked_forward(unet, sample, timesteps, context, names, add=None):
    """diffusers' full forward, with hooks that keep each named module's output (and optionally add to one)."""
    kept, handles = {}, []
    for name in names:
        def hook(module, args, output, name=name):
            tensor = output[0] if isinstance(output, tuple) else output
            if add is not None and name in add:
                tensor = tensor + add[name]
                output = (tensor, *output[1:]) if isinstance(output, tuple) else tensor
            kept[name] = tensor
            return output
        handles.append(unet.get_submodule(name).register_forward_hook(hook))
    with torch.no_grad():
        unet(sample, timesteps, **({} if context is None else dict(encoder_hidden_states=context)))
    for handle in handles:
        handle.remove()
    return kept


@pytest.mark.parametrize('arch', PRESETS)
def test_every_tap_is_what_the_diffusers_forward_computes(arch):
    unet, sample, timesteps, context = preset_inputs(arch)
    names = [tap.name for tap in list_unet_taps(unet)]
    unet_pass = UNetPass(unet)
    assert set(names) <= set(unet_pass.step_names)
    with torch.no_grad():
        ours = unet_pass(sample, timesteps, names, context=context)
    reference = hooked_forward(unet, sample, timesteps, context, names)
    assert ours.keys() == reference.keys()
    assert [name for name in names if not torch.equal(ours[name], reference[name])] == []


def test_additions_flow_into_the_next_layer_and_the_skip():
    unet, sample, timesteps, context = preset_inputs('adm-tiny')
    encoder = 'down_blocks.2.resnets.0'  # its output is the next layer's input and a skip of up_blocks.3
    addition = torch.randn(2, unet.get_submodule(encoder).out_channels, 8, 8)
    wanted = ['down_blocks.2.resnets.1', 'up_blocks.3.resnets.2', encoder]
    with torch.no_grad():
        ours = UNetPass(unet)(sample, timesteps, wanted, additions={encoder: addition})
    reference = hooked_forward(unet, sample, timesteps, context, wanted, add={encoder: addition})
    plain = hooked_forward(unet, sample, timesteps, context, wanted)
    for name in wanted:
        assert torch.equal(ours[name], reference[name]) and not torch.equal(ours[name], plain[name]), name


def test_the_plan_stops_at_the_last_wanted_output_and_names_bad_requests():
    unet, sample, timesteps, _ = preset_inputs('adm-tiny')
    unet_pass = UNetPass(unet)
    plan = unet_pass.plan(['mid_block.resnets.1.conv2'])
    assert plan[-1].name == 'mid_block.resnets.1.conv2' and plan[-1].kind == 'residual'
    assert not any(step.kind == 'residual' for step in plan[:-1])  # unwanted residual branches are not split off
    assert 'mid_block.resnets.1.conv_shortcut' not in {step.name for step in plan}
    with pytest.raises(KeyError, match=r"\['up_blocks.9'\] cannot be returned by this U-Net pass; valid names are: "
                       r'conv_in, down_blocks.0.resnets.0.conv2'):
        unet_pass(sample, timesteps, ['up_blocks.9'])
    with pytest.raises(KeyError, match=r"additions to \['down_blocks.3.resnets.0'\] come after the last wanted"):
        unet_pass(sample, timesteps, ['down_blocks.1'], additions={'down_blocks.3.resnets.0': torch.zeros(1)})


def test_fixed_noise_takes_traced_sizes_and_is_unchanged():
    noise = FixedNoise(seed=3)
    as_ints = noise.sample(2, 3, 20, 30, device='cpu', dtype=torch.float32)
    as_tensors = FixedNoise(seed=3).sample(torch.tensor(2), torch.tensor(3), torch.tensor(20), torch.tensor(30),
                                           device='cpu', dtype=torch.float32)
    assert torch.equal(as_ints, as_tensors)
    # the first tile is the seeded generator's plain draw: the numbers do not depend on how sizes are given
    state = np.random.SeedSequence([3, 0, 3, 0, 0]).generate_state(2, np.uint64)[0]
    first_tile = torch.randn(3, 64, 64, generator=torch.Generator().manual_seed(int(state) & (2**63 - 1)))
    assert torch.equal(as_ints[0], first_tile[:, :20, :30])


def export_backbones():
    yield 'plain', DiffusionUNetBackbone(arch='adm-tiny', timesteps=(10, 150)).eval()
    yield 'residual-tap', DiffusionUNetBackbone(arch='adm-tiny', out_strides=None,
                                                out_blocks=('mid_block.resnets.1.conv2', 24)).eval()
    yield 'diffeed', DifFeedBackbone(arch='adm-tiny', out_strides=None, out_blocks=(24, ),
                                     feedback=(21, 24, 27, 30, 33, 36)).eval()


@pytest.mark.parametrize('name, backbone', list(export_backbones()), ids=lambda value: value
                         if isinstance(value, str) else '')
def test_the_frozen_backbone_traces_and_exports(name, backbone):
    import onnxruntime
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        expected = backbone(images)
        traced = torch.jit.trace(backbone, images, check_trace=False)(images)
        exported = torch.export.export(backbone, (images, )).module()(images)
    onnx_file = io.BytesIO()
    torch.onnx.export(backbone, (images, ), onnx_file, dynamo=False)  # the TorchScript exporter mmdeploy uses
    session = onnxruntime.InferenceSession(onnx_file.getvalue())
    from_onnx = session.run(None, {session.get_inputs()[0].name: images.numpy()})
    for level, reference in enumerate(expected):
        torch.testing.assert_close(traced[level], reference, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(exported[level], reference, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(torch.from_numpy(from_onnx[level]), reference, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_mmdets_get_flops_runs_on_the_demo_config(tmp_path):
    """mmdet's own installed analysis tool traces the Mask R-CNN demo with the backbone's default (fixed) noise."""
    import mmdet
    tool = Path(mmdet.__file__).parent / '.mim/tools/analysis_tools/get_flops.py'
    subprocess.run([sys.executable, str(ROOT / 'tools/make_demo_data.py'), 'data/demo_shapes'], cwd=tmp_path,
                   check=True, capture_output=True)
    config = ROOT / 'configs/mask_rcnn/mask-rcnn_adm-tiny-t10_fpn_demo-shapes.py'
    result = subprocess.run([sys.executable, str(tool), str(config)], cwd=tmp_path, capture_output=True, text=True,
                            timeout=1500)
    assert result.returncode == 0, result.stderr[-3000:]
    flops = float(result.stdout.split('Flops: ')[1].split('G')[0])
    assert flops > 1.0, result.stdout[-2000:]
