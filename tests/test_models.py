"""Tests of recap.models: tiny Qwen2.5-VL factory, char tokenizer, chat encoding, Policy adapter."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import (
    CLIPVisionConfig,
    GenerationConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    Qwen2Config,
)
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

from recap.config import LoraSpec
from recap.models.decode import decode_completions
from recap.models.encoding import ProcessorEncoder, QwenVisionEncoder, TextEncoder
from recap.models.loading import load_policy
from recap.models.tiny import TinyConfig, build_tiny_model, mrope_section
from recap.models.tokenizer import (
    CHARACTERS,
    CHAT_TEMPLATE,
    SPECIAL_TOKENS,
    build_char_tokenizer,
)
from recap.tasks.record import Record

PROMPT_SUFFIX = " Output the final answer in <answer> </answer> tags."




@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), seed=0)


@pytest.fixture(scope="module")
def policy(tiny_dir):
    return load_policy(tiny_dir)


def _image(size: int, seed: int) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def _records() -> list[Record]:
    return [
        Record("one", "count", [_image(64, 1)], "How many circles?", "3", "count"),
        Record("two", "jigsaw", [_image(64, 2), _image(64, 3)], "Order the pieces.", "[1, 0]",
               "permutation"),
        Record("none", "arith", [], "What is 2+3?", "5", "number"),
    ]


def _prompts(records: list[Record]) -> list[str]:
    return [r.question + PROMPT_SUFFIX for r in records]


def test_char_tokenizer_ids_and_tags_survive_decoding():
    tok = build_char_tokenizer()
    # ids: 8 special tokens first, then printable ASCII from chr(32): "a" = 8 + (97 - 32) = 73
    assert tok.convert_tokens_to_ids("<|endoftext|>") == 0
    assert tok.convert_tokens_to_ids("a") == 73
    assert len(tok) == len(SPECIAL_TOKENS) + len(CHARACTERS) + 4  # 8 + 97 + 4 tags = 109
    text = "<think>a b</think><answer>3</answer>"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    # tags are single tokens: <think> a ' ' b </think> <answer> 3 </answer> = 8 ids
    assert len(ids) == 8
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert tok.decode([*ids, im_end], skip_special_tokens=True) == text


def test_decode_completions_keeps_tags_drops_end_and_padding(policy):
    tok = policy.tokenizer
    text = "<think>1+1=2</think><answer>2</answer>"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    row = [*ids, policy.end_id, policy.pad_id, policy.pad_id]
    mask = [1] * (len(ids) + 1) + [0, 0]
    out = decode_completions(tok, torch.tensor([row]), torch.tensor([mask]))
    assert out == [text]


def test_tiny_config_validation_and_mrope_split():
    assert mrope_section(32) == [4, 6, 6]  # half = 16: t = 4, h = (16-4)//2 = 6, w = 6
    assert mrope_section(128) == [16, 24, 24]  # Qwen2.5-VL's own split
    with pytest.raises(ValueError, match="num_heads"):
        TinyConfig(hidden_size=100, num_heads=3)


def test_encoding_image_tokens_and_multi_image(policy):
    assert isinstance(policy.encoder, QwenVisionEncoder)
    records = _records()
    batch = policy.encode(records, _prompts(records))
    image_id = policy.model.config.image_token_id
    # 64x64 px -> 8x8 patches of 8 px -> (8*8)/(2*2) = 16 merged tokens per image
    assert (batch.input_ids == image_id).sum(-1).tolist() == [16, 32, 0]
    assert batch.token_inputs["mm_token_type_ids"].sum(-1).tolist() == [16, 32, 0]
    assert batch.vision["image_grid_thw"].tolist() == [[1, 8, 8]] * 3
    # pixel_values: 64 patches per image, each 3 channels * 2 frames * 8 * 8 = 384 values
    assert tuple(batch.vision["pixel_values"].shape) == (3 * 64, 384)
    # left padding. Row 1 is longest: vs row 0 one more image = 16 pads + vision start/end = 18
    # tokens (both questions have 17 characters); vs row 2 two images = 36 tokens plus
    # 17 - 12 = 5 more question characters = 41.
    assert (batch.attention_mask == 0).sum(-1).tolist() == [18, 0, 41]
    assert (batch.attention_mask[:, -1] == 1).all()
    # selecting rows repeats their images: rows [1, 1, 0] hold 2 + 2 + 1 = 5 images
    sel = batch.vision.select([1, 1, 0])
    assert sel.images_per_row == (2, 2, 1)
    assert tuple(sel["pixel_values"].shape) == (5 * 64, 384)
    assert torch.equal(sel["pixel_values"][:64], batch.vision["pixel_values"][64:128])


def test_small_image_gets_fewer_tokens(policy):
    record = Record("s", "count", [_image(32, 4)], "How many?", "1", "count")
    batch = policy.encode([record], ["How many?"])
    # 32x32 px -> 4x4 patches -> 16/4 = 4 merged tokens
    assert int((batch.input_ids == policy.model.config.image_token_id).sum()) == 4


def test_generation_shapes_and_logprobs_match_teacher_forcing(policy):
    records = _records()
    torch.manual_seed(0)
    gen = policy.generate(records, _prompts(records), num_samples=2, max_new_tokens=12)
    n, length = gen.completion_ids.shape
    assert n == 6 and length <= 12 and len(gen.texts) == 6
    assert gen.prompt_index.tolist() == [0, 0, 1, 1, 2, 2]
    mask = gen.completion_mask
    # mask is a prefix of ones; a finished row's last kept token is a stop token
    assert (mask[:, 1:] <= mask[:, :-1]).all()
    for row in range(n):
        kept = int(mask[row].sum())
        assert kept >= 1
        if gen.finished[row]:
            assert int(gen.completion_ids[row, kept - 1]) in policy.stop_ids
    assert gen.texts == decode_completions(policy.tokenizer, gen.completion_ids, mask)
    policy.model.eval()
    with torch.no_grad():
        recomputed = policy.completion_logprobs(gen)
    assert recomputed.shape == (n, length)
    assert (recomputed - gen.logprobs).abs().max() < 1e-4
    assert (gen.logprobs[mask == 0] == 0).all() and (gen.logprobs[mask == 1] < 0).all()
    # micro-batches recompute the same rows
    sub = gen.select([5, 2])
    with torch.no_grad():
        assert torch.allclose(policy.completion_logprobs(sub), recomputed[[5, 2]], atol=1e-5)
    # differentiable when grad is enabled
    assert policy.completion_logprobs(sub).requires_grad


def test_text_only_batch_and_tempered_sampling_keep_raw_logprobs(policy):
    # No images at all (positions from the attention mask, not the image grid), and sampling at
    # temperature 0.7 / top-p 0.9: gen.logprobs stay those of the unmodified policy (raw logits).
    records = [Record("a", "arith", [], "2+2?", "4", "number"),
               Record("b", "arith", [], "What is 10 minus 7?", "3", "number")]
    torch.manual_seed(1)
    gen = policy.generate(records, _prompts(records), num_samples=3, temperature=0.7, top_p=0.9,
                          max_new_tokens=10)
    with torch.no_grad():
        recomputed = policy.completion_logprobs(gen)
    assert (recomputed - gen.logprobs).abs().max() < 1e-4
    greedy = policy.generate(records, _prompts(records), num_samples=2, temperature=0.0,
                             max_new_tokens=6)
    assert greedy.texts[0] == greedy.texts[1] and greedy.texts[2] == greedy.texts[3]


def _reference_sft(policy, records, prompts, targets):
    """Per-record loop, no padding: CE on target + end-of-turn positions only."""
    nll, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for record, prompt, target in zip(records, prompts, targets, strict=True):
            batch = policy.encode([record], [prompt])
            target_ids = policy.tokenizer(target, add_special_tokens=False)["input_ids"]
            target_ids = torch.tensor([[*target_ids, policy.end_id]])
            ids = torch.cat([batch.input_ids, target_ids], 1)
            extra = {k: torch.cat([v, torch.zeros_like(target_ids)], 1)
                     for k, v in batch.token_inputs.items()}
            logits = policy.model(input_ids=ids, attention_mask=torch.ones_like(ids),
                                  **extra, **batch.vision).logits[0]
            p, t = batch.input_ids.shape[1], target_ids.shape[1]
            pred = logits[p - 1: p + t - 1]  # positions predicting the target tokens
            logp = torch.log_softmax(pred.index_fill(-1, torch.tensor(policy.banned_ids),
                                                     float("-inf")), -1)
            nll -= float(logp.gather(-1, target_ids[0, :, None]).sum())
            correct += int((pred.argmax(-1) == target_ids[0]).sum())
            count += t
    return nll / count, correct / count, count


def test_sft_loss_masks_prompt_and_matches_per_record_reference(policy):
    records = _records()
    prompts = _prompts(records)
    targets = ["<answer>3</answer>", "<think>swap</think><answer>[1, 0]</answer>",
               "<answer>5</answer>"]
    policy.model.eval()
    _, mask, _ = policy.target_logprobs(records, prompts, targets)
    # counted = target tokens + end-of-turn, tags 1 token each: "<answer> 3 </answer>" = 3 + 1;
    # "<think> s w a p </think>" = 6 plus "<answer> [ 1 , ' ' 0 ] </answer>" = 8, + 1 = 15
    assert mask.sum(-1).tolist() == [4, 15, 4]
    loss, acc = policy.sft_loss(records, prompts, targets)
    ref_loss, ref_acc, ref_count = _reference_sft(policy, records, prompts, targets)
    assert ref_count == 4 + 15 + 4
    assert abs(float(loss.detach()) - ref_loss) < 1e-4
    assert abs(float(acc) - ref_acc) < 1e-6
    assert not acc.requires_grad
    loss.backward()
    assert all(p.grad is not None for p in policy.trainable_parameters())
    policy.model.zero_grad(set_to_none=True)


def test_sft_loss_ignores_prompt_labels(policy):
    # Only target positions are scored: the loss of (prompt, target) equals minus the mean of
    # the target log-probs, whatever the prompt tokens' own predictions are.
    records = _records()[2:]
    logprobs, _, _ = policy.target_logprobs(records, _prompts(records), ["<answer>5</answer>"])
    loss, _ = policy.sft_loss(records, _prompts(records), ["<answer>5</answer>"])
    assert abs(float(loss) + float(logprobs.sum()) / 4) < 1e-5  # 4 counted tokens


def test_save_load_round_trip_same_logits(policy, tmp_path):
    records = _records()
    prompts, targets = _prompts(records), ["<answer>1</answer>"] * 3
    policy.model.eval()
    with torch.no_grad():
        before, _, _ = policy.target_logprobs(records, prompts, targets)
    reloaded = load_policy(policy.save(tmp_path / "ckpt"))
    reloaded.model.eval()
    with torch.no_grad():
        after, _, _ = reloaded.target_logprobs(records, prompts, targets)
    assert torch.equal(before, after)
    assert reloaded.stop_ids == policy.stop_ids


def test_unknown_dtype_lists_known(tiny_dir):
    with pytest.raises(ValueError, match=r"known:.*bf16"):
        load_policy(tiny_dir, dtype="float8")


def test_lora_trains_only_adapters_and_saves_merged(tiny_dir, tmp_path):
    policy = load_policy(tiny_dir, lora=LoraSpec(r=4, alpha=8))
    trainable = [n for n, p in policy.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert not any("visual" in n for n in trainable)
    # q, k, v, o are 128 -> 128 in 4 layers: 4 * 4 * (A 4x128 + B 128x4) = 16 * 1024 = 16384
    assert sum(p.numel() for p in policy.trainable_parameters()) == 16384
    records = _records()
    loss, _ = policy.sft_loss(records, _prompts(records), ["<answer>2</answer>"] * 3)
    loss.backward()
    assert all(p.grad is not None for p in policy.trainable_parameters())
    with torch.no_grad():  # make the adapter non-trivial (B starts at zero)
        for p in policy.trainable_parameters():
            p.add_(0.05 * torch.randn_like(p))
    args = (records, _prompts(records), ["<answer>2</answer>"] * 3)
    policy.model.eval()
    with torch.no_grad():
        before, _, _ = policy.target_logprobs(*args)
    merged = load_policy(policy.save(tmp_path / "merged"))
    with torch.no_grad():
        after, _, _ = merged.target_logprobs(*args)
    assert (before - after).abs().max() < 1e-4


def test_gradient_checkpointing_same_loss(tiny_dir, policy):
    ckpt = load_policy(tiny_dir, gradient_checkpointing=True)
    assert any(getattr(m, "gradient_checkpointing", False) for m in ckpt.model.modules())
    records = _records()
    args = (records, _prompts(records), ["<answer>7</answer>"] * 3)
    ckpt.model.train()
    policy.model.train()
    loss_ckpt, _ = ckpt.sft_loss(*args)
    loss_ckpt.backward()
    loss, _ = policy.sft_loss(*args)
    assert abs(float(loss_ckpt) - float(loss)) < 1e-5
    policy.model.zero_grad(set_to_none=True)


def test_text_only_causal_lm_through_same_adapter(text_lm_dir):
    policy = load_policy(text_lm_dir)
    assert isinstance(policy.encoder, TextEncoder) and policy.banned_ids == ()
    records = [Record("a", "arith", [], "2+2?", "4", "number"),
               Record("b", "arith", [], "What is 10 minus 7?", "3", "number")]
    torch.manual_seed(2)
    gen = policy.generate(records, _prompts(records), num_samples=2, max_new_tokens=10)
    assert gen.completion_ids.shape[0] == 4
    with torch.no_grad():
        assert (policy.completion_logprobs(gen) - gen.logprobs).abs().max() < 1e-4
    loss, acc = policy.sft_loss(records, _prompts(records), ["<answer>4</answer>", "3"])
    assert torch.isfinite(loss) and 0.0 <= float(acc) <= 1.0
    with pytest.raises(ValueError, match="text-only model cannot take images"):
        policy.encode(_records()[:1], ["x"])


@pytest.fixture(scope="module")
def llava_dir(tmp_path_factory):
    """A tiny LLaVA (CLIP tower + Qwen2 decoder) with a real LlavaProcessor: the generic path."""
    out = tmp_path_factory.mktemp("llava")
    tok = build_char_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": ["<image>"]})
    template = CHAT_TEMPLATE.replace("<|vision_start|><|image_pad|><|vision_end|>", "<image>")
    tok.chat_template = template
    # 32x32 crops, 8 px patches: 16 patch features + CLS, CLS dropped ("default" strategy)
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessorPil(size={"shortest_edge": 32},
                                              crop_size={"height": 32, "width": 32}),
        tokenizer=tok, patch_size=8, vision_feature_select_strategy="default",
        num_additional_image_tokens=1, chat_template=template,
    )
    end, pad = tok.convert_tokens_to_ids("<|im_end|>"), tok.pad_token_id
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                       num_attention_heads=2, image_size=32, patch_size=8),
        text_config=Qwen2Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                                num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                bos_token_id=pad, eos_token_id=end, pad_token_id=pad),
        image_token_id=tok.convert_tokens_to_ids("<image>"), vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config)
    model.generation_config = GenerationConfig(eos_token_id=[end, pad], pad_token_id=pad)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def test_generic_processor_vlm_llava(llava_dir):
    policy = load_policy(llava_dir)
    assert isinstance(policy.encoder, ProcessorEncoder)
    records = _records()
    batch = policy.encode(records, _prompts(records))
    # 16 <image> tokens per image; pixel_values hold one [3, 32, 32] crop per image
    image_id = policy.model.config.image_token_id
    assert (batch.input_ids == image_id).sum(-1).tolist() == [16, 32, 0]
    assert tuple(batch.vision["pixel_values"].shape) == (3, 3, 32, 32)
    assert policy.banned_ids == (image_id,)
    torch.manual_seed(3)
    gen = policy.generate(records, _prompts(records), num_samples=2, max_new_tokens=8)
    assert tuple(gen.prompt.vision["pixel_values"].shape) == (6, 3, 32, 32)  # 2 * (1 + 2 + 0)
    with torch.no_grad():
        assert (policy.completion_logprobs(gen) - gen.logprobs).abs().max() < 1e-4
    loss, _ = policy.sft_loss(records, _prompts(records), ["<answer>3</answer>"] * 3)
    assert torch.isfinite(loss)


@pytest.mark.parametrize("model", ["tiny", "text_lm", "lora"])
def test_chunked_logprobs_equal_full_logits(model, tiny_dir, text_lm_dir, monkeypatch):
    """The chunked, checkpointed log-probs (never [N, L, V] logits) equal the full-logits path:
    values, token accuracy and every parameter's gradient (float32), with several chunks."""
    import recap.models.logprobs as logprobs_module

    path = {"tiny": tiny_dir, "text_lm": text_lm_dir, "lora": tiny_dir}[model]
    pol = load_policy(path, lora=LoraSpec(r=4) if model == "lora" else None)
    assert logprobs_module.body_and_head(pol.model) is not None
    records = _records() if model != "text_lm" else _records()[2:]
    torch.manual_seed(3)
    gen = pol.generate(records, _prompts(records), num_samples=2, max_new_tokens=12)
    pol.model.eval()
    params = [p for p in pol.model.parameters() if p.requires_grad]

    def run():
        logp = pol.completion_logprobs(gen)
        return logp.detach(), torch.autograd.grad(logp.sum(), params, allow_unused=True)

    monkeypatch.setattr(logprobs_module, "LOGIT_CHUNK_BYTES", 4 * len(pol.tokenizer) * 5)
    chunked, chunked_grads = run()  # 5 tokens per chunk
    monkeypatch.setattr(logprobs_module, "body_and_head", lambda m: None)
    full, full_grads = run()
    assert chunked.shape == full.shape and (chunked[gen.completion_mask == 0] == 0).all()
    assert torch.allclose(chunked, full, atol=1e-5, rtol=0)
    for a, b in zip(chunked_grads, full_grads, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)
    targets = ["<answer>3</answer>", "x", "<answer>5</answer>"][-len(records):]
    prompts = _prompts(records)
    monkeypatch.undo()
    loss_c, acc_c = pol.sft_loss(records, prompts, targets)
    monkeypatch.setattr(logprobs_module, "body_and_head", lambda m: None)
    loss_f, acc_f = pol.sft_loss(records, prompts, targets)
    assert abs(float(loss_c) - float(loss_f)) < 1e-5 and float(acc_c) == float(acc_f)


