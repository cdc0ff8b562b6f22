"""tools/model_converters/make_prompt_embedding.py is the one place that may need transformers; without it, it says
so."""
import importlib.util
import sys

import pytest
import torch

from tests.test_utils.tool_runs import ROOT, run_in_process

TOOL = ROOT / 'tools/model_converters/make_prompt_embedding.py'


@pytest.mark.skipif(importlib.util.find_spec('transformers') is not None,
                    reason='transformers is installed here (the project environment keeps it out)')
def test_without_transformers_the_script_says_what_it_needs(tmp_path):
    result = run_in_process(TOOL, [tmp_path, tmp_path / 'x.pth'])
    assert result.returncode != 0
    assert 'this script needs transformers' in result.stderr
    assert not (tmp_path / 'x.pth').exists()


def test_class_names_come_from_datasets_files_and_lists(tmp_path):
    sys.path.insert(0, str(ROOT / 'tools' / 'model_converters'))
    try:
        from make_prompt_embedding import class_names
    finally:
        sys.path.pop(0)
    assert len(class_names('ade20k')) == 150 and class_names('ade20k')[0] == 'wall'
    (tmp_path / 'names.txt').write_text('cat\n\ndog\n')
    assert class_names(str(tmp_path / 'names.txt')) == ['cat', 'dog']
    assert class_names('cat, dog') == ['cat', 'dog']


def tiny_clip_tokenizer(folder):
    """A CLIP byte-level BPE tokenizer over the letters of 'a cat', with one merge ('a</w>' is its own token)."""
    import json

    from transformers import CLIPTokenizer
    words = ['<|startoftext|>', '<|endoftext|>', 'a', 'c', 't', 'a</w>', 't</w>', 'ca']
    folder.mkdir()
    (folder / 'vocab.json').write_text(json.dumps({word: index for index, word in enumerate(words)}))
    (folder / 'merges.txt').write_text('#version: 0.2\nc a\n')
    return CLIPTokenizer(str(folder / 'vocab.json'), str(folder / 'merges.txt'), model_max_length=77)


needs_transformers = pytest.mark.skipif(
    importlib.util.find_spec('transformers') is None,
    reason='needs transformers, which the project environment keeps out (PYTHONPATH to an install)')


