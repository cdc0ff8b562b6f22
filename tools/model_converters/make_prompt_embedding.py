"""Write a latent diffusion model's text conditioning from its diffusers pipeline's own text encoder(s).

This is the only mmdiff script that needs ``transformers`` (install it in a separate environment if you like: the
output is a plain tensor, or a dict of two). Nothing in mmdiff's import path uses it.

The empty prompt, ``(77, 768)`` for SD 1.5, for ``context=dict(type='file', path=OUT)``::

    python tools/model_converters/make_prompt_embedding.py checkpoints/stable-diffusion-v1-5
    checkpoints/sd15_empty-prompt.pth

One pooled embedding per class, ``(150, 768)`` for ADE20K, for ``context=dict(type='learnable', path=OUT,
adapter=True)`` as VPD uses it::

    python tools/model_converters/make_prompt_embedding.py checkpoints/stable-diffusion-v1-5 \\
        checkpoints/sd15_ade20k-class-prompts.pth --classes ade20k --template 'a photo of a {}'

An SDXL pipeline (it has ``text_encoder_2/``) gets SDXL's conditioning, as its pipeline's ``encode_prompt`` makes it:
``prompt_embeds`` ``(1, 77, 2048)``, both encoders' penultimate hidden states side by side, and
``pooled_prompt_embeds`` ``(1, 1280)``, the second encoder's projected embedding, saved as one dict::

    python tools/model_converters/make_prompt_embedding.py checkpoints/stable-diffusion-xl-base-1.0
    checkpoints/sdxl_empty-prompt.pth

The diffusion transformers' pipelines (told apart by ``model_index.json``'s ``_class_name``) get the dict that
``DiffusionTransformerBackbone`` reads, equal to their pipeline's ``encode_prompt`` for one prompt without
classifier-free guidance; ``--max-sequence-length`` (the T5 tokens) defaults to the pipeline's own default:

* SD3 / SD3.5 (``StableDiffusion3Pipeline``, 256): ``prompt_embeds`` ``(1, 77 + 256, 4096)``, the CLIP-L and CLIP-G
  penultimate hidden states side by side, zero-padded to T5's width, then the T5 tokens; ``pooled_prompt_embeds``
  ``(1, 2048)``, both CLIP projected embeddings side by side.
* FLUX.1 (``FluxPipeline``, 512): ``prompt_embeds`` ``(1, 512, 4096)``, T5's last hidden state;
  ``pooled_prompt_embeds`` ``(1, 768)``, CLIP-L's pooled output.
* PixArt-Sigma (``PixArtSigmaPipeline``, 300): ``prompt_embeds`` ``(1, L, 4096)`` alone, T5's last hidden state for
  the L tokens its attention mask keeps (the prompt's tokens and the end token, not the padding). The pipeline hands
  its transformer all 300 tokens and the mask; the file holds no mask, and mmdiff's backbone attends to every token
  in it, so the padded tokens are left out (the empty prompt keeps one token, the end token).
* Sana (``SanaPipeline``, 300): ``prompt_embeds`` ``(1, L, 2304)`` alone: the pipeline's own ``encode_prompt`` with
  the complex human instruction its ``__call__`` prepends by default (Gemma-2's hidden states of the first token
  and the last 299), only the L tokens its attention mask keeps, as for PixArt-Sigma.

The empty prompt for SD3.5 medium, ``(1, 333, 4096)`` and ``(1, 2048)``::

    python tools/model_converters/make_prompt_embedding.py checkpoints/stable-diffusion-3.5-medium
    checkpoints/sd35_empty-prompt.pth
"""
import argparse
import importlib.util
import inspect
import json
import os
import sys
from typing import Dict, List, Optional

import torch

from mmdiff.utils.output_paths import check_output, check_output_file, check_output_free, replace_link