@pytest.mark.parametrize("model", ["tiny", "text_lm", "lora"])
def test_shared_prefix_forward_equals_row_by_row(model, tiny_dir, text_lm_dir):
    """Each prompt encoded once for its G completions gives the log-probs and gradients of the
    forward that re-encodes it in every row (float32), with images (mRoPE) and without."""
    path = {"tiny": tiny_dir, "text_lm": text_lm_dir, "lora": tiny_dir}[model]
    pol = load_policy(path, lora=LoraSpec(r=4) if model == "lora" else None)
    records = _records() if model != "text_lm" else _records()[2:] * 2
    torch.manual_seed(5)
    gen = pol.generate(records, _prompts(records), num_samples=3, max_new_tokens=12)
    pol.model.train()
    params = [p for p in pol.model.parameters() if p.requires_grad]
    results = []
    for groups in (gen.prompt_index, None):
        logp, _ = pol._token_logprobs(gen.prompt, gen.completion_ids, gen.completion_mask,
                                      groups=groups)
        results.append((logp.detach(), torch.autograd.grad(logp.sum(), params)))
    (shared, shared_grads), (rows, row_grads) = results
    assert torch.allclose(shared, rows, atol=2e-5, rtol=0)
    assert torch.allclose(shared, gen.logprobs, atol=1e-4, rtol=0)  # = the sampling log-probs
    for a, b in zip(shared_grads, row_grads, strict=True):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("model", ["tiny", "text_lm", "lora"])
