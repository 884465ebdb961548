"""Training heads on a tiny random model: pairs, loss masking, curve checkpoints, resume, refusal."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from likra.errors import ConfigError, OutputRefused
from likra.negatives import negative_pairs, positive_pairs, shuffled
from likra.packing import sliding_window
from likra.tasks.base import Item
from likra.training import (
    RunInfo,
    TrainConfig,
    TrainingDiverged,
    batch_bounds,
    batch_loss,
    checkpoint_sizes,
    default_targets,
    encode_pairs,
    train_head,
)

ANSWERS = ["carbon dioxide", "oxygen", "nitrogen", "water", "erosion", "rain", "the Sun", "Mars", "a roof", "skis"]


def make_items(n: int) -> list[Item]:
    items = []
    for i in range(n):
        opts = [ANSWERS[(i + k) % len(ANSWERS)] for k in range(4)]
        ctx = f"Question: Which gas {i} do plants take in from the air?\nAnswer:"
        items.append(Item(id=f"q{i}", contexts=(ctx,) * 4, continuations=tuple(" " + o for o in opts),
                          gold=i % 4, n_chars=tuple(len(o) for o in opts)))
    return items


def info(head="positive", seed=0) -> RunInfo:
    return RunInfo(model="tiny", base_fingerprint="x", pool="test", head=head, negatives=None, seed=seed, n_total=0)


def lora_weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def assert_same_adapter(a: Path, b: Path, tol: float = 1e-6) -> None:
    wa, wb = lora_weights(a), lora_weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=tol, rtol=0), k


# ---- pairs -------------------------------------------------------------------------------------

def test_positive_and_near_miss_pairs_are_balanced_and_deterministic():
    items = make_items(20)
    pos = positive_pairs(items)
    assert [p.answer for p in pos] == [it.continuations[it.gold] for it in items]
    neg = negative_pairs(items, "near-miss", seed=1)
    assert len(neg) == len(items)  # exactly one per question
    for it, p in zip(items, neg):
        assert p.question_id == it.id and p.answer in it.continuations and p.answer != it.continuations[it.gold]
    assert neg == negative_pairs(items, "near-miss", seed=1)
    assert neg != negative_pairs(items, "near-miss", seed=2)
    assert len(negative_pairs(items, "near-miss", seed=1, per_question=2)) == 40


def test_irrelevant_unrelated_and_hardest_pairs():
    items = make_items(12)
    wrong_elsewhere = {it.id: {c for j, other in enumerate(items) if other.id != it.id
                               for k, c in enumerate(other.continuations) if k != other.gold} for it in items}
    for it, p in zip(items, negative_pairs(items, "irrelevant", seed=0)):  # the paper's: another question's wrong option
        assert p.context == it.contexts[it.gold]
        assert p.answer not in it.continuations and p.answer in wrong_elsewhere[it.id]
    golds = {it.continuations[it.gold] for it in items}
    for it, p in zip(items, negative_pairs(items, "irrelevant-correct", seed=0)):
        assert p.answer not in it.continuations and p.answer in golds
    assert [p.answer for p in negative_pairs(items, "first-wrong", seed=5)] == [
        it.continuations[0 if it.gold else 1] for it in items]
    # a pool where every other answer is also an option here: refused, never this question's own option
    twin = [Item(id=f"t{i}", contexts=("Q?",) * 2, continuations=(" a", " b"), gold=i, n_chars=(1, 1)) for i in range(2)]
    for source in ("irrelevant", "irrelevant-correct"):
        with pytest.raises(ConfigError, match="question 't0'"):
            negative_pairs(twin, source, seed=0)
    other = ["A woman is seen speaking to the camera.", "He then rinses the bowl."]
    unrel = negative_pairs(items, "unrelated:hellaswag", seed=0, unrelated_answers=other)
    assert {p.answer for p in unrel} <= {" " + t for t in other}
    scores = {it.id: [0.0, -1.0, -2.0, -3.0] for it in items}
    for it, p in zip(items, negative_pairs(items, "hardest", seed=0, option_scores=scores)):
        best_wrong = max((o for o in range(4) if o != it.gold), key=lambda o: scores[it.id][o])
        assert p.answer == it.continuations[best_wrong]
    with pytest.raises(ConfigError, match="unknown negative source"):
        negative_pairs(items, "bogus", seed=0)


def test_unrelated_answers_are_wrong_answer_texts(data_dir):
    from likra.heads import unrelated_answers
    from likra.tasks import load_pool
    from likra.tasks.registry import MMLU_NONSCIENCE

    docs = [d for _, d in load_pool("mmlu-nonscience", data_dir)]
    mmlu = unrelated_answers("mmlu-nonscience", data_dir)
    assert len(mmlu) == 3 * len(docs)  # the three wrong options of every question
    assert mmlu[:3] == [o.strip() for k, o in enumerate(docs[0].meta["options"]) if k != docs[0].gold]  # texts, not letters
    assert {d.id.split("/")[0] for d in docs} <= set(MMLU_NONSCIENCE)


def test_shuffle_is_seeded():
    xs = list(range(50))
    assert shuffled(xs, 3) == shuffled(xs, 3) != shuffled(xs, 4)


def test_arc_pool_has_no_test_questions(data_dir):
    from likra.tasks import load_docs, load_pool, resolve_spec

    pool = load_pool("arc", data_dir)
    assert len(pool) == (1119 + 299 + 1172) + (2251 + 570 + 2376) - 1172  # ARC's published splits, less Challenge test
    test = load_docs(resolve_spec("arc_challenge"), "test", data_dir)
    assert not {d.id for d in test} & {d.id for _, d in pool}
    assert not {(d.text, d.choices) for d in test} & {(d.text, d.choices) for _, d in pool}


# ---- schedule and loss ---------------------------------------------------------------------

def test_checkpoint_schedule_and_batches():
    assert checkpoint_sizes(100) == [16, 32, 64, 100]
    assert checkpoint_sizes(64) == [16, 32, 64]
    b = batch_bounds(40, 12, checkpoint_sizes(40))
    assert b == [(0, 12), (12, 16), (16, 24), (24, 32), (32, 36), (36, 40)]


def test_loss_is_on_answer_tokens_only(tiny_llama, tiny_tokenizer):
    pairs = positive_pairs(make_items(3))
    examples = encode_pairs(pairs, tiny_tokenizer, 512)
    loss, _ = batch_loss(tiny_llama, examples, None, False)
    # reference: each example alone, full vocabulary, only answer tokens counted
    nll, count = 0.0, 0
    for ex in examples:
        with torch.no_grad():
            logits = tiny_llama(torch.tensor([ex.input_ids])).logits[0].float()
        lp = F.log_softmax(logits, -1)[ex.start:]
        nll -= lp.gather(1, torch.tensor(ex.targets)[:, None]).sum().item()
        count += len(ex.targets)
        assert len(ex.targets) < len(ex.input_ids)  # the question is there, unscored
    assert loss.item() == pytest.approx(nll / count, abs=1e-5)


# ---- curve checkpoints, resume, refusal --------------------------------------------------------

def test_curve_checkpoint_equals_run_on_first_n(tmp_path, tiny_tokenizer):
    from conftest import make_llama

    pairs = positive_pairs(make_items(48))
    cfg = TrainConfig(lr=1e-2, batch_size=8)
    full = train_head(make_llama(len(tiny_tokenizer)), tiny_tokenizer, pairs, tmp_path / "full", info(), cfg, progress=False)
    assert [p.name for p in full] == ["n-000016", "n-000032", "n-000048"]
    short = train_head(make_llama(len(tiny_tokenizer)), tiny_tokenizer, pairs[:32], tmp_path / "short", info(), cfg, progress=False)
    assert_same_adapter(tmp_path / "full" / "n-000032", short[-1])
    meta = json.loads((full[0] / "likra.json").read_text())
    assert meta["n"] == 16 and meta["head"] == "positive" and meta["config"]["lora_r"] == 8
    # the adapter moved away from zero-initialised B
    assert any(v.abs().max() > 0 for k, v in lora_weights(full[0]).items() if "lora_B" in k)


@pytest.mark.parametrize("arch", ["llama", "gemma3", "qwen2"])
def test_compiled_training_matches_eager(tmp_path, tiny_tokenizer, tiny_bos_tokenizer, arch, monkeypatch):
    """torch.compile of the decoder layers changes the speed, not the training: same losses and
    adapters as eager within float rounding, batches of different lengths, the base handed back eager."""
    from conftest import MAKERS

    tok = tiny_bos_tokenizer if arch == "gemma3" else tiny_tokenizer
    make = lambda: MAKERS[arch](len(tok))  # noqa: E731
    pairs = positive_pairs(make_items(24))
    import likra.training

    runs, compiled_layers = {}, []
    real = likra.training.compile_layers
    monkeypatch.setattr(likra.training, "compile_layers", lambda lm: compiled_layers.extend(real(lm)) or compiled_layers)
    for compiled in (False, True):
        base = make()
        torch._dynamo.reset()
        torch._dynamo.utils.counters.clear()
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message="torch.compile failed")  # no silent fallback to eager
            train_head(base, tok, pairs, tmp_path / str(compiled), info(), TrainConfig(lr=1e-2, compile=compiled), progress=False)
        # the compiled run did compile: every decoder layer, into at least one graph (not eager twice)
        assert len(compiled_layers) == (len(base.get_decoder().layers) if compiled else 0)
        assert (torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0) == compiled
        assert all(layer._compiled_call_impl is None for layer in base.get_decoder().layers)
        runs[compiled] = json.loads((tmp_path / str(compiled) / "n-000024" / "likra.json").read_text())
    assert_same_adapter(tmp_path / "False" / "n-000024", tmp_path / "True" / "n-000024", tol=1e-5)
    assert abs(runs[True]["loss_last_step"] - runs[False]["loss_last_step"]) < 1e-5


@pytest.mark.parametrize("arch", ["llama", "gemma3", "qwen2"])
def test_segment_attention_matches_the_masked_row(tmp_path, tiny_tokenizer, tiny_bos_tokenizer, arch):
    """Attention per example (zero-padded batch, causal within each example) computes what the packed row's
    block-diagonal mask computes: same loss and gradients on examples of different lengths (the
    Gemma-3 ones longer than its sliding window of 8), same adapters after training, and the base
    model handed back with its own attention implementation."""
    from conftest import MAKERS

    from likra.training import use_segment_attention

    tok = tiny_bos_tokenizer if arch == "gemma3" else tiny_tokenizer
    make = lambda: MAKERS[arch](len(tok))  # noqa: E731
    pairs = positive_pairs(make_items(24))
    exs = encode_pairs(pairs[:8], tok, 2048)
    assert len({len(e.input_ids) for e in exs}) > 1
    lm = make()
    window = sliding_window(lm.config)  # Gemma-3: 8; Llama and Qwen2 (use_sliding_window false): None
    assert window is None or max(len(e.input_ids) for e in exs) > window
    grads = {}
    for mode in ("mask", "segments"):
        before = use_segment_attention(lm) if mode == "segments" else None
        assert (before is not None) == (mode == "segments")  # the segment path really runs
        lm.zero_grad()
        loss, _ = batch_loss(lm, exs, window, False)
        loss.backward()
        grads[mode] = (loss.item(), {k: p.grad.clone() for k, p in lm.named_parameters() if p.grad is not None})
        if before is not None:
            lm.set_attn_implementation(before)
    assert abs(grads["mask"][0] - grads["segments"][0]) < 1e-5
    for k, g in grads["mask"][1].items():
        assert torch.allclose(g, grads["segments"][1][k], atol=1e-5), k
    for mode in ("mask", "segments"):
        base = make()
        impl = base.config._attn_implementation
        train_head(base, tok, pairs, tmp_path / mode, info(), TrainConfig(lr=1e-2, attention=mode), progress=False)
        assert base.config._attn_implementation == impl
    assert_same_adapter(tmp_path / "mask" / "n-000024", tmp_path / "segments" / "n-000024", tol=1e-5)
    dropping = make()
    dropping.config.attention_dropout = 0.1  # the segment path has no attention dropout: the masked row is kept
    assert use_segment_attention(dropping) is None
    with pytest.raises(ValueError, match="attention 'segment'"):  # a typo is refused, not silently masked
        train_head(make(), tok, pairs, tmp_path / "typo", info(), TrainConfig(attention="segment"), progress=False)


@pytest.mark.parametrize("arch,dropout", [("llama", 0.0), ("gemma3", 0.0), ("qwen2", 0.0), ("llama", 0.25)])
def test_fused_lora_is_peft_lora(tiny_tokenizer, tiny_bos_tokenizer, arch, dropout):
    """The fused LoRA forward computes PEFT's function: same loss and LoRA gradients (scaling 2 here,
    so the alpha/r factor is exercised) on the hand-written backward (dropout 0) and on the autograd
    path (dropout: same masks from the same seed), a layer it cannot cover keeps PEFT's forward,
    and unfusing hands back PEFT's own forward."""
    from conftest import MAKERS
    from peft import LoraConfig, get_peft_model

    from likra.fused import fuse_lora, unfuse_lora

    tok = tiny_bos_tokenizer if arch == "gemma3" else tiny_tokenizer
    lm = MAKERS[arch](len(tok))
    window = sliding_window(lm.config)  # Gemma-3: 8; Llama and Qwen2 (use_sliding_window false): None
    model = get_peft_model(lm, LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout, target_modules=default_targets(lm)))
    torch.manual_seed(1)
    for name, p in model.named_parameters():
        if "lora_B" in name:  # B starts at zero: give it values so the low-rank path counts
            torch.nn.init.normal_(p, std=0.1)
    exs = encode_pairs(positive_pairs(make_items(8)), tok, 2048)
    grads = {}
    for fused_mode in (False, True):
        fused = fuse_lora(model) if fused_mode else []
        assert bool(fused) == fused_mode and all("forward" in m.__dict__ for m in fused)
        model.zero_grad()
        torch.manual_seed(5)
        loss, _ = batch_loss(model.get_base_model(), exs, window, False)
        loss.backward()
        grads[fused_mode] = (loss.item(), {k: p.grad.clone() for k, p in model.named_parameters() if p.requires_grad})
        unfuse_lora(fused)
    assert not any("forward" in m.__dict__ for m in model.modules())
    assert abs(grads[True][0] - grads[False][0]) < 1e-5
    assert set(grads[True][1]) == set(grads[False][1])
    for k, g in grads[False][1].items():
        assert torch.allclose(g, grads[True][1][k], atol=1e-6), k
    model.base_model.disable_adapter_layers()  # adapters off: PEFT's forward (the base alone) must stay
    assert fuse_lora(model) == []


