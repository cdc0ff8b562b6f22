"""DiffusionUNetBackbone on Stable-Diffusion-style latent U-Nets: VAE encoder only, contexts, strides, folders."""
import pytest
import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

from mmdiff.models.backbones import DiffusionUNetBackbone, declared_out_channels
from mmdiff.models.backbones.unet.presets import UNET_PRESETS
from mmdiff.models.backbones.core.vae_encoder import VAE_PRESETS, VAEEncoder

TINY = dict(arch='sd-tiny', vae='sd-tiny', context=dict(type='zero', num_tokens=5), out_strides=(8, 16, 32, 64))
UNET_ARGS = {key: value for key, value in UNET_PRESETS['sd-tiny'].items() if key != 'type'}


def images(*shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(sum(shape))) * 2 - 1


@pytest.fixture(scope='module', params=[True, False], ids=['safetensors', 'bin'])
def pipeline_dir(request, tmp_path_factory):
    """A tiny SD-style pipeline folder (unet/, vae/, scheduler/) saved and loaded back offline."""
    folder = tmp_path_factory.mktemp('sd-tiny')
    torch.manual_seed(0)
    UNet2DConditionModel(**UNET_ARGS).save_pretrained(folder / 'unet', safe_serialization=request.param)
    AutoencoderKL(**VAE_PRESETS['sd-tiny']).save_pretrained(folder / 'vae', safe_serialization=request.param)
    DDPMScheduler(beta_schedule='scaled_linear', beta_start=0.00085, beta_end=0.012).save_pretrained(
        folder / 'scheduler')
    return folder


def test_latent_pyramid_strides_are_relative_to_the_image():
    backbone = DiffusionUNetBackbone(**dict(TINY, out_strides=(4, 8, 16, 32, 64), resample_missing_strides=True))
    assert backbone.out_strides == (4, 8, 16, 32, 64)
    assert [level.source_stride for level in backbone.feature_info] == [8, 8, 16, 32, 64]
    assert backbone.out_channels == (16, 16, 32, 64, 64) == tuple(declared_out_channels(dict(
        TINY, type='mmdiff.DiffusionUNetBackbone', out_strides=(4, 8, 16, 32, 64), resample_missing_strides=True)))
    assert backbone.downsample_factor == 64 and backbone.in_channels == 3
    outputs = backbone(images(2, 3, 100, 70))
    assert [tuple(out.shape) for out in outputs] == [(2, 16, 25, 18), (2, 16, 13, 9), (2, 32, 7, 5), (2, 64, 4, 3),
                                                     (2, 64, 2, 2)]
    # stride 4 is the bilinear upsampling of stride 8, as VPD makes it (compared where the crop does not matter:
    # at the bottom and right edges the backbone interpolates towards the padded, uncropped stride-8 map)
    expected = torch.nn.functional.interpolate(outputs[1], scale_factor=2, mode='bilinear', align_corners=False)
    torch.testing.assert_close(outputs[0][..., :24, :16], expected[..., :24, :16])
    with pytest.raises(ValueError, match=r'no output at stride 4 \(it has \[8, 16, 32, 64\]\)'):
        DiffusionUNetBackbone(**dict(TINY, out_strides=(4, 8)))


def test_folder_features_are_the_diffusers_pipeline_computation(pipeline_dir):
    """The taps equal diffusers' own UNet2DConditionModel forward on the VAE posterior mean x scaling factor."""
    backbone = DiffusionUNetBackbone(arch=None, model_dir=str(pipeline_dir), context=dict(type='zero', num_tokens=3),
                                     noise_mode='none', timesteps=(50, ), out_strides=None,
                                     out_blocks=('up_blocks.3.attentions.1', 'mid_block'))
    assert backbone.noise_scheduler.config.beta_schedule == 'scaled_linear'
    assert not any(key.startswith('vae_encoder.decoder') for key in backbone.state_dict())
    assert not hasattr(backbone.vae_encoder, 'decoder')
    x = images(2, 3, 64, 64)
    vae = AutoencoderKL.from_pretrained(pipeline_dir / 'vae', local_files_only=True)
    unet = UNet2DConditionModel.from_pretrained(pipeline_dir / 'unet', local_files_only=True)
    captured = {}

    def keep(name: str):
        def hook(module, args, output) -> None:
            captured[name] = output[0] if isinstance(output, tuple) else output
        return hook

    for name in ('up_blocks.3.attentions.1', 'mid_block'):
        unet.get_submodule(name).register_forward_hook(keep(name))
    with torch.no_grad():
        latents = vae.encode(x).latent_dist.mean * vae.config.scaling_factor
        torch.testing.assert_close(backbone.vae_encoder(x), latents)
        unet(latents, torch.tensor([50, 50]), encoder_hidden_states=torch.zeros(2, 3, 32))
        stride8, stride64 = backbone(x)
    torch.testing.assert_close(stride8, captured['up_blocks.3.attentions.1'])
    torch.testing.assert_close(stride64, captured['mid_block'])


def test_latent_features_are_deterministic_and_independent_of_the_batch():
    backbone = DiffusionUNetBackbone(**TINY, timesteps=(100, 300))
    x = images(3, 3, 64, 64)
    together = backbone(x)
    alone = backbone(x[1:2])
    again = backbone(x)
    for a, b, c in zip(together, alone, again):
        assert torch.equal(a, c)
        torch.testing.assert_close(a[1:2], b, rtol=1e-4, atol=1e-5)