def test_kept_prefill_gives_the_loss_forward_its_own_numbers(model, tiny_dir, text_lm_dir):
    """``generate(keep_prefill=True)`` keeps the sampling's prompt pass (with grad) for the
    first ``completion_logprobs``: same tokens as without it, and the log-probs and gradients of
    the forward that encodes the prompts again (float32, to the bit on these models). Used
    once, only by its own model, dropped by ``select``; not kept where dropout would make
    sampling (eval mode) and the loss forward (train mode) differ."""
    from dataclasses import replace

    from recap.models.prefill import train_equivalent

    path = {"text_lm": text_lm_dir}.get(model, tiny_dir)
    pol = load_policy(path, lora=LoraSpec(r=4) if model == "lora" else None)
    other = load_policy(path, lora=LoraSpec(r=4) if model == "lora" else None)
    records = _records() if model != "text_lm" else _records()[2:] * 2
    params = [p for p in pol.model.parameters() if p.requires_grad]
    runs = []
    for keep in (True, False):
        torch.manual_seed(5)
        runs.append(pol.generate(records, _prompts(records), num_samples=3, max_new_tokens=12,
                                 keep_prefill=keep))
    kept, plain = runs
    assert kept.prefill is not None and plain.prefill is None
    assert torch.equal(kept.completion_ids, plain.completion_ids)
    assert kept.select([0, 1]).prefill is None
    other.completion_logprobs(kept)  # another model (a reference) leaves it alone
    assert not kept.prefill.used
    pol.model.train()
    results = []
    for gen in (kept, replace(kept, prefill=None)):
        logp = pol.completion_logprobs(gen)
        results.append((logp.detach(), torch.autograd.grad(logp.sum(), params)))
    assert kept.prefill.used
    (a, grads_a), (b, grads_b) = results
    assert torch.equal(a, b)
    for x, y in zip(grads_a, grads_b, strict=True):
        assert torch.equal(x, y)
    assert any(float(x.abs().max()) > 0 for x in grads_a)
    assert torch.equal(pol.completion_logprobs(kept).detach(), a)  # a second use recomputes

    assert train_equivalent(pol.model)
    dropout = load_policy(path, lora=LoraSpec(r=4, dropout=0.1))
    assert not train_equivalent(dropout.model)
    gen = dropout.generate(records, _prompts(records), num_samples=2, max_new_tokens=4,
                           keep_prefill=True)
    assert gen.prefill is None