def test_nan_loss_stops_without_checkpoint(tmp_path, tiny_tokenizer):
    from conftest import make_llama

    model = make_llama(len(tiny_tokenizer))
    with torch.no_grad():
        model.model.norm.weight.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="loss became nan"):
        train_head(model, tiny_tokenizer, positive_pairs(make_items(16)), tmp_path / "r", info(), progress=False)
    assert not list((tmp_path / "r").glob("n-*"))


def test_divergence_rules_by_hand():
    from likra.training import divergence

    uniform = math.log(49152)  # 10.80: SmolLM2's vocabulary
    assert divergence(10.80, [2.1], uniform, 4.0).startswith("the loss climbed back to 10.800")  # lr 1e6: step 2
    assert divergence(6.0, [6.05, 5.99], math.log(400), 4.0) is None  # a random model starts at the uniform loss
    steady = [2.0, 0.4, 2.5, 1.0] * 4  # single batches vary five-fold: no alarm
    assert divergence(2.6, steady, uniform, 4.0) is None
    assert "exceeds 4 times its lowest" in divergence(9.0, steady + [8.0] * 7, uniform, 4.0)
    assert divergence(10.8, [2.1], uniform, 0) is None  # --max-loss-ratio 0: never


def test_a_diverging_run_stops_before_the_step_and_saves_nothing_after(tmp_path, tiny_tokenizer, monkeypatch):
    import likra.training
    from conftest import make_llama

    calls = []

    def guard(loss, earlier, uniform, ratio):  # the rules are tested above; here, what the loop does when one fires
        calls.append(len(earlier))
        return "the loss diverged" if len(earlier) == 2 else None

    monkeypatch.setattr(likra.training, "divergence", guard)
    with pytest.raises(TrainingDiverged, match="the loss diverged at step 3 .*Lower --lr"):
        train_head(make_llama(len(tiny_tokenizer)), tiny_tokenizer, positive_pairs(make_items(48)), tmp_path / "r", info(),
                   TrainConfig(lr=1e-2), progress=False)
    assert sorted(p.name for p in (tmp_path / "r").glob("n-*")) == ["n-000016"]  # step 2 ended at n = 16; 3 never ran
    assert calls == [0, 1, 2]


