"""Shared fixtures: tiny random-weight models built from configs (no download) and a tokenizer
trained on the spot, plus the location of the real benchmark files for parity tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
TOKENIZER_TEXT = [
    "Question: Which gas do plants take in from the air? Answer: carbon dioxide oxygen nitrogen water",
    "A man is sitting on a roof. He is using wrap to wrap a pair of skis. Sarah was a much better surgeon",
    "The following are multiple choice questions (with answers) about anatomy. A. B. C. D.",
    "the of and to in is was for on that with as by at from it an be this which or are",
] * 20


def shared_data_dir() -> Path | None:
    """The real benchmark files: LIKRA_DATA_DIR, or ../shared/data beside the checkout."""
    for cand in (os.environ.get("LIKRA_DATA_DIR"), REPO.parent / "shared" / "data"):
        if cand and (Path(cand) / "arc").is_dir():
            return Path(cand)
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = shared_data_dir()
    if d is None:
        pytest.skip("real benchmark files not found (set LIKRA_DATA_DIR or put them in ../shared/data)")
    return d


def make_tokenizer(add_bos: bool):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<pad>", "<bos>", "<eos>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(TOKENIZER_TEXT, trainer)
    if add_bos:
        tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>")


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return make_tokenizer(add_bos=False)


@pytest.fixture(scope="session")
def tiny_bos_tokenizer():
    return make_tokenizer(add_bos=True)


def make_llama(vocab: int, max_pos: int = 256):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=max_pos, bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )
    return LlamaForCausalLM(cfg).eval()


def make_gemma3(vocab: int, window: int = 8):
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    cfg = Gemma3TextConfig(
        vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, sliding_window=window, layer_types=["sliding_attention", "full_attention"],
        max_position_embeddings=512, bos_token_id=1, eos_token_id=2, pad_token_id=0, query_pre_attn_scalar=16,
    )
    return Gemma3ForCausalLM(cfg).eval()


def make_qwen2(vocab: int, max_pos: int = 256):
    """Qwen2's differences from Llama that matter here: biases on q/k/v, an untied output layer."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    cfg = Qwen2Config(
        vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=max_pos, bos_token_id=1, eos_token_id=2, pad_token_id=0,
        tie_word_embeddings=False, use_sliding_window=False,
    )
    model = Qwen2ForCausalLM(cfg).eval()
    with torch.no_grad():  # biases start at zero: give them values so that they count
        for layer in model.model.layers:
            for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                proj.bias.normal_(std=0.5)
    return model


MAKERS = {"llama": make_llama, "gemma3": make_gemma3, "qwen2": make_qwen2}


@pytest.fixture(scope="session")
def tiny_llama(tiny_tokenizer):
    return make_llama(len(tiny_tokenizer))


@pytest.fixture(scope="session")
def tiny_gemma3(tiny_bos_tokenizer):
    return make_gemma3(len(tiny_bos_tokenizer))


def save_tiny_model(folder: Path, tokenizer, max_pos: int = 256) -> Path:
    """A tiny random Llama and its tokenizer saved as a model folder, as ``--model`` reads it."""
    make_llama(len(tokenizer), max_pos=max_pos).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_quiz(path: Path, n: int = 20, gold=lambda i: 0, extra=lambda i: "") -> Path:
    """A jsonl task of ``n`` four-option questions (``gold(i)`` the answer index)."""
    import json

    rows = [{"id": f"q{i}", "question": f"Which gas number {i} do plants take in{extra(i)}?",
             "choices": [f"carbon dioxide {i}", "oxygen", f"helium {i}", "water"], "answer": gold(i)} for i in range(n)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


@pytest.fixture()
def tiny_model_dir(tmp_path, tiny_tokenizer) -> Path:
    return save_tiny_model(tmp_path / "model", tiny_tokenizer)


@pytest.fixture()
def quiz(tmp_path) -> Path:
    return write_quiz(tmp_path / "quiz.jsonl")


def error_line(argv: list[str], capsys, *names) -> str:
    """Run a command that must fail as a user error: exit 2, one line naming each of ``names``."""
    from likra.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert len(lines) == 1, err
    for name in names:
        assert str(name) in lines[0], f"{name!r} not in: {lines[0]}"
    return lines[0]