@pytest.mark.parametrize("model", ["tiny", "text_lm", "lora", "llava"])
@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), (0.7, 0.9), (0.0, 1.0)])
def test_lean_decode_samples_what_generate_samples(model, temperature, top_p, tiny_dir,
                                                   text_lm_dir, llava_dir):
    """The lean sampling loop (each prompt encoded once for its G samples, the cache written in
    place) draws what ``model.generate`` draws from the same random state, with the same
    sampling log-probs, at any temperature / top-p and greedy, with images (mRoPE) and without,
    through LoRA; rows that stop early are padded as generate pads them."""
    path = {"text_lm": text_lm_dir, "llava": llava_dir}.get(model, tiny_dir)
    pol = load_policy(path, lora=LoraSpec(r=4) if model == "lora" else None)
    records = _records() if model != "text_lm" else _records()[2:] * 2
    runs = []
    for lean in (True, False):
        pol.lean_decode = lean
        torch.manual_seed(11)
        runs.append(pol.generate(records, _prompts(records), num_samples=3, max_new_tokens=12,
                                 temperature=temperature, top_p=top_p))
    a, b = runs
    assert a.texts == b.texts and torch.equal(a.completion_mask, b.completion_mask)
    assert torch.equal(a.completion_ids, b.completion_ids) and torch.equal(a.finished, b.finished)
    assert torch.allclose(a.logprobs, b.logprobs, atol=2e-5, rtol=0)
    assert len(set(a.texts)) > 1 or temperature == 0  # the draws are not all alike