TRAIN_SCRIPT = """
import sys
from pathlib import Path
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
sys.path.insert(0, {tests!r})
from test_training import make_items, info
from likra.negatives import positive_pairs
from likra.training import TrainConfig, train_head
model = AutoModelForCausalLM.from_pretrained({model!r})
tok = AutoTokenizer.from_pretrained({model!r})
pairs = positive_pairs(make_items({n}))
train_head(model, tok, pairs, sys.argv[1], info(), TrainConfig(lr=1e-2, state_every=1), progress=False)
"""


def test_resume_after_sigkill(tmp_path, tiny_tokenizer):
    from conftest import make_llama

    model_dir = tmp_path / "model"
    make_llama(len(tiny_tokenizer)).save_pretrained(model_dir)
    tiny_tokenizer.save_pretrained(model_dir)
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT.format(tests=str(Path(__file__).parent), model=str(model_dir), n=1200))
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false")

    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(script), str(killed)], env=env)
    deadline = time.time() + 300
    while time.time() < deadline:
        state = killed / "state.json"
        if state.exists() and json.loads(state.read_text())["step"] >= 12:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "run.json").exists(), "the run ended before it could be killed"
    from likra.training import read_train_log

    saved = json.loads((killed / "state.json").read_text())["step"]  # the step the rerun must resume from
    assert saved >= 12, "no resume state was written before the kill"
    before = read_train_log(killed)[:saved]
    subprocess.run([sys.executable, str(script), str(killed)], env=env, check=True)
    # resumed, not restarted: the killed run's first steps keep their log lines, timings included
    assert read_train_log(killed)[:saved] == before

    clean = tmp_path / "clean"
    subprocess.run([sys.executable, str(script), str(clean)], env=env, check=True)
    names = sorted(p.name for p in clean.glob("n-*"))
    assert names == sorted(p.name for p in killed.glob("n-*")) and "n-001200" in names
    for name in names:
        assert_same_adapter(clean / name, killed / name)
    logs = {d.name: read_train_log(d) for d in (clean, killed)}
    assert [r["step"] for r in logs["killed"]] == list(range(1, 151)) == [r["step"] for r in logs["clean"]]
    assert [r["loss"] for r in logs["killed"]] == pytest.approx([r["loss"] for r in logs["clean"]], abs=1e-6)


