"""tools/make_prompt_embedding.py is the one place that may need transformers; without it, it says so."""
import importlib.util
import sys

import pytest
import torch

from tests.test_utils.tool_runs import ROOT, run_in_process


@pytest.mark.skipif(importlib.util.find_spec('transformers') is not None,
                    reason='transformers is installed here (the project environment keeps it out)')
def test_without_transformers_the_script_says_what_it_needs(tmp_path):
    result = run_in_process(ROOT / 'tools/make_prompt_embedding.py', [tmp_path, tmp_path / 'x.pth'])
    assert result.returncode != 0
    assert 'this script needs transformers' in result.stderr
    assert not (tmp_path / 'x.pth').exists()


def test_class_names_come_from_datasets_files_and_lists(tmp_path):
    sys.path.insert(0, str(ROOT / 'tools'))
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


@pytest.mark.skipif(importlib.util.find_spec('transformers') is None,
                    reason='needs transformers, which the project environment keeps out (PYTHONPATH to an install)')
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
    result = run_in_process(ROOT / 'tools/make_prompt_embedding.py', [tmp_path / 'sdxl', out, '--prompt', 'a cat'])
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
    result = run_in_process(ROOT / 'tools/make_prompt_embedding.py', [tmp_path / 'sdxl', out, '--prompt', 'a dog'])
    assert result.returncode != 0 and 'pass --overwrite' in result.stderr and out.read_bytes() == written

    # SD 1.x: a folder with text_encoder/ and tokenizer/ gets the (77, 8) last hidden state of one prompt
    sd = StableDiffusionPipeline(vae, encoders[0], tokenizer, unet, EulerDiscreteScheduler(steps_offset=1),
                                 safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    encoders[0].save_pretrained(tmp_path / 'sd/text_encoder')
    tokenizer.save_pretrained(tmp_path / 'sd/tokenizer')
    result = run_in_process(ROOT / 'tools/make_prompt_embedding.py', [tmp_path / 'sd', out, '--prompt', 'a cat',
                                                                      '--overwrite'])
    assert result.returncode == 0, result.stderr
    with torch.no_grad():
        expected = sd.encode_prompt('a cat', device='cpu', num_images_per_prompt=1, do_classifier_free_guidance=False)
    assert torch.load(out).shape == (77, 8)
    torch.testing.assert_close(torch.load(out), expected[0][0], rtol=0, atol=1e-6)