# model_index.json's _class_name: (the family's name, its encode_prompt's default max_sequence_length, the suffixes
# of its text_encoder*/ and tokenizer*/ folders)
TRANSFORMER_PIPELINES = {'StableDiffusion3Pipeline': ('SD3', 256, ('', '_2', '_3')),
                         'FluxPipeline': ('FLUX', 512, ('', '_2')),
                         'PixArtSigmaPipeline': ('PixArt-Sigma', 300, ('', )),
                         'SanaPipeline': ('Sana', 300, ('', ))}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('pipeline_dir', help='a local diffusers pipeline folder with text_encoder/ and tokenizer/')
    parser.add_argument('out', help='where to torch.save the (tokens, dim) tensor (SDXL, SD3, FLUX, PixArt: the dict)')
    parser.add_argument('--prompt', default='', help='the prompt to encode without --classes. Defaults to ""')
    parser.add_argument('--classes', help="'ade20k', 'coco', a comma-separated list, or a text file with one "
                        'class name per line: one pooled embedding per class (SD 1.x / 2.x)')
    parser.add_argument('--template', default='a photo of a {}', help='prompt per class; {} is the class name')
    parser.add_argument('--max-sequence-length', type=int, help='T5 tokens for SD3, FLUX and PixArt-Sigma, Gemma '
                        "tokens for Sana. Defaults to the pipeline's own (256, 512, 300, 300)")
    parser.add_argument('--overwrite', action='store_true', help='replace an existing output file')
    return parser.parse_args()


def class_names(spec: str) -> List[str]:
    """Class names from a dataset name, a text file or a comma-separated list."""
    if spec in ('ade20k', 'coco'):
        from mmdet.datasets import CocoDataset
        from mmseg.datasets import ADE20KDataset
        return list((ADE20KDataset if spec == 'ade20k' else CocoDataset).METAINFO['classes'])
    if os.path.isfile(spec):
        with open(spec) as file:
            return [line.strip() for line in file if line.strip()]
    return [name.strip() for name in spec.split(',') if name.strip()]


def tokens(tokenizer, prompts: List[str], max_length: Optional[int] = None):
    """The prompts' token ids and attention mask, padded to ``max_length`` (by default the tokenizer's length) as the
    diffusers pipelines pad them."""
    return tokenizer(prompts, padding='max_length', max_length=max_length or tokenizer.model_max_length,
                     truncation=True, return_tensors='pt')


def load(pipeline_dir: str, suffix: str, tokenizer_class, encoder_class) -> tuple:
    """The pipeline's ``tokenizer{suffix}/`` and ``text_encoder{suffix}/``."""
    tokenizer = tokenizer_class.from_pretrained(pipeline_dir, subfolder=f'tokenizer{suffix}', local_files_only=True)
    encoder = encoder_class.from_pretrained(pipeline_dir, subfolder=f'text_encoder{suffix}', local_files_only=True)
    return tokenizer, encoder


def encode(pipeline_dir: str, suffix: str, classes: tuple, prompts: List[str], max_length: Optional[int] = None,
           **kwargs):
    """``text_encoder{suffix}/``'s output for the prompts' token ids (without their attention mask, as the CLIP
    encoders and SD3's and FLUX's T5 get them)."""
    tokenizer, encoder = load(pipeline_dir, suffix, *classes)
    with torch.no_grad():
        return encoder(tokens(tokenizer, prompts, max_length).input_ids, **kwargs)


def penultimate(pipeline_dir: str, prompt: str, encoder_classes: tuple) -> tuple:
    """SDXL's and SD3's two CLIP encoders (``text_encoder/``, ``text_encoder_2/``): their penultimate hidden states
    side by side, and both outputs."""
    from transformers import CLIPTokenizer
    outputs = [encode(pipeline_dir, suffix, (CLIPTokenizer, encoder_class), [prompt], output_hidden_states=True)
               for suffix, encoder_class in zip(('', '_2'), encoder_classes)]
    return torch.cat([output.hidden_states[-2].float() for output in outputs], dim=-1), outputs