def test_trained_adapter_refused_on_other_base(tmp_path, tiny_tokenizer):
    from conftest import make_llama

    from likra.models import attach_adapters, weights_fingerprint

    base = make_llama(len(tiny_tokenizer))
    run_info = info()
    run_info.base_fingerprint = weights_fingerprint(base)
    saved = train_head(base, tiny_tokenizer, positive_pairs(make_items(16)), tmp_path / "r", run_info, progress=False)
    torch.manual_seed(123)
    other = make_llama(len(tiny_tokenizer))
    with torch.no_grad():
        other.model.embed_tokens.weight.add_(torch.randn_like(other.model.embed_tokens.weight))
    with pytest.raises(ValueError, match="different base model"):
        attach_adapters(other, {"pos": str(saved[-1])})
    attach_adapters(make_llama(len(tiny_tokenizer)), {"pos": str(saved[-1])})


# ---- training log ------------------------------------------------------------------------------

def test_train_log_records_every_step_and_reads_back(tmp_path, tiny_tokenizer):
    import importlib.util

    from conftest import make_llama

    from likra.training import read_train_log

    out = tmp_path / "r"
    train_head(make_llama(len(tiny_tokenizer)), tiny_tokenizer, positive_pairs(make_items(24)), out, info(),
               TrainConfig(lr=1e-2), progress=False)
    rows = read_train_log(out)
    assert [r["step"] for r in rows] == [1, 2, 3] and [r["examples"] for r in rows] == [8, 16, 24]
    assert all(r["lr"] == 1e-2 and r["tokens"] > 0 and r["tokens_per_s"] > 0 for r in rows)
    assert rows[-1]["loss"] == json.loads((out / "run.json").read_text())["final_loss"]
    assert [r["elapsed_s"] for r in rows] == sorted(r["elapsed_s"] for r in rows)
    assert read_train_log(out / "n-000016") == rows[:2]  # an adapter folder: the steps that made it
    assert read_train_log(tmp_path / "nothing") == []
    assert (out / "tensorboard").exists() == (importlib.util.find_spec("tensorboard") is not None)
    with open(out / "train_log.jsonl", "a") as f:
        f.write('{"step": 4, "exam')  # a line cut short by a kill
    assert read_train_log(out) == rows
    (out / "train_log.jsonl").unlink()  # a run from before the log: read from its last resume state
    assert read_train_log(out) == rows


