"""UNetPass: every tap equals what diffusers' own forward computes, the pass stops after the last wanted output,
feedback additions flow on, and the backbone built on it traces and exports."""
import hashlib
import io

import pytest
import torch

from mmdiff.models.backbones import DifFeedBackbone, DiffusionUNetBackbone
from mmdiff.models.backbones.core.noising import FixedNoise
from mmdiff.models.backbones.unet.builder import build_unet
from mmdiff.models.backbones.unet.unet_pass import UNetPass
from mmdiff.models.backbones.unet.taps import list_unet_taps

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


def test_fixed_noise_takes_traced_sizes():
    as_ints = FixedNoise(seed=3).sample(2, 3, 20, 30, device='cpu', dtype=torch.float32)
    as_tensors = FixedNoise(seed=3).sample(torch.tensor(2), torch.tensor(3), torch.tensor(20), torch.tensor(30),
                                           device='cpu', dtype=torch.float32)
    assert torch.equal(as_ints, as_tensors)


# The noise of the implementation before 68d2c48 (`git show 68d2c48^:mmdiff/models/backbones/fixed_noise.py`, run
# with torch 2.14): per (seed, tile_size, num_draws, channels, height, width), the sha256 of the float32 bytes and
# three values, at the first pixel, the last one and one in a later tile. torch's CPU normal sampler has a
# vectorised kernel (AVX2 and AVX512 machines) and a scalar one (ATEN_CPU_CAPABILITY=default), whose draws differ
# in the last bit, so the bytes are pinned per kernel and the values to 1e-6.
PINNED_NOISE = {
    (0, 64, 1, 3, 20, 30): (
        dict(vectorised='5baa39386fa5bdfaea694977091ee051bae89f732d30c37f0b91959387a6718d',
             scalar='60992c320474ab3a0b0e775309e8d13996f094702c5322e6352d6a6040eb8a19'),
        {(0, 0, 0, 0): 0.6620025634765625, (0, 2, 19, 29): 0.8907233476638794, (0, 0, 19, 29): 0.42662280797958374}),
    (3, 64, 2, 3, 100, 70): (
        dict(vectorised='c2841bb70a9df394f16a7c9be69f7a8fdd4ce1d5d7b585d20b5df97e802a4a7e',
             scalar='c0ec0f00714df01eb8f465d3c0e1fdbe1d85b277ad9e2258b269dabacca3e6da'),
        {(0, 0, 0, 0): 0.7830065488815308, (1, 2, 99, 69): -0.7127714157104492, (1, 0, 66, 68): 0.9713872075080872}),
    (12345, 64, 3, 4, 130, 65): (
        dict(vectorised='5341762c35505c36b019f36e02372b0099af1fec9bef9ebe71461aef15a2d92b',
             scalar='a635d04823d93495c4f82875912508e5c1fafdcb4d72deb9fc22ae1353f4fbc3'),
        {(0, 0, 0, 0): -0.4076283872127533, (2, 3, 129, 64): 0.2773410975933075, (2, 0, 66, 64): 0.7261481285095215}),
    (7, 16, 2, 1, 40, 33): (
        dict(vectorised='e7f70c47dc49511d96b11b8f459356bed7626cde0b23fbb46c942b428b8f65fa',
             scalar='4367c8091e385687f9770dbb8ed35bfb77854e7dc6a2d9300d36ade5fdbb9bd6'),
        {(0, 0, 0, 0): 0.4002285599708557, (1, 0, 39, 32): 0.7249078750610352, (1, 0, 18, 20): -0.08652608841657639}),
}
SAMPLER_KERNELS = {'AVX2': 'vectorised', 'AVX512': 'vectorised', 'DEFAULT': 'scalar'}


@pytest.mark.parametrize('case', PINNED_NOISE, ids=str)
def test_fixed_noise_is_the_original_implementations_bit_for_bit(case):
    seed, tile_size, num_draws, channels, height, width = case
    digests, values = PINNED_NOISE[case]
    noise = FixedNoise(seed, tile_size)
    corner = noise.sample(num_draws, channels, 5, 7, device='cpu', dtype=torch.float32)
    plane = noise.sample(num_draws, channels, height, width, device='cpu', dtype=torch.float32)  # grown plane
    assert torch.equal(plane[:, :, :5, :7], corner)
    assert {index: plane[index].item() for index in values} == pytest.approx(values, rel=1e-6, abs=1e-7)
    kernel = SAMPLER_KERNELS.get(torch.backends.cpu.get_cpu_capability())
    if kernel is not None:  # another CPU's sampler is pinned by the values only
        assert hashlib.sha256(plane.numpy().tobytes()).hexdigest() == digests[kernel]


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