def conditioning(prompt_embeds: torch.Tensor, pooled: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
    """The saved dict: ``prompt_embeds`` ``(1, L, D)`` and, where given, ``pooled_prompt_embeds`` ``(1, P)``."""
    saved = dict(prompt_embeds=prompt_embeds.float().contiguous())
    if pooled is not None:
        saved['pooled_prompt_embeds'] = pooled.float().contiguous()
    return saved


def sdxl_conditioning(pipeline_dir: str, prompt: str) -> Dict[str, torch.Tensor]:
    """SDXL's ``encode_prompt`` for one prompt: both encoders' penultimate hidden states, concatenated, and the
    second encoder's projected (pooled) embedding."""
    from transformers import CLIPTextModel, CLIPTextModelWithProjection
    hidden, outputs = penultimate(pipeline_dir, prompt, (CLIPTextModel, CLIPTextModelWithProjection))
    return conditioning(hidden, outputs[1].text_embeds)


def sd3_conditioning(pipeline_dir: str, prompt: str, max_length: int) -> Dict[str, torch.Tensor]:
    """SD3's ``encode_prompt``: the CLIP-L and CLIP-G penultimate hidden states side by side, zero-padded to T5's
    width, then T5's tokens; both CLIP projected embeddings side by side."""
    from transformers import CLIPTextModelWithProjection, T5EncoderModel, T5TokenizerFast
    hidden, outputs = penultimate(pipeline_dir, prompt, (CLIPTextModelWithProjection, CLIPTextModelWithProjection))
    t5 = encode(pipeline_dir, '_3', (T5TokenizerFast, T5EncoderModel), [prompt], max_length).last_hidden_state
    hidden = torch.nn.functional.pad(hidden, (0, t5.shape[-1] - hidden.shape[-1]))
    return conditioning(torch.cat([hidden, t5.float()], dim=-2),
                        torch.cat([output.text_embeds.float() for output in outputs], dim=-1))


def flux_conditioning(pipeline_dir: str, prompt: str, max_length: int) -> Dict[str, torch.Tensor]:
    """FLUX's ``encode_prompt``: T5's last hidden state (``text_encoder_2/``) and CLIP-L's pooled output."""
    from transformers import CLIPTextModel, CLIPTokenizer, T5EncoderModel, T5TokenizerFast
    pooled = encode(pipeline_dir, '', (CLIPTokenizer, CLIPTextModel), [prompt]).pooler_output
    t5 = encode(pipeline_dir, '_2', (T5TokenizerFast, T5EncoderModel), [prompt], max_length).last_hidden_state
    return conditioning(t5, pooled)


def pixart_conditioning(pipeline_dir: str, prompt: str, max_length: int) -> Dict[str, torch.Tensor]:
    """PixArt-Sigma's ``encode_prompt`` (``clean_caption=False``: the prompt lower-cased and stripped): T5's last
    hidden state under the attention mask, only the tokens the mask keeps."""
    from transformers import T5EncoderModel, T5TokenizerFast
    tokenizer, encoder = load(pipeline_dir, '', T5TokenizerFast, T5EncoderModel)
    inputs = tokens(tokenizer, [prompt.lower().strip()], max_length)
    with torch.no_grad():
        hidden = encoder(inputs.input_ids, attention_mask=inputs.attention_mask).last_hidden_state
    return conditioning(hidden[:, inputs.attention_mask[0].bool()])


def sana_conditioning(pipeline_dir: str, prompt: str, max_length: int) -> Dict[str, torch.Tensor]:
    """Sana's own ``encode_prompt`` (its pipeline loaded without transformer and VAE), with the complex human
    instruction ``SanaPipeline.__call__`` prepends by default: the tokens its attention mask keeps."""
    from diffusers import SanaPipeline
    pipeline = SanaPipeline.from_pretrained(pipeline_dir, transformer=None, vae=None, local_files_only=True)
    instruction = inspect.signature(SanaPipeline.__call__).parameters['complex_human_instruction'].default
    with torch.no_grad():
        embeds, mask, _, _ = pipeline.encode_prompt(prompt, do_classifier_free_guidance=False, device='cpu',
                                                    max_sequence_length=max_length,
                                                    complex_human_instruction=instruction)
    return conditioning(embeds[:, mask[0].bool()])


def sd_context(pipeline_dir: str, prompts: List[str], pooled: bool) -> torch.Tensor:
    """SD 1.x / 2.x: the prompt's token sequence, or (``pooled``) one end-of-text embedding per prompt."""
    from transformers import CLIPTextModel, CLIPTokenizer
    output = encode(pipeline_dir, '', (CLIPTokenizer, CLIPTextModel), prompts)
    return (output.pooler_output if pooled else output.last_hidden_state[0]).float().contiguous()


WRITERS = {'SD3': sd3_conditioning, 'FLUX': flux_conditioning, 'PixArt-Sigma': pixart_conditioning,
           'Sana': sana_conditioning}


def family(pipeline_dir: str) -> tuple:
    """The pipeline's family, the T5 length it defaults to (``None`` for SD and SDXL) and its encoders' suffixes:
    ``model_index.json``'s ``_class_name`` for the diffusion transformers, else SDXL where there is
    ``text_encoder_2/``, else SD 1.x / 2.x."""
    index = os.path.join(pipeline_dir, 'model_index.json')
    if os.path.isfile(index):
        with open(index) as file:
            class_name = json.load(file).get('_class_name')
        if class_name in TRANSFORMER_PIPELINES:
            return TRANSFORMER_PIPELINES[class_name]
    if os.path.isdir(os.path.join(pipeline_dir, 'text_encoder_2')):
        return 'SDXL', None, ('', '_2')
    return 'SD', None, ('', )


def refusal(args: argparse.Namespace, name: str, max_length: Optional[int], suffixes: tuple) -> Optional[str]:
    """Why the tool will not write ``args.out`` for this pipeline, or ``None``."""
    for sub in (f'{kind}{suffix}' for suffix in suffixes for kind in ('text_encoder', 'tokenizer')):
        if not os.path.isdir(os.path.join(args.pipeline_dir, sub)):
            return f'{args.pipeline_dir!r} has no {sub}/ folder'
    if name != 'SD' and args.classes:
        return (f'--classes writes one pooled embedding per class (VPD\'s context for SD 1.x / 2.x); for the {name} '
                'pipeline write one prompt\'s conditioning with --prompt')
    if max_length is None and args.max_sequence_length is not None:
        return (f'--max-sequence-length sets the T5 tokens of SD3, FLUX and PixArt-Sigma and the Gemma tokens of '
                f'Sana; {name} has CLIP\'s 77')
    return None


def main() -> None:
    args = parse_args()
    if importlib.util.find_spec('transformers') is None:
        sys.exit('make_prompt_embedding: this script needs transformers (pip install transformers), which mmdiff '
                 'itself never imports; run it where transformers is installed and copy the output file')
    check_output_file(args.out)
    check_output(args.out, [args.pipeline_dir], what='OUT')
    check_output_free(args.out, args.overwrite)
    name, max_length, suffixes = family(args.pipeline_dir)
    reason = refusal(args, name, max_length, suffixes)
    if reason:
        sys.exit(f'make_prompt_embedding: {reason}')
    if name in WRITERS:
        context = WRITERS[name](args.pipeline_dir, args.prompt, args.max_sequence_length or max_length)
    elif name == 'SDXL':
        context = sdxl_conditioning(args.pipeline_dir, args.prompt)
    else:
        prompts = [args.template.format(cls) for cls in class_names(args.classes)] if args.classes else [args.prompt]
        context = sd_context(args.pipeline_dir, prompts, pooled=bool(args.classes))
    shapes = {key: tuple(value.shape) for key, value in context.items()} if name != 'SD' else tuple(context.shape)
    replace_link(args.out)
    torch.save(context, args.out)
    print(f'wrote {shapes} to {args.out}')


if __name__ == '__main__':
    main()