def test_train_log_after_an_interrupted_run_has_each_step_once(tmp_path, tiny_tokenizer, monkeypatch):
    """A run stopped after step 3 whose last resume state is step 2 (n = 16) resumes from step 2:
    the log drops step 3 and ends as a clean run's does (same steps, same losses)."""
    import likra.training
    from conftest import make_llama

    from likra.training import read_train_log

    pairs, cfg = positive_pairs(make_items(48)), TrainConfig(lr=1e-2)
    clean = train_head(make_llama(len(tiny_tokenizer)), tiny_tokenizer, pairs, tmp_path / "clean", info(), cfg, progress=False)
    real = likra.training.divergence
    monkeypatch.setattr(likra.training, "divergence", lambda loss, earlier, *a: "stop" if len(earlier) == 3 else None)
    with pytest.raises(TrainingDiverged):
        train_head(make_llama(len(tiny_tokenizer)), tiny_tokenizer, pairs, tmp_path / "cut", info(), cfg, progress=False)
    assert [r["step"] for r in read_train_log(tmp_path / "cut")] == [1, 2, 3]
    assert json.loads((tmp_path / "cut" / "state.json").read_text())["step"] == 2
    first_two = read_train_log(tmp_path / "cut")[:2]
    steps_run = []  # divergence is checked once per optimizer step: it counts the steps the rerun takes
    monkeypatch.setattr(likra.training, "divergence", lambda *a, **k: steps_run.append(1) or real(*a, **k))
    train_head(make_llama(len(tiny_tokenizer)), tiny_tokenizer, pairs, tmp_path / "cut", info(), cfg, progress=False)
    assert len(steps_run) == 4  # steps 3-6: resumed from the state of step 2, not restarted
    a, b = read_train_log(tmp_path / "clean"), read_train_log(tmp_path / "cut")
    assert b[:2] == first_two  # the resumed run's first lines are the interrupted run's, timings included
    assert [r["step"] for r in b] == [1, 2, 3, 4, 5, 6] == [r["step"] for r in a]
    assert [r["loss"] for r in b] == pytest.approx([r["loss"] for r in a], abs=1e-6)
    assert [r["examples"] for r in b] == [8, 16, 24, 32, 40, 48]
    assert_same_adapter(clean[-1], tmp_path / "cut" / "n-000048")


