"""Write a latent U-Net's cross-attention context from a Stable Diffusion pipeline's own text encoder(s).

This is the only mmdiff script that needs ``transformers`` (install it in a separate environment if you like: the
output is a plain tensor, or a dict of two). Nothing in mmdiff's import path uses it.

The empty prompt, ``(77, 768)`` for SD 1.5, for ``context=dict(type='file', path=OUT)``::

    python tools/make_prompt_embedding.py checkpoints/stable-diffusion-v1-5 checkpoints/sd15_empty-prompt.pth

One pooled embedding per class, ``(150, 768)`` for ADE20K, for ``context=dict(type='learnable', path=OUT,
adapter=True)`` as VPD uses it::

    python tools/make_prompt_embedding.py checkpoints/stable-diffusion-v1-5 \\
        checkpoints/sd15_ade20k-class-prompts.pth --classes ade20k --template 'a photo of a {}'

An SDXL pipeline (it has ``text_encoder_2/``) gets SDXL's conditioning, as its pipeline's ``encode_prompt`` makes it:
``prompt_embeds`` ``(1, 77, 2048)``, both encoders' penultimate hidden states side by side, and
``pooled_prompt_embeds`` ``(1, 1280)``, the second encoder's projected embedding, saved as one dict::

    python tools/make_prompt_embedding.py checkpoints/stable-diffusion-xl-base-1.0 checkpoints/sdxl_empty-prompt.pth
"""
import argparse
import importlib.util
import os
import sys
from typing import Dict, List

import torch


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('pipeline_dir', help='a local diffusers pipeline folder with text_encoder/ and tokenizer/')
    parser.add_argument('out', help='where to torch.save the (tokens, dim) tensor (SDXL: the dict of both)')
    parser.add_argument('--prompt', default='', help='the prompt to encode without --classes. Defaults to ""')
    parser.add_argument('--classes', help="'ade20k', 'coco', a comma-separated list, or a text file with one "
                        'class name per line: one pooled embedding per class')
    parser.add_argument('--template', default='a photo of a {}', help='prompt per class; {} is the class name')
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


def tokens(tokenizer, prompts: List[str]) -> torch.Tensor:
    """The prompts' token ids, padded to the tokenizer's length as the diffusers pipelines pad them."""
    return tokenizer(prompts, padding='max_length', max_length=tokenizer.model_max_length, truncation=True,
                     return_tensors='pt').input_ids


def sdxl_conditioning(pipeline_dir: str, prompt: str) -> Dict[str, torch.Tensor]:
    """SDXL's ``encode_prompt`` for one prompt: both encoders' penultimate hidden states, concatenated, and the
    second encoder's projected (pooled) embedding."""
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer
    hidden = []
    for suffix, encoder_class in (('', CLIPTextModel), ('_2', CLIPTextModelWithProjection)):
        tokenizer = CLIPTokenizer.from_pretrained(pipeline_dir, subfolder=f'tokenizer{suffix}', local_files_only=True)
        encoder = encoder_class.from_pretrained(pipeline_dir, subfolder=f'text_encoder{suffix}', local_files_only=True)
        with torch.no_grad():
            output = encoder(tokens(tokenizer, [prompt]), output_hidden_states=True)
        hidden.append(output.hidden_states[-2])
    return dict(prompt_embeds=torch.cat(hidden, dim=-1).float().contiguous(),
                pooled_prompt_embeds=output.text_embeds.float().contiguous())


def sd_context(pipeline_dir: str, prompts: List[str], pooled: bool) -> torch.Tensor:
    """SD 1.x / 2.x: the prompt's token sequence, or (``pooled``) one end-of-text embedding per prompt."""
    from transformers import CLIPTextModel, CLIPTokenizer
    tokenizer = CLIPTokenizer.from_pretrained(pipeline_dir, subfolder='tokenizer', local_files_only=True)
    encoder = CLIPTextModel.from_pretrained(pipeline_dir, subfolder='text_encoder', local_files_only=True)
    with torch.no_grad():
        output = encoder(tokens(tokenizer, prompts))
    return (output.pooler_output if pooled else output.last_hidden_state[0]).float().contiguous()


def main() -> None:
    args = parse_args()
    if importlib.util.find_spec('transformers') is None:
        sys.exit('make_prompt_embedding: this script needs transformers (pip install transformers), which mmdiff '
                 'itself never imports; run it where transformers is installed and copy the output file')
    sdxl = os.path.isdir(os.path.join(args.pipeline_dir, 'text_encoder_2'))
    needed = ('text_encoder', 'tokenizer') + (('text_encoder_2', 'tokenizer_2') if sdxl else ())
    for sub in needed:
        if not os.path.isdir(os.path.join(args.pipeline_dir, sub)):
            sys.exit(f'make_prompt_embedding: {args.pipeline_dir!r} has no {sub}/ folder')
    if os.path.exists(args.out) and not args.overwrite:
        sys.exit(f'make_prompt_embedding: {args.out!r} exists; pass --overwrite to replace it')
    if sdxl and args.classes:
        sys.exit('make_prompt_embedding: --classes writes one pooled embedding per class (VPD\'s context for SD '
                 '1.x / 2.x); for an SDXL pipeline write one prompt\'s conditioning with --prompt')
    if sdxl:
        context = sdxl_conditioning(args.pipeline_dir, args.prompt)
        shapes = {key: tuple(value.shape) for key, value in context.items()}
    else:
        prompts = [args.template.format(name) for name in class_names(args.classes)] if args.classes else [args.prompt]
        context = sd_context(args.pipeline_dir, prompts, pooled=bool(args.classes))
        shapes = tuple(context.shape)
    torch.save(context, args.out)
    print(f'wrote {shapes} to {args.out}')


if __name__ == '__main__':
    main()