@needs_transformers
def test_the_embeddings_are_the_pipelines_own_encode_prompt(tmp_path):
    from diffusers import (AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline,
                           UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection
    torch.manual_seed(0)
    tokenizer = tiny_clip_tokenizer(tmp_path / 'vocab')
    assert tokenizer('a cat').input_ids == [0, 5, 7, 6, 1]  # <|startoftext|> a</w> ca t</w> <|endoftext|>
    encoders = [model(CLIPTextConfig(vocab_size=8, hidden_size=hidden, intermediate_size=16, num_attention_heads=2,
                                     num_hidden_layers=3, max_position_embeddings=77, projection_dim=12,
                                     bos_token_id=0, eos_token_id=1, pad_token_id=1)).eval()
                for model, hidden in ((CLIPTextModel, 8), (CLIPTextModelWithProjection, 12))]
    unet = UNet2DConditionModel(
        sample_size=8, block_out_channels=(4, 8), layers_per_block=1, norm_num_groups=2, attention_head_dim=2,
        down_block_types=('DownBlock2D', 'CrossAttnDownBlock2D'), up_block_types=('CrossAttnUpBlock2D', 'UpBlock2D'),
        cross_attention_dim=8 + 12, addition_embed_type='text_time', addition_time_embed_dim=4,
        projection_class_embeddings_input_dim=12 + 6 * 4)
    vae = AutoencoderKL(block_out_channels=(4, ), norm_num_groups=2, latent_channels=4)
    pipeline = StableDiffusionXLPipeline(vae, encoders[0], encoders[1], tokenizer, tokenizer, unet,
                                         EulerDiscreteScheduler(steps_offset=1))
    pipeline.save_pretrained(tmp_path / 'sdxl')
    out = tmp_path / 'sdxl.pth'
    result = run_in_process(TOOL, [tmp_path / 'sdxl', out, '--prompt', 'a cat'])
    assert result.returncode == 0, result.stderr
    saved = torch.load(out)
    with torch.no_grad():
        expected = pipeline.encode_prompt('a cat', device='cpu', num_images_per_prompt=1,
                                          do_classifier_free_guidance=False)
    assert set(saved) == {'prompt_embeds', 'pooled_prompt_embeds'}
    assert saved['prompt_embeds'].shape == (1, 77, 20) and saved['pooled_prompt_embeds'].shape == (1, 12)
    torch.testing.assert_close(saved['prompt_embeds'], expected[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(saved['pooled_prompt_embeds'], expected[2], rtol=0, atol=1e-6)

    written = out.read_bytes()  # an existing output is refused without --overwrite, and left as it was
    result = run_in_process(TOOL, [tmp_path / 'sdxl', out, '--prompt', 'a dog'])
    assert result.returncode != 0 and 'pass --overwrite' in result.stderr and out.read_bytes() == written

    # SD 1.x: a folder with text_encoder/ and tokenizer/ gets the (77, 8) last hidden state of one prompt
    sd = StableDiffusionPipeline(vae, encoders[0], tokenizer, unet, EulerDiscreteScheduler(steps_offset=1),
                                 safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    encoders[0].save_pretrained(tmp_path / 'sd/text_encoder')
    tokenizer.save_pretrained(tmp_path / 'sd/tokenizer')
    result = run_in_process(TOOL, [tmp_path / 'sd', out, '--prompt', 'a cat',
                                                                      '--overwrite'])
    assert result.returncode == 0, result.stderr
    with torch.no_grad():
        expected = sd.encode_prompt('a cat', device='cpu', num_images_per_prompt=1, do_classifier_free_guidance=False)
    assert torch.load(out).shape == (77, 8)
    torch.testing.assert_close(torch.load(out), expected[0][0], rtol=0, atol=1e-6)


def tiny_t5_tokenizer():
    """A T5 (Unigram) tokenizer over a few words, '<pad>' 0, '</s>' 1 and '<unk>' 2, appending '</s>' as T5's does."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import T5TokenizerFast
    words = ['<pad>', '</s>', '<unk>', '\u2581a', '\u2581cat', '\u2581dog', '\u2581photo', '\u2581of']
    tokenizer = Tokenizer(models.Unigram([(word, 0.0 if index < 3 else -1.0) for index, word in enumerate(words)],
                                         unk_id=2))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.post_processor = processors.TemplateProcessing(single='$A </s>', pair='$A </s> $B </s>',
                                                             special_tokens=[('</s>', 1)])
    return T5TokenizerFast(tokenizer_object=tokenizer, extra_ids=0)


def tiny_encoders(*clips):
    """Seeded tiny text encoders: a CLIP model per ``(class, hidden size)`` (projection 8), then a 32-wide T5."""
    from transformers import CLIPTextConfig, T5Config, T5EncoderModel
    torch.manual_seed(0)
    encoders = [model(CLIPTextConfig(vocab_size=8, hidden_size=hidden, intermediate_size=16, num_attention_heads=2,
                                     num_hidden_layers=3, max_position_embeddings=77, projection_dim=8,
                                     bos_token_id=0, eos_token_id=1, pad_token_id=1)).eval()
                for model, hidden in clips]
    t5 = T5Config(vocab_size=32, d_model=32, num_layers=1, num_heads=2, d_kv=4, d_ff=16, pad_token_id=0,
                  eos_token_id=1, decoder_start_token_id=0)
    return encoders + [T5EncoderModel(t5).eval()]


def tiny_vae():
    from diffusers import AutoencoderKL
    return AutoencoderKL(block_out_channels=(4, ), norm_num_groups=2, latent_channels=4)


def written(pipeline, folder, *args):
    """What the tool writes from ``pipeline`` saved at ``folder`` (it must succeed)."""
    pipeline.save_pretrained(folder)
    out = folder.parent / f'{folder.name}.pth'
    result = run_in_process(TOOL, [folder, out, *args, '--overwrite'])
    assert result.returncode == 0, result.stderr
    return torch.load(out)


def assert_written(saved, expected, shapes):
    """The file holds exactly ``expected``'s tensors (by key), of ``shapes``."""
    assert {key: tuple(value.shape) for key, value in saved.items()} == shapes
    for key, value in expected.items():
        torch.testing.assert_close(saved[key], value, rtol=0, atol=1e-6)


@needs_transformers
def test_sd3_gets_its_pipelines_encode_prompt(tmp_path):
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
    from transformers import CLIPTextModelWithProjection
    clip_l, clip_g, t5 = tiny_encoders((CLIPTextModelWithProjection, 8), (CLIPTextModelWithProjection, 12))
    tokenizer = tiny_clip_tokenizer(tmp_path / 'vocab')
    transformer = SD3Transformer2DModel(sample_size=8, patch_size=2, in_channels=4, num_layers=1, attention_head_dim=8,
                                        num_attention_heads=2, joint_attention_dim=32, caption_projection_dim=16,
                                        pooled_projection_dim=16, out_channels=4, pos_embed_max_size=16)
    pipeline = StableDiffusion3Pipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(),
                                        vae=tiny_vae(), text_encoder=clip_l, tokenizer=tokenizer,
                                        text_encoder_2=clip_g, tokenizer_2=tokenizer, text_encoder_3=t5,
                                        tokenizer_3=tiny_t5_tokenizer())
    saved = written(pipeline, tmp_path / 'sd3', '--prompt', 'a cat', '--max-sequence-length', '8')
    with torch.no_grad():
        expected = pipeline.encode_prompt('a cat', prompt_2=None, prompt_3=None, device='cpu', num_images_per_prompt=1,
                                          do_classifier_free_guidance=False, max_sequence_length=8)
    # 77 CLIP tokens (8 + 12 channels, padded to 32) then 8 T5 tokens; the pooled embedding is both projections
    assert_written(saved, dict(prompt_embeds=expected[0], pooled_prompt_embeds=expected[2]),
                   dict(prompt_embeds=(1, 77 + 8, 32), pooled_prompt_embeds=(1, 16)))
    assert saved['prompt_embeds'][0, :77, 20:].eq(0).all()
    # without --max-sequence-length the T5 tokens are the pipeline's default, 256
    assert written(pipeline, tmp_path / 'sd3', '--prompt', 'a cat')['prompt_embeds'].shape == (1, 77 + 256, 32)


@needs_transformers
def test_flux_gets_its_pipelines_encode_prompt_and_refuses_classes(tmp_path):
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextModel
    clip, t5 = tiny_encoders((CLIPTextModel, 8))
    transformer = FluxTransformer2DModel(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1,
                                         attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                         pooled_projection_dim=8, axes_dims_rope=(4, 6, 6))
    pipeline = FluxPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=tiny_vae(), text_encoder=clip,
                            tokenizer=tiny_clip_tokenizer(tmp_path / 'vocab'), text_encoder_2=t5,
                            tokenizer_2=tiny_t5_tokenizer(), transformer=transformer)
    saved = written(pipeline, tmp_path / 'flux', '--prompt', 'a cat', '--max-sequence-length', '8')
    with torch.no_grad():
        expected = pipeline.encode_prompt('a cat', prompt_2=None, device='cpu', num_images_per_prompt=1,
                                          max_sequence_length=8)
    assert_written(saved, dict(prompt_embeds=expected[0], pooled_prompt_embeds=expected[1]),
                   dict(prompt_embeds=(1, 8, 32), pooled_prompt_embeds=(1, 8)))

    result = run_in_process(TOOL,
                            [tmp_path / 'flux', tmp_path / 'classes.pth', '--classes', 'cat,dog'])
    assert result.returncode != 0 and 'for the FLUX pipeline' in result.stderr and '--prompt' in result.stderr
    assert not (tmp_path / 'classes.pth').exists()


@needs_transformers
def test_pixart_sigma_gets_the_tokens_its_attention_mask_keeps(tmp_path):
    from diffusers import DPMSolverMultistepScheduler, PixArtSigmaPipeline, PixArtTransformer2DModel
    t5, = tiny_encoders()
    transformer = PixArtTransformer2DModel(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8,
                                           num_layers=1, cross_attention_dim=16, sample_size=8, patch_size=2,
                                           caption_channels=32, use_additional_conditions=False)
    pipeline = PixArtSigmaPipeline(tokenizer=tiny_t5_tokenizer(), text_encoder=t5, vae=tiny_vae(),
                                   transformer=transformer, scheduler=DPMSolverMultistepScheduler())
    # the pipeline lower-cases the prompt ('A' is not in the vocabulary, 'a' is)
    saved = written(pipeline, tmp_path / 'pixart', '--prompt', 'A cat', '--max-sequence-length', '8')
    with torch.no_grad():
        embeds, mask, _, _ = pipeline.encode_prompt('A cat', do_classifier_free_guidance=False, device='cpu',
                                                    num_images_per_prompt=1, clean_caption=False,
                                                    max_sequence_length=8)
    assert mask.tolist() == [[1, 1, 1, 0, 0, 0, 0, 0]]  # a, cat, </s>, then padding
    assert_written(saved, dict(prompt_embeds=embeds[:, :3]), dict(prompt_embeds=(1, 3, 32)))


def tiny_gemma():
    """A Gemma tokenizer over a few words ('<pad>' 0, '<eos>' 1, '<bos>' 2 prepended, '<unk>' 3) and a seeded
    32-wide Gemma-2 encoder."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import Gemma2Config, Gemma2Model, GemmaTokenizerFast
    words = ['<pad>', '<eos>', '<bos>', '<unk>', 'a', 'cat', 'dog', 'photo']
    tokenizer = Tokenizer(models.WordLevel({word: index for index, word in enumerate(words)}, unk_token='<unk>'))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(single='<bos> $A', special_tokens=[('<bos>', 2)])
    fast = GemmaTokenizerFast(tokenizer_object=tokenizer, pad_token='<pad>', eos_token='<eos>', bos_token='<bos>',
                              unk_token='<unk>')
    torch.manual_seed(0)
    config = Gemma2Config(vocab_size=8, hidden_size=32, intermediate_size=16, num_hidden_layers=1,
                          num_attention_heads=2, num_key_value_heads=1, head_dim=16, pad_token_id=0)
    return fast, Gemma2Model(config).eval()


@needs_transformers
def test_sana_gets_its_pipelines_encode_prompt_with_the_default_instruction(tmp_path):
    """The file holds SanaPipeline.encode_prompt's tokens under its attention mask, with the complex human
    instruction __call__ prepends; attending to them alone equals the transformer given all tokens and the mask."""
    import inspect

    from diffusers import AutoencoderDC, DPMSolverMultistepScheduler, SanaPipeline, SanaTransformer2DModel
    tokenizer, gemma = tiny_gemma()
    transformer = SanaTransformer2DModel(in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8,
                                         num_layers=1, num_cross_attention_heads=2, cross_attention_head_dim=8,
                                         cross_attention_dim=16, caption_channels=32, sample_size=4)
    vae = AutoencoderDC(latent_channels=4, encoder_block_out_channels=(8, 8), decoder_block_out_channels=(8, 8),
                        encoder_block_types='ResBlock', decoder_block_types='ResBlock', encoder_layers_per_block=(1, 1),
                        decoder_layers_per_block=(1, 1), encoder_qkv_multiscales=((), ()),
                        decoder_qkv_multiscales=((), ()))
    pipeline = SanaPipeline(tokenizer=tokenizer, text_encoder=gemma, vae=vae, transformer=transformer,
                            scheduler=DPMSolverMultistepScheduler(use_flow_sigmas=True, flow_shift=3.0,
                                                                  prediction_type='flow_prediction'))
    saved = written(pipeline, tmp_path / 'sana', '--prompt', 'A cat', '--max-sequence-length', '8')
    pipeline = SanaPipeline.from_pretrained(tmp_path / 'sana', local_files_only=True)  # as the tool reads it
    instruction = inspect.signature(SanaPipeline.__call__).parameters['complex_human_instruction'].default
    with torch.no_grad():
        embeds, mask, _, _ = pipeline.encode_prompt('A cat', do_classifier_free_guidance=False, device='cpu',
                                                    max_sequence_length=8, complex_human_instruction=instruction)
    assert 0 < int(mask.sum()) < mask.shape[1]  # the instruction's tokens and the prompt's, not the padding
    assert_written(saved, dict(prompt_embeds=embeds[:, mask[0].bool()]), dict(prompt_embeds=(1, int(mask.sum()), 32)))
    latents, step = torch.randn(1, 4, 4, 4), torch.tensor([500.0])
    with torch.no_grad():
        with_mask = pipeline.transformer(latents, encoder_hidden_states=embeds, encoder_attention_mask=mask, timestep=step)
        kept_only = pipeline.transformer(latents, encoder_hidden_states=saved['prompt_embeds'], timestep=step)
    torch.testing.assert_close(kept_only.sample, with_mask.sample, rtol=1e-5, atol=1e-5)