# ---- portable adapters -------------------------------------------------------------------------

def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_adapter_is_portable_and_loads_with_plain_peft(tmp_path, tiny_tokenizer):
    """The adapter names its base by the folder's name (no machine path), carries a Hub model card, and
    gives the same logits through plain PEFT as through likra; an adapter written before this change
    (an absolute folder as its base) still loads."""
    import shutil

    from conftest import save_tiny_model
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from likra.models import attach_adapters, load_base, weights_fingerprint

    model_dir = save_tiny_model(tmp_path / "tiny-base", tiny_tokenizer)
    base = load_base(str(model_dir), device="cpu")
    run_info = RunInfo(model=str(model_dir), base_fingerprint=weights_fingerprint(base), pool="test", head="negative",
                       negatives="near-miss", seed=3, n_total=0)
    saved = train_head(base, tiny_tokenizer, negative_pairs(make_items(16), "near-miss", 3), tmp_path / "neg", run_info,
                       TrainConfig(lr=1e-2), progress=False)[-1]
    cfg = json.loads((saved / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == "tiny-base"
    card = (saved / "README.md").read_text()
    front = card.split("---")[1]
    assert "base_model: tiny-base" in front and "library_name: peft" in front and "- negative-head" in front
    assert "near-miss" in card and "seed 3" in card and "n = 16" in card and "Not scored yet" in card
    assert str(tmp_path) not in card + json.dumps(cfg)

    ids = torch.tensor([tiny_tokenizer("Question: Which gas do plants take in? Answer: oxygen")["input_ids"]])
    ours = _logits(attach_adapters(load_base(str(model_dir), device="cpu"), {"neg": str(saved)}), ids)
    plain = _logits(PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir), str(saved)).eval(), ids)
    assert torch.allclose(ours, plain, atol=1e-6)
    assert not torch.allclose(ours, _logits(AutoModelForCausalLM.from_pretrained(model_dir), ids), atol=1e-4)

    old = tmp_path / "old-style"
    shutil.copytree(saved, old)
    cfg["base_model_name_or_path"] = str(tmp_path / "some" / "machine" / "cache" / "folder")
    (old / "adapter_config.json").write_text(json.dumps(cfg))
    (old / "README.md").unlink()
    assert torch.allclose(_logits(attach_adapters(load_base(str(model_dir), device="cpu"), {"neg": str(old)}), ids), ours,
                          atol=1e-6)


