"""A character-level tokenizer with Qwen chat and vision tokens, built locally with `tokenizers`.

The tiny model (:mod:`recap.models.tiny`) cannot download a real vocabulary, and a learned BPE
vocabulary would tie the tiny checkpoint to one corpus. Characters are enough for the built-in
tasks (short questions, numbers, lists) and keep every string representable.

Vocabulary: the Qwen chat/vision control tokens (special: dropped by
``decode(skip_special_tokens=True)``), printable ASCII plus newline and tab, and the four format
tags ``<think>``, ``</think>``, ``<answer>``, ``</answer>`` as single *non-special* added tokens, so
they survive decoding (DESIGN.md, "Tags are text"). Characters outside the vocabulary become the
special ``<unk>`` token.

The chat template follows Qwen2.5-VL's (``<|im_start|>role\\n...<|im_end|>\\n``, one
``<|vision_start|><|image_pad|><|vision_end|>`` per image before the text) but, unlike Qwen's, adds
no default system message: with one token per character it would cost ~40 tokens per sequence.
"""

from __future__ import annotations

from tokenizers import AddedToken, Tokenizer, decoders, models
from transformers import PreTrainedTokenizerFast

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
VISION_START = "<|vision_start|>"
VISION_END = "<|vision_end|>"
IMAGE_PAD = "<|image_pad|>"
VIDEO_PAD = "<|video_pad|>"
UNK = "<unk>"

SPECIAL_TOKENS: tuple[str, ...] = (
    ENDOFTEXT, IM_START, IM_END, VISION_START, VISION_END, IMAGE_PAD, VIDEO_PAD, UNK,
)
TAG_TOKENS: tuple[str, ...] = ("<think>", "</think>", "<answer>", "</answer>")
# printable ASCII (space .. tilde) plus the two whitespace controls that appear in prompts
CHARACTERS: tuple[str, ...] = (*(chr(i) for i in range(32, 127)), "\n", "\t")

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_char_tokenizer() -> PreTrainedTokenizerFast:
    """A character-level ``PreTrainedTokenizerFast`` with Qwen chat/vision tokens and tag tokens.

    Ids are stable: the special tokens come first in ``SPECIAL_TOKENS`` order (``<|endoftext|>``
    is 0), then ``CHARACTERS``, then ``TAG_TOKENS``. ``eos_token`` is ``<|im_end|>`` and
    ``pad_token`` is ``<|endoftext|>``, as in Qwen2.5-VL-Instruct.
    """
    vocab = {tok: i for i, tok in enumerate((*SPECIAL_TOKENS, *CHARACTERS))}
    # BPE without merges splits every string into single characters: a character-level model
    # that the Rust tokenizer and `save_pretrained` handle natively.
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=UNK))
    # Without a decoder, tokens would be joined with spaces; Fuse concatenates them.
    core.decoder = decoders.Fuse()
    core.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    core.add_tokens([AddedToken(t, special=False, normalized=False) for t in TAG_TOKENS])
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        unk_token=UNK,
        chat_template=CHAT_TEMPLATE,
        model_max_length=1 << 20,
    )