def test_contexts(tmp_path):
    path = tmp_path / 'empty_prompt.pth'
    torch.save(torch.randn(1, 6, 32), path)
    from_file = DiffusionUNetBackbone(**dict(TINY, context=dict(type='file', path=str(path))))
    assert tuple(from_file.context(2).shape) == (2, 6, 32) and not list(from_file.context.parameters())
    assert not any(key.startswith('context') for key in from_file.state_dict())  # rebuilt from the file

    learnable = DiffusionUNetBackbone(**dict(TINY, context=dict(type='learnable', path=str(path), adapter=True)))
    learnable.train()
    sum(out.sum() for out in learnable(images(1, 3, 64, 64))).backward()
    assert learnable.context.tokens.grad is not None and learnable.context.gamma.grad is not None
    assert all(p.grad is None for p in learnable.unet.parameters())  # the U-Net stays frozen
    assert all(p.grad is None for p in learnable.vae_encoder.parameters())

    torch.save(torch.randn(77, 768), tmp_path / 'wrong.pth')
    with pytest.raises(ValueError, match=r'shape \(77, 768\), but the U-Net cross-attends to 32-dimensional'):
        DiffusionUNetBackbone(**dict(TINY, context=dict(type='file', path=str(tmp_path / 'wrong.pth'))))
    with pytest.raises(ValueError, match=r"give context=dict\(type=...\) with type one of \['zero', 'file', "):
        DiffusionUNetBackbone(**dict(TINY, context=None))
    with pytest.raises(ValueError, match=r"context type='text' is not supported; choose one of \['zero', 'file', "
                                         r"'learnable'\]"):
        DiffusionUNetBackbone(**dict(TINY, context=dict(type='text')))
    with pytest.raises(ValueError, match='has no cross-attention'):
        DiffusionUNetBackbone(arch='adm-tiny', context=dict(type='zero'))
    with pytest.raises(FileNotFoundError, match='context file .* does not exist'):
        DiffusionUNetBackbone(**dict(TINY, context=dict(type='file', path=str(tmp_path / 'missing.pth'))))


def test_bad_folders_and_mismatches_are_named(pipeline_dir, tmp_path):
    # a pipeline folder without vae/
    no_vae = tmp_path / 'no_vae'
    (no_vae / 'unet').mkdir(parents=True)
    for file in (pipeline_dir / 'unet').iterdir():
        (no_vae / 'unet' / file.name).write_bytes(file.read_bytes())
    with pytest.raises(FileNotFoundError, match=r"no vae/ folder"):
        DiffusionUNetBackbone(arch=None, model_dir=str(no_vae), context=dict(type='zero'))
    # a folder without unet/
    (tmp_path / 'only_vae' / 'vae').mkdir(parents=True)
    with pytest.raises(ValueError, match=r"neither config.json nor unet/config.json \(it holds \['vae'\]\)"):
        DiffusionUNetBackbone(arch=None, model_dir=str(tmp_path / 'only_vae'), context=dict(type='zero'))
    # presets that contradict the folder
    with pytest.raises(ValueError,
                       match=r"does not match vae=the given dict: \(given, folder\) differ in \{'block_out_channels'"):
        DiffusionUNetBackbone(arch='sd-tiny', vae=dict(VAE_PRESETS['sd-tiny'], block_out_channels=(8, 8, 16, 32)),
                              model_dir=str(pipeline_dir), context=dict(type='zero'))
    with pytest.raises(ValueError, match=r"the U-Net in .* is a UNet2DConditionModel, but arch describes a "
                                         r"UNet2DModel"):
        DiffusionUNetBackbone(arch='adm-tiny', model_dir=str(pipeline_dir))
    with pytest.raises(ValueError, match=r"the VAE makes 4-channel latents, but the U-Net takes 3 input channels"):
        DiffusionUNetBackbone(arch='adm-tiny', vae='sd-tiny')
    with pytest.raises(ValueError, match=r"vae='sd4' is not supported; choose one of \['sd', 'sdxl', 'sd3', 'flux', "
                                         r"'sd-tiny', 'sd3-tiny', 'flux-tiny', 'sana', 'sana-tiny'\]"):
        DiffusionUNetBackbone(arch='sd-tiny', vae='sd4', context=dict(type='zero'))


def test_declared_channels_read_the_folder_configs(pipeline_dir):
    backbone = dict(type='mmdiff.DiffusionUNetBackbone', arch=None, model_dir=str(pipeline_dir), context=dict(type='zero'),
                    out_strides=(8, 16, 32, 64))
    assert declared_out_channels(backbone) == [16, 32, 64, 64]
    with pytest.raises(FileNotFoundError, match="model_dir '/nonexistent' does not exist"):
        declared_out_channels(dict(backbone, model_dir='/nonexistent'))


def test_vae_encoder_keeps_only_encoder_weights(pipeline_dir):
    encoder = VAEEncoder.from_folder(str(pipeline_dir / 'vae'))
    keys = set(encoder.state_dict())
    assert keys and all(key.startswith(('encoder.', 'quant_conv.')) for key in keys)
    with pytest.raises(FileNotFoundError, match='has no config.json'):
        VAEEncoder.from_folder(str(pipeline_dir / 'scheduler' / 'missing'))