def test_embedded_base_is_named_by_its_hub_id_with_its_gguf(tmp_path):
    from likra.embedded import EMBEDDED, record
    from likra.training import adapter_meta, model_card, portable_base

    assert portable_base("smollm2-135m") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert portable_base("Qwen/Qwen2.5-0.5B") == "Qwen/Qwen2.5-0.5B"  # a hub id stays
    assert portable_base(str(tmp_path)) == tmp_path.name
    run_info = RunInfo(model="smollm2-135m", base_fingerprint="f", pool="arc", head="positive", negatives=None, seed=0,
                       n_total=1024, config={"lr": 1e-4})
    meta = adapter_meta(run_info, 64)
    assert meta["base_model"] == record("smollm2-135m") and meta["base_model"]["sha256"] == EMBEDDED["smollm2-135m"].sha256
    card = model_card(meta, tmp_path / "pos" / "n-000064")
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in card and "license: apache-2.0" in card
    assert "Q4_1" in card and "SmolLM2-135M-Instruct.Q4_1.gguf" in card and '"pos/n-000064"' in card
    assert "| lr | 0.0001 |" in card


@pytest.mark.slow
def test_embedded_adapter_loads_with_plain_peft(tmp_path):
    """A head trained on the embedded SmolLM2-135M names its hub id and GGUF, and plain PEFT on the
    converted model gives likra's logits."""
    from conftest import write_quiz
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import likra
    from likra.embedded import record
    from likra.models import attach_adapters, load_base, resolve_model_path

    quiz = write_quiz(tmp_path / "quiz.jsonl", n=16)
    (saved,) = likra.train(model="smollm2-135m", pool=f"jsonl:{quiz}", role="negative", examples=16,
                           out=str(tmp_path / "neg"), quiet=True)
    assert json.loads((saved / "adapter_config.json").read_text())["base_model_name_or_path"] == \
        "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert json.loads((saved / "likra.json").read_text())["base_model"] == record("smollm2-135m")
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in (saved / "README.md").read_text()
    path = resolve_model_path("smollm2-135m")
    ids = torch.tensor([AutoTokenizer.from_pretrained(path)("Question: Which gas do plants take in?\nAnswer: oxygen")["input_ids"]])
    plain = _logits(PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(path), str(saved)).eval(), ids)
    ours = _logits(attach_adapters(load_base("smollm2-135m", device="cpu"), {"neg": str(saved)}), ids)
    assert torch.allclose(plain, ours, atol=1e-4)


