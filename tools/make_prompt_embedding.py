"""Write a latent U-Net's cross-attention context from a Stable Diffusion pipeline's own text encoder.

This is the only mmdiff script that needs ``transformers`` (install it in a separate environment if you like: the
output is a plain tensor). Nothing in mmdiff's import path uses it.

The empty prompt, ``(77, 768)`` for SD 1.5, for ``context=dict(type='file', path=OUT)``::

    python tools/make_prompt_embedding.py checkpoints/stable-diffusion-v1-5 checkpoints/sd15_empty-prompt.pth

One pooled embedding per class, ``(150, 768)`` for ADE20K, for ``context=dict(type='learnable', path=OUT,
adapter=True)`` as VPD uses it::

    python tools/make_prompt_embedding.py checkpoints/stable-diffusion-v1-5 \\
        checkpoints/sd15_ade20k-class-prompts.pth --classes ade20k --template 'a photo of a {}'
"""
import argparse
import os
import sys
from typing import List

import torch


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('pipeline_dir', help='a local diffusers pipeline folder with text_encoder/ and tokenizer/')
    parser.add_argument('out', help='where to torch.save the (tokens, dim) tensor')
    parser.add_argument('--prompt', default='', help='the prompt to encode without --classes. Defaults to ""')
    parser.add_argument('--classes', help="'ade20k', 'coco', a comma-separated list, or a text file with one "
                        'class name per line: one pooled embedding per class')
    parser.add_argument('--template', default='a photo of a {}', help='prompt per class; {} is the class name')
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


def main() -> None:
    args = parse_args()
    try:
        from transformers import CLIPTextModel, CLIPTokenizer
    except ImportError:
        sys.exit('make_prompt_embedding: this script needs transformers (pip install transformers), which mmdiff '
                 'itself never imports; run it where transformers is installed and copy the output file')
    for sub in ('text_encoder', 'tokenizer'):
        if not os.path.isdir(os.path.join(args.pipeline_dir, sub)):
            sys.exit(f'make_prompt_embedding: {args.pipeline_dir!r} has no {sub}/ folder')
    tokenizer = CLIPTokenizer.from_pretrained(args.pipeline_dir, subfolder='tokenizer', local_files_only=True)
    encoder = CLIPTextModel.from_pretrained(args.pipeline_dir, subfolder='text_encoder', local_files_only=True)
    prompts = [args.template.format(name) for name in class_names(args.classes)] if args.classes else [args.prompt]
    tokens = tokenizer(prompts, padding='max_length', max_length=tokenizer.model_max_length, truncation=True,
                       return_tensors='pt')
    with torch.no_grad():
        output = encoder(tokens.input_ids)
    # per class: the pooled (end-of-text) embedding; one prompt: the full token sequence the U-Net was trained on
    context = output.pooler_output if args.classes else output.last_hidden_state[0]
    torch.save(context.float().contiguous(), args.out)
    print(f'wrote {tuple(context.shape)} to {args.out} from {len(prompts)} prompt(s)')


if __name__ == '__main__':
    main()