def test_lean_decode_drops_stopped_rows_and_still_draws_what_generate_draws(monkeypatch):
    """Rows that drew their stop token leave the decode batch (cache, mask, positions trimmed),
    yet every remaining draw and log-prob is generate's: one draw over all rows keeps the random
    state in step. On the lab base, whose completions stop at different lengths."""
    from recap.models import decode
    from recap.tasks.prompts import render_prompt
    from recap.tasks.registry import make_task

    sizes: list[int] = []
    original = decode.sample_tokens

    def counting(*args, drop_rows=None, **kwargs):
        def drop(keep):
            sizes.append(len(keep))
            drop_rows(keep)
        return original(*args, drop_rows=drop if drop_rows else None, **kwargs)

    monkeypatch.setattr(decode, "sample_tokens", counting)
    pol = load_policy("builtin:base")
    records = make_task("arith", "test", 6, seed=3)
    prompts = [render_prompt(r, "think") for r in records]
    runs = []
    for lean in (True, False):
        pol.lean_decode = lean
        torch.manual_seed(2)
        runs.append(pol.generate(records, prompts, num_samples=4, max_new_tokens=96))
    a, b = runs
    assert len(sizes) >= 2 and sizes == sorted(sizes, reverse=True) and sizes[-1] < 24
    assert a.texts == b.texts and torch.equal(a.completion_ids, b.completion_ids)
    assert torch.allclose(a.logprobs, b.logprobs, atol=2e-5, rtol=0)
    lengths = a.completion_mask.sum(1)
    assert int(lengths.min()) < int(lengths.max())  # rows did stop at different lengths