def test_baseline_writes_the_heads_train_log(tmp_path, tiny_tokenizer):
    pytest.importorskip("trl")
    from conftest import save_tiny_model, write_quiz

    from likra.cli import main
    from likra.training import read_train_log

    model = save_tiny_model(tmp_path / "model", tiny_tokenizer)
    quiz = write_quiz(tmp_path / "quiz.jsonl", n=16, gold=lambda i: i % 4)
    assert main(["train", "--method", "kto", "--model", str(model), "--pool", f"jsonl:{quiz}", "--lr", "0.01",
                 "--out", str(tmp_path / "kto"), "--quiet"]) == 0
    rows = read_train_log(tmp_path / "kto")
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and [r["examples"] for r in rows] == [4, 8, 12, 16]  # 2 rows a question
    assert all(r["lr"] == 0.01 and r["tokens"] > 0 and r["tokens_per_s"] > 0 for r in rows)
    card = (tmp_path / "kto" / "n-000016" / "README.md").read_text()
    assert "base_model: model" in card and "kto baseline adapter" in card


def test_chat_template_examples_are_what_the_scorer_scores():
    """--chat-template in training: each example is the scorer's chat encoding of the same prompt and
    answer (SmolLM2-Instruct's template), and the loss falls on the answer's tokens only."""
    from likra.chat import chat_item
    from likra.models import load_tokenizer
    from likra.packing import Encoder

    tok = load_tokenizer("smollm2-135m")
    pairs = positive_pairs(make_items(4))
    for p, ex in zip(pairs, encode_pairs(pairs, tok, 2048, chat_template=True)):
        chat = chat_item(Item(id=p.question_id, contexts=(p.context,), continuations=(p.answer,), gold=0,
                              n_chars=(len(p.answer.strip()),)), tok)
        ctx, ans = Encoder(tok, move_whitespace=False).pair(chat.contexts[0], chat.continuations[0])
        assert ex.input_ids == (ctx + ans)[:-1] and ex.targets == ans and ex.start == len(ctx) - 1
        assert tok.decode(ans) == p.answer.strip() and "<|im_start|>assistant\n" in tok.decode(ex.input_ids)
    plain = encode_pairs(pairs, tok, 2048)
    assert all("<|im_start|>" not in tok.decode(ex.input_ids) for ex in plain)


def test_a_run_begun_with_the_older_fingerprint_resumes(tmp_path, tiny_tokenizer, monkeypatch):
    """Runs started before 2026-12-03 keyed their resume state with the fp32 fingerprint: they resume
    under today's bf16-rounded one, and a run on another base is still refused."""
    import likra.training
    from conftest import make_llama

    from likra.models import weights_fingerprint

    pairs, cfg, out = positive_pairs(make_items(48)), TrainConfig(lr=1e-2), tmp_path / "r"
    base = make_llama(len(tiny_tokenizer))
    old, new = info(), info()
    old.base_fingerprint, new.base_fingerprint = weights_fingerprint(base, legacy=True), weights_fingerprint(base)
    assert old.base_fingerprint != new.base_fingerprint
    real = likra.training.divergence
    monkeypatch.setattr(likra.training, "divergence", lambda loss, earlier, *a: "stop" if len(earlier) == 3 else None)
    with pytest.raises(TrainingDiverged):
        train_head(base, tiny_tokenizer, pairs, out, old, cfg, progress=False)
    monkeypatch.setattr(likra.training, "divergence", real)
    other_base, other = make_llama(len(tiny_tokenizer)), info()
    with torch.no_grad():
        other_base.model.embed_tokens.weight.add_(1.0)
    other.base_fingerprint = weights_fingerprint(other_base)
    with pytest.raises(OutputRefused, match="other settings or data"):
        train_head(other_base, tiny_tokenizer, pairs, out, other, cfg, progress=False)
    saved = train_head(make_llama(len(tiny_tokenizer)), tiny_tokenizer, pairs, out, new, cfg, progress=False)
    assert saved[-1].name == "n-000048"
    assert json.loads((saved[-1] / "likra.json").read_text())["base_fingerprint"] == new.base_fingerprint
