"""The 7B path on one GPU: likra's head training and scoring against the HF Trainer recipe and a
plain HF forward, on the same batches, with a randomly initialised model of Mistral-7B-v0.1's shapes
in bf16 (the paper's largest model; the authors train with bf16 weights).

    python benchmarks/gpu.py [--out results/benchmarks/gpu-DATE.txt] [--train-n 512] [--score-n 200]
    python benchmarks/gpu.py --tiny        # the same script on a 2-layer model: runs on a CPU in seconds

No real model or benchmark file can reach the GPU machine, so the data are synthetic but shaped like
ARC: questions of 15-60 words and four options of 1-12 words drawn from a word-level vocabulary of
Mistral's size (one word, one token), prompts built as likra builds them, and a 25-shot protocol of
25 solved questions before each one (~1000-token contexts, as the paper's lm-eval runs). Random
weights make every loss and accuracy meaningless; what this measures is speed, memory and whether
the two sides compute the same thing (per-step losses, per-option log-likelihoods).

Each engine runs in its own process on a model built from the same seed, and reports its
throughput and its peak GPU memory (``torch.cuda.max_memory_allocated``; on a CPU the process's
VmHWM):

- training: ``recipe`` (HF Trainer + PEFT + DataCollatorForSeq2Seq, bf16 autocast, batch 8) and
  ``likra`` (``likra.training.train_head``, bf16 autocast), LoRA r=8 on the MLP projections, AdamW
  1e-4 constant, the same pairs in the same order; non-padding tokens per second after the first
  four steps ("steady") and over the whole run;
- scoring, 0-shot and 25-shot: ``hf-forward`` (lm-eval's way: one padded row per option, logits at
  every position, batches of ``--hf-batch`` options) and ``likra`` (``likra.scoring.Scorer``: the
  context once per question, vocabulary only at option positions, ``--batch-tokens`` per pass);
  options per second over the same requests and the largest per-option log-likelihood difference.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from common import peak_rss_mb

MISTRAL_7B = dict(vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                  num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=32768, rms_norm_eps=1e-5,
                  rope_theta=10000.0, sliding_window=4096, tie_word_embeddings=False)  # Mistral-7B-v0.1's config.json
TINY = {**MISTRAL_7B, "vocab_size": 1000, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2}
ENGINES = ("train:recipe", "train:likra", "score0:hf-forward", "score0:likra", "score25:hf-forward", "score25:likra")


def word_tokenizer(vocab_size: int):
    """A word-level tokenizer over ``w3`` ... ``w{V-1}``: one word, one token, with a BOS as Mistral's."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{f"w{i}": i for i in range(3, vocab_size)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="</s>", model_max_length=32768)


def questions(n: int, vocab_size: int, seed: int) -> list[tuple[str, list[str], int]]:
    """``n`` ARC-shaped questions: (question text, four options, gold index)."""
    rng = random.Random(seed)
    words = lambda k: " ".join(f"w{rng.randrange(3, vocab_size)}" for _ in range(k))  # noqa: E731
    return [(words(rng.randint(15, 60)), [words(rng.randint(1, 12)) for _ in range(4)], rng.randrange(4)) for _ in range(n)]


def items(qs, shots: int, seed: int):
    """likra Items: each question after ``shots`` solved questions drawn from the others."""
    from likra.tasks.base import Item

    rng = random.Random(seed)
    out = []
    for i, (q, opts, gold) in enumerate(qs):
        solved = [qs[j] for j in rng.sample([j for j in range(len(qs)) if j != i], shots)]
        context = "".join(f"{sq} {so[sg]} " for sq, so, sg in solved) + q
        out.append(Item(f"q{i}", (context,) * 4, tuple(" " + o for o in opts), gold, tuple(len(o) for o in opts)))
    return out


def build_model(shape: dict, device: str):
    """A Mistral-shaped causal LM with random weights, built directly on ``device`` in bf16."""
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    torch.manual_seed(0)
    config = MistralConfig(**shape, attn_implementation="sdpa")
    torch.set_default_dtype(torch.bfloat16)
    with torch.device(device):
        model = MistralForCausalLM(config)
    torch.set_default_dtype(torch.float32)
    return model.eval()


