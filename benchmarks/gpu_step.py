"""One hybrid RL + SFT step of a Qwen2.5-VL-3B-shaped model on one GPU: time and peak memory.

    python benchmarks/gpu_step.py --out docs/results/benchmarks/gpu_step.json   # needs CUDA
    python benchmarks/gpu_step.py --tiny --batch 2 --max-new-tokens 16        # CPU smoke run

The model is built from a config with Qwen2.5-VL-3B's shapes (36 layers, hidden 2048, 16 heads,
2 KV heads, MLP 11008, vision tower 32 x 1280, vocabulary 151,936) and random weights, in
bfloat16 on CUDA: nothing is downloaded (the lab's character tokenizer drives it, so prompts
are short and the random model samples until the token budget). It runs ``steps`` steps of the
``recap`` preset (GRPO on arith and ground, SFT on digits, RECAP weights) with 8 prompts per
domain x G = 4 and 512 new tokens through recap's trainer, and reports the median step time
(first step dropped), its split into rollouts and the rest, and the peak CUDA memory.
``--tiny`` swaps in the lab's tiny shapes on CPU to check the script itself.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from recap.models.tiny import TinyConfig, tiny_image_processor, tiny_model_config
from recap.models.tokenizer import SPECIAL_TOKENS, build_char_tokenizer

QWEN25_VL_3B = TinyConfig(
    hidden_size=2048, num_layers=36, num_heads=16, num_kv_heads=2, intermediate_size=11008,
    vision_depth=32, vision_hidden_size=1280, vision_heads=16, vision_intermediate_size=3420,
    patch_size=14, spatial_merge_size=2, vision_window_size=112, min_pixels=784 * 4,
    max_pixels=448 * 448, max_position_embeddings=32768, rope_theta=1_000_000.0)
VOCAB = 151_936


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8, help="prompts per domain")
    parser.add_argument("--max-new-tokens", type=int, default=512)
    parser.add_argument("--tiny", action="store_true", help="tiny shapes on CPU (smoke run)")
    parser.add_argument("--bf16", action="store_true",
                        help="bfloat16 with --tiny too (the GPU run's dtype, smoke-tested on CPU)")
    parser.add_argument("--out", default=None)
    a = parser.parse_args()
    import recap.training.trainer as trainer_module
    from recap.config import load_config
    from recap.models.loading import policy_from_model

    cuda = torch.cuda.is_available() and not a.tiny
    if not cuda and not a.tiny:
        raise SystemExit("no CUDA device: run with --tiny for a CPU smoke run")
    shapes = TinyConfig() if a.tiny else QWEN25_VL_3B
    dtype = torch.bfloat16 if cuda or a.bf16 else torch.float32
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        tokenizer = build_char_tokenizer()
        ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
        config = tiny_model_config(shapes, len(tokenizer) if a.tiny else VOCAB, ids)
        config.save_pretrained(folder)  # no weights: the model below lives only in memory
        tokenizer.save_pretrained(folder)
        tiny_image_processor(shapes).save_pretrained(folder)

        from transformers import Qwen2_5_VLForConditionalGeneration

        def build(cfg, device):  # the trainer's policy (and reference) loader, swapped
            torch.manual_seed(0)
            with torch.device(device):
                model = Qwen2_5_VLForConditionalGeneration(config).to(dtype)
            return policy_from_model(model, folder)

        trainer_module.load_run_policy = build
        out = Path(tmp) / "run"
        overrides = [f"model.path={folder}", f"output_dir={out}", f"train.steps={a.steps}",
                     f"train.batch_size={a.batch}", "train.batch_per=domain",
                     f"rl.max_new_tokens={a.max_new_tokens}", "rl.num_generations=4",
                     "checkpoint.every=0", "checkpoint.export_model=false",
                     "logging.progress=false", "logging.tensorboard=false", "eval.every=0"]
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        t0 = time.time()
        trainer_module.train(load_config(None, overrides, preset="recap"))
        wall = time.time() - t0
        rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()][1:]
    report = {
        "shapes": "tiny (CPU smoke run)" if a.tiny else "Qwen2.5-VL-3B, random weights",
        "device": torch.cuda.get_device_name() if cuda else "cpu", "dtype": str(dtype),
        "date": time.strftime("%Y-%m-%d"), "steps": a.steps, "prompts_per_domain": a.batch,
        "num_generations": 4, "max_new_tokens": a.max_new_tokens, "wall_s": wall,
        "median_step_s": statistics.median(r["time/step_s"] for r in rows),
        "median_rollout_s": statistics.median(r["time/rollout_s"] for r in rows),
        "completion_tokens_per_s": statistics.median(r["time/tokens_per_s"] for r in rows),
        "peak_cuda_memory_gb": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
    }
    print(json.dumps(report, indent=1))
    if a.out:
        Path(a.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