@pytest.mark.parametrize("path", ["cascade", "repeated"])
def test_lean_decode_under_eager_attention_draws_what_generate_draws(path, tiny_dir, monkeypatch):
    """Both decode paths under eager attention: the cascade one (its own attention function
    replaces the model's) and the repeated-cache one models without full attention everywhere
    take (eager adds the 2D mask to its scores): both draw generate's tokens."""
    from recap.models import cascade

    calls = []
    original = cascade.cascade_attention
    monkeypatch.setitem(cascade.AttentionInterface._global_mapping, cascade.NAME,
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    if path == "repeated":
        monkeypatch.setattr(cascade, "supports", lambda *args: False)
    pol = load_policy(tiny_dir)
    pol.model.set_attn_implementation("eager")
    records = _records()
    runs = []
    for lean in (True, False):
        pol.lean_decode = lean
        torch.manual_seed(4)
        runs.append(pol.generate(records, _prompts(records), num_samples=2, max_new_tokens=10))
    a, b = runs
    assert bool(calls) == (path == "cascade")
    assert pol.model.config.text_config._attn_implementation == "eager"  # restored
    assert a.texts == b.texts and torch.equal(a.completion_ids, b.completion_ids)
    assert torch.allclose(a.logprobs, b.logprobs, atol=2e-5, rtol=0)


@pytest.mark.parametrize("kernel", ["cpu_flash", "any_device", "bfloat16"])
@pytest.mark.parametrize("kv_heads", [4, 2])
def test_cascade_attention_equals_attention_over_prompt_and_completion(kv_heads, kernel,
                                                                       monkeypatch):
    """Prompt keys once per prompt + each row's completion keys, merged by log-sum-exp, equal
    SDPA over the row's ``[left-padded prompt | completion]`` (float32, tight tolerance): with
    padding, grouped-query heads, and after rows left the batch; with the CPU flash kernel and
    with the products written out (other devices), which also serve bfloat16 models."""
    import torch.nn.functional as F
    from transformers.cache_utils import DynamicLayer

    from recap.models import cascade
    from recap.models.cascade import CascadeState, cascade_attention

    if kernel == "any_device":
        monkeypatch.setattr(cascade, "_attend", cascade._attend_any_device)
    dtype = torch.bfloat16 if kernel == "bfloat16" else torch.float32

    torch.manual_seed(0)
    prompts, samples, heads, dim, p_len, done = 3, 4, 4, 8, 7, 5
    prompt_mask = torch.ones(prompts, p_len, dtype=torch.long)
    prompt_mask[0, :3], prompt_mask[2, :1] = 0, 0  # left padding
    pk, pv = torch.randn(2, prompts, kv_heads, p_len, dim, dtype=dtype).unbind(0)
    layer = DynamicLayer()
    layer.update(pk, pv)
    cache = type("Cache", (), {"layers": [layer]})()
    state = CascadeState(cache, samples, prompt_mask, capacity=done + 1)
    ck, cv = torch.randn(2, prompts * samples, kv_heads, done, dim, dtype=dtype).unbind(0)
    state.layers[0].update(ck, cv)
    keep = torch.tensor([0, 2, 3, 5, 9, 10, 11])  # rows still decoding
    state.select(keep)
    state.layers[0].batch_select_indices(keep)
    query = torch.randn(len(keep), heads, 1, dim, dtype=dtype)
    module = type("Attention", (), {"layer_idx": 0})()
    out, _ = cascade_attention(module, query, *state.layers[0].update(
        *torch.randn(2, len(keep), kv_heads, 1, dim, dtype=dtype).unbind(0)), state, scaling=0.3)

    rows = keep // samples  # the reference: float32 SDPA over the same (rounded) numbers
    keys = torch.cat([pk[rows], state.layers[0].keys], 2).float()
    values = torch.cat([pv[rows], state.layers[0].values], 2).float()
    allowed = torch.cat([prompt_mask[rows], torch.ones(len(keep), done + 1, dtype=torch.long)], 1)
    expected = F.scaled_dot_product_attention(
        query.float(), keys, values, attn_mask=allowed.bool()[:, None, None], scale=0.3,
        enable_gqa=True)
    assert out.shape == (len(keep), 1, heads, dim) and out.dtype == dtype
    atol = 2e-2 if dtype == torch.bfloat16 else 1e-6  # bfloat16 keeps ~3 significant digits
    assert torch.allclose(out.float(), expected.transpose(1, 2), atol=atol, rtol=0)


def test_reserved_cache_layer_reads_like_a_growing_one():
    from transformers.cache_utils import DynamicCache

    from recap.models.decode import ReservedLayer, reserve

    torch.manual_seed(0)
    grown, reserved = DynamicCache(), DynamicCache()
    for cache in (grown, reserved):
        cache.update(torch.ones(2, 1, 3, 4), torch.zeros(2, 1, 3, 4), 0)
    reserve(reserved, 2)
    assert isinstance(reserved.layers[0], ReservedLayer)
    for _ in range(2):
        k, v = torch.randn(2, 1, 1, 4), torch.randn(2, 1, 1, 4)
        ka, va = grown.update(k, v, 0)
        kb, vb = reserved.update(k, v, 0)
        assert torch.equal(ka, kb) and torch.equal(va, vb)
    assert reserved.get_seq_length() == grown.get_seq_length() == 5
    with pytest.raises(RuntimeError, match="reserved for 5 positions, got 6"):
        reserved.update(k, v, 0)