def hf_forward(model, encoded: list[tuple[list[int], list[int]]], batch: int) -> list[float]:
    """lm-eval's HF backend: each option its own right-padded row, the logits of every position."""
    import torch
    import torch.nn.functional as F

    order = sorted(range(len(encoded)), key=lambda k: -len(encoded[k][0]) - len(encoded[k][1]))
    out = [0.0] * len(encoded)
    dev = model.device
    with torch.inference_mode():
        for s in range(0, len(order), batch):
            chunk = order[s:s + batch]
            rows = [(encoded[k][0] + encoded[k][1])[:-1] for k in chunk]
            width = max(map(len, rows))
            ids = torch.tensor([r + [0] * (width - len(r)) for r in rows], device=dev)
            mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=dev)
            logits = model(input_ids=ids, attention_mask=mask).logits
            for row, k in enumerate(chunk):
                ctx, cont = encoded[k]
                span = logits[row, len(ctx) - 1:len(ctx) - 1 + len(cont)].float()
                out[k] = F.log_softmax(span, -1).gather(1, torch.tensor(cont, device=dev)[:, None]).sum().item()
    return out


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def peak_mb(device: str) -> float:
    import torch

    return torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else peak_rss_mb()


def worker(engine: str, a: argparse.Namespace) -> dict:
    import torch

    device = "cuda" if torch.cuda.is_available() and not a.cpu else "cpu"
    shape = TINY if a.tiny else MISTRAL_7B
    tok = word_tokenizer(shape["vocab_size"])
    model = build_model(shape, device)
    weights_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    kind, name = engine.split(":")
    res = {"engine": engine, "device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "weights_mb": weights_mb}
    if kind == "train":
        sys.path.insert(0, str(Path(__file__).parent))
        import training  # the CPU benchmark's two loops, here with bf16 autocast on both sides

        from likra.negatives import Pair
        from likra.training import encode_pairs

        qs = questions(a.train_n, shape["vocab_size"], seed=1)
        pairs = [Pair(f"q{i}", q, " " + opts[g], "positive") for i, (q, opts, g) in enumerate(qs)]
        exs = encode_pairs(pairs, tok, 2048)
        sync(device)
        if name == "recipe":
            r = training.run_hf_trainer(exs, tok, model, bf16=True)
        else:
            r = training.run_likra(pairs, tok, model, bf16=True, compile=False, first_checkpoint=len(pairs))
        sync(device)
        step_tokens = [sum(len(e.input_ids) + 1 for e in exs[i:i + 8]) for i in range(0, len(exs), 8)]
        ends, w = r["step_ends"], training.WARMUP_STEPS
        if len(ends) <= w:
            raise SystemExit(f"--train-n {a.train_n} gives {len(ends)} steps: give more than {8 * w} pairs")
        res.update(tokens=sum(step_tokens), seconds=r["seconds"], tokens_per_s=sum(step_tokens) / r["seconds"],
                   steady_tokens_per_s=sum(step_tokens[w:]) / (ends[-1] - ends[w - 1]), losses=r["losses"],
                   padding_share=r["padding_share"])
    else:
        from likra.packing import Encoder
        from likra.scoring.engine import Scorer
        from likra.scoring.table import option_matrix

        its = items(questions(a.score_n + 25, shape["vocab_size"], seed=2), 25 if kind == "score25" else 0, seed=3)[:a.score_n]
        enc = Encoder(tok)
        encoded = [enc.pair(c, o) for it in its for c, o in zip(it.contexts, it.continuations)]
        res["request_tokens"] = sum(len(c) + len(o) for c, o in encoded)
        sync(device)
        t0 = time.perf_counter()
        if name == "hf-forward":
            lls = hf_forward(model, encoded, a.hf_batch)
        else:
            with torch.inference_mode():
                table = Scorer(model, tok, batch_tokens=a.batch_tokens).score(its, progress=False)
            lls = [float(x) for row in option_matrix(table, "base").loglik for x in row]
        sync(device)
        seconds = time.perf_counter() - t0
        res.update(options=len(encoded), seconds=seconds, options_per_s=len(encoded) / seconds,
                   tokens_per_s=res["request_tokens"] / seconds, lls=lls)
    res["peak_mb"] = peak_mb(device)
    return res


def report(results: dict[str, dict], a: argparse.Namespace) -> list[str]:
    shape = TINY if a.tiny else MISTRAL_7B
    any_r = next((r for r in results.values() if "error" not in r), {"weights_mb": float("nan"), "device": "?"})
    lines = [f"# GPU benchmark ({'tiny 2-layer model' if a.tiny else 'Mistral-7B-v0.1 shapes'}, random bf16 weights, "
             f"{any_r['weights_mb']:.1f} MB of weights) on {any_r['device']}",
             f"# shape: {json.dumps(shape)}",
             f"# training: {a.train_n} synthetic positive pairs, batch 8, LoRA r=8 on the MLP, bf16 autocast both sides; "
             f"scoring: {a.score_n} questions x 4 options, likra --batch-tokens {a.batch_tokens}, HF forward batch {a.hf_batch}",
             ""]
    tr = {k.split(":")[1]: v for k, v in results.items() if k.startswith("train:") and "error" not in v}
    if tr:
        lines.append(f"{'training':<16}{'steady tok/s':>14}{'overall tok/s':>15}{'seconds':>9}{'padding':>9}{'peak MB':>10}")
        for name, r in tr.items():
            lines.append(f"{name:<16}{r['steady_tokens_per_s']:>14.0f}{r['tokens_per_s']:>15.0f}{r['seconds']:>9.1f}"
                         f"{r['padding_share']:>9.0%}{r['peak_mb']:>10.0f}")
        if len(tr) == 2:
            ref, ours = tr["recipe"], tr["likra"]
            d = [abs(x - y) for x, y in zip(ref["losses"], ours["losses"])]
            lines += [f"likra / recipe: {ours['steady_tokens_per_s'] / ref['steady_tokens_per_s']:.2f}x steady, "
                      f"{ours['tokens_per_s'] / ref['tokens_per_s']:.2f}x overall; peak memory "
                      f"{ours['peak_mb'] / ref['peak_mb']:.2f}x",
                      f"per-step loss, likra vs recipe: max |diff| {max(d):.2e} over {len(d)} steps (both bf16 autocast, "
                      f"so not bit-equal; first {ref['losses'][0]:.4f} vs {ours['losses'][0]:.4f})"]
        lines.append("")
    for kind, label in (("score0", "0-shot"), ("score25", "25-shot")):
        sc = {k.split(":")[1]: v for k, v in results.items() if k.startswith(kind + ":") and "error" not in v}
        if not sc:
            continue
        lines.append(f"{'scoring ' + label:<16}{'options/s':>11}{'request tok/s':>15}{'seconds':>9}{'peak MB':>10}")
        for name, r in sc.items():
            lines.append(f"{name:<16}{r['options_per_s']:>11.1f}{r['tokens_per_s']:>15.0f}{r['seconds']:>9.2f}{r['peak_mb']:>10.0f}")
        if len(sc) == 2:
            ref, ours = sc["hf-forward"], sc["likra"]
            d = [abs(x - y) for x, y in zip(ref["lls"], ours["lls"])]
            lines.append(f"likra / HF forward: {ours['options_per_s'] / ref['options_per_s']:.2f}x; peak memory "
                         f"{ours['peak_mb'] / ref['peak_mb']:.2f}x; per-option log-likelihood max |diff| {max(d):.3g}, "
                         f"mean {sum(d) / len(d):.3g} nat over {len(d)} options (bf16 on both sides)")
        lines.append("")
    for k, v in results.items():
        if "error" in v:
            lines.append(f"{k} FAILED: {v['error']}")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="a 2-layer model of the same family (a check that runs anywhere)")
    p.add_argument("--cpu", action="store_true", help="run on the CPU even where a GPU is present")
    p.add_argument("--train-n", type=int, default=512, help="training pairs (batches of 8)")
    p.add_argument("--score-n", type=int, default=200, help="questions scored per protocol")
    p.add_argument("--batch-tokens", type=int, default=16384, help="likra's tokens per forward pass")
    p.add_argument("--hf-batch", type=int, default=32, help="options per forward pass of the plain HF baseline")
    p.add_argument("--engines", default=",".join(ENGINES))
    p.add_argument("--timeout", type=int, default=240, help="seconds per engine before it is reported as failed")
    p.add_argument("--out", default=None, help="also write the report (.txt) and the raw results (.json beside it)")
    p.add_argument("--worker", default=None)
    a = p.parse_args()
    if a.worker:
        print("LIKRA-RESULT " + json.dumps(worker(a.worker, a)))
        return
    results = {}
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in vars(a).items() if k in ("train_n", "score_n", "batch_tokens", "hf_batch")]
    flags += ["--tiny"] * a.tiny + ["--cpu"] * a.cpu
    for engine in a.engines.split(","):
        env = dict(os.environ, TQDM_DISABLE="1", TOKENIZERS_PARALLELISM="false")
        t0 = time.perf_counter()
        try:  # one engine's failure (memory, a missing kernel) must not cost the others' numbers
            run = subprocess.run([sys.executable, __file__, "--worker", engine, *flags], capture_output=True, text=True,
                                 env=env, timeout=a.timeout)
            found = [ln for ln in run.stdout.splitlines() if ln.startswith("LIKRA-RESULT ")]
            results[engine] = json.loads(found[-1][13:]) if run.returncode == 0 and found else \
                {"error": f"exit {run.returncode}: {run.stderr.strip()[-1500:]}"}
        except subprocess.TimeoutExpired:
            results[engine] = {"error": f"over --timeout {a.timeout} s"}
        print(f"{engine}: {time.perf_counter() - t0:.0f} s{' (failed)' if 'error' in results[engine] else ''}", file=sys.stderr,
              flush=True)
    text = "\n".join(report(results, a)) + "\n"
    print(text, end="")
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(text)
        Path(a.out).with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
