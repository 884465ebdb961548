"""The command registry and the one strict config loader.

A command is declared next to the recipe it runs: its name, its help, a dataclass of options
(each field an ``option(...)`` with its help), and the function that runs it. The parser, the
``--help`` defaults and the YAML config loader are all derived from that dataclass, so a command's
names exist once and every command reads configs the same way: an unknown key is an error that
names it and the nearest known key, values are type-checked before anything loads, and flags
override the file, which overrides the defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

# names from neighbouring tools (HF Trainer, TRL, PEFT) that users write by habit
SYNONYMS = {"learning_rate": "lr", "per_device_train_batch_size": "batch_size", "num_train_epochs": "epochs",
            "r": "lora_r", "n": "examples", "head": "role", "num_fewshot": "shots", "fewshot": "shots"}


@dataclass(frozen=True)
class Opt:
    help: str
    flags: tuple[str, ...] = ()  # default: --field-name
    choices: tuple | None = None
    positional: bool = False
    metavar: str | None = None
    nargs: str | None = None  # "+" for a list given after one flag
    show_default: bool = True
    grows: bool = False  # a list a used --out may gain entries in (each entry's output is cached and checked alone)


def option(default: Any = None, help: str = "", **kw) -> Any:
    """A command option: a dataclass field with the help and flags the parser needs."""
    meta = {"likra": Opt(help=help, **kw)}
    if isinstance(default, list):
        return field(default_factory=lambda d=default: list(d), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    options: type  # a dataclass of option(...) fields
    run: Callable[[Any], Any]  # takes the options, prints what the user came for, returns the result
    compare: tuple[str, ...] | None = None  # settings that must match to resume in a used --out (None: all but FREE)


FREE = frozenset({"quiet", "out", "config", "overwrite", "data_dir"})  # never part of a run's settings
COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, options: type, compare: tuple[str, ...] | None = None):
    """Register the decorated function as ``likra NAME``."""
    def register(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        if name in COMMANDS:
            raise RuntimeError(f"command '{name}' is declared twice")
        COMMANDS[name] = Command(name, help, options, fn, compare)
        return fn
    return register


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _strip_optional(hint: Any) -> tuple[Any, bool]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return (args[0] if len(args) == 1 else hint), True
    return hint, False


def coerce(value: Any, hint: Any, where: str) -> Any:
    """``value`` (from YAML) as the field's type, or a ConfigError naming ``where``."""
    hint, optional = _strip_optional(hint)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where}: a value is required (null given)")
    origin = typing.get_origin(hint)
    if origin in (list, tuple):
        (inner,) = typing.get_args(hint)[:1] or (Any,)
        seq = value if isinstance(value, list) else [value]
        return [coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(seq)]
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: {value!r} is not true or false")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: {value!r} is not an integer")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)  # YAML reads 1e-4 (no dot) as a string
            except ValueError:
                pass
        raise ConfigError(f"{where}: {value!r} is not a number")
    if hint is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: {value!r} is not a string")
    return value


def field_names(options: type) -> list[str]:
    return [f.name for f in dataclasses.fields(options)]


def _unknown_key(key: str, known: list[str], where: str) -> ConfigError:
    norm = str(key).replace("-", "_")
    guess = SYNONYMS.get(norm) if SYNONYMS.get(norm) in known else None
    guess = guess or next(iter(difflib.get_close_matches(norm, known, n=1, cutoff=0.6)), None)
    hint = f"; did you mean '{guess}'?" if guess else f"; known keys: {', '.join(sorted(known))}"
    return ConfigError(f"{where}: unknown key '{key}'{hint}")


def check_values(options: type, raw: dict, where: str, in_file: bool = True) -> dict:
    """Validate a mapping of option values (names, then types) against an options dataclass."""
    hints, known = _hints(options), field_names(options)
    out = {}
    for key, value in raw.items():
        name = str(key).replace("-", "_")
        if name not in known or (in_file and name == "config"):
            raise _unknown_key(key, [k for k in known if k != "config"], where)
        choices = _opt(options, name).choices
        value = coerce(value, hints[name], f"{where}, key '{key}'")
        if choices and value is not None and value not in choices:
            raise ConfigError(f"{where}, key '{key}': {value!r} is not one of {', '.join(map(str, choices))}")
        out[name] = value
    return out


def read_yaml_mapping(path: str | Path) -> dict:
    """A YAML file that must hold a mapping; safe loading only (no Python tags)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(f"{path}: not valid YAML ({first}); only plain mappings are read") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of option: value, found a {type(raw).__name__}")
    return raw


def load_config(options: type, path: str | Path) -> dict:
    """The values of a config file, checked against the command's options."""
    return check_values(options, read_yaml_mapping(path), str(path))


def _opt(options: type, name: str) -> Opt:
    f = next(f for f in dataclasses.fields(options) if f.name == name)
    return f.metadata.get("likra") or Opt(help="")


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def option_defaults(options: type) -> dict:
    """Each option's default value."""
    return {f.name: _default(f) for f in dataclasses.fields(options)}


def add_arguments(parser: argparse.ArgumentParser, options: type) -> None:
    """One flag per option, with its default in the help; absent flags leave no value (so a
    config file's value is not overwritten by a default)."""
    hints = _hints(options)
    own = set(options.__dict__.get("__annotations__", {}))
    for f in sorted(dataclasses.fields(options), key=lambda f: f.name not in own):  # the command's own options first
        opt = f.metadata.get("likra")
        if opt is None:
            continue
        hint, _ = _strip_optional(hints[f.name])
        default = _default(f)
        shown = f" (default: {default})" if opt.show_default and default is not None and default is not False and default != [] else ""
        kw: dict[str, Any] = {"help": (opt.help + shown).replace("%", "%%"), "default": argparse.SUPPRESS}
        if opt.metavar:
            kw["metavar"] = opt.metavar
        if opt.choices:
            kw["choices"] = opt.choices
        if hint is bool:
            kw["action"] = "store_true"
            kw.pop("choices", None)
        elif typing.get_origin(hint) in (list, tuple):
            inner = (typing.get_args(hint) or (str,))[0]
            kw["type"] = inner if inner in (int, float) else str
            if opt.nargs:
                kw["nargs"] = opt.nargs
            else:
                kw["action"] = "append"  # repeatable; given on the command line, it replaces the file's list
        else:
            kw["type"] = hint if hint in (int, float) else str
        if opt.positional:
            kw["nargs"] = opt.nargs or "?"
            kw.pop("action", None)
            kw.pop("choices", None)  # argparse would test the absent default against them; check_values tests the value
            parser.add_argument(f.name, **kw)
        else:
            parser.add_argument(*(opt.flags or (f"--{f.name.replace('_', '-')}",)), dest=f.name, **kw)


def build_parser(version: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="likra", description="Likelihood-ratio language models: learn from negative examples.")
    p.add_argument("--version", action="version", version=f"likra {version}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for cmd in COMMANDS.values():
        sp = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        add_arguments(sp, cmd.options)
    return p


def parse(argv: list[str], version: str = "") -> tuple[Command, Any]:
    """The command and its options: defaults, then the ``--config`` file, then the flags."""
    ns = vars(build_parser(version).parse_args(argv))
    cmd = COMMANDS[ns.pop("command")]
    flags = check_values(cmd.options, ns, "the command line", in_file=False)
    values = load_config(cmd.options, flags["config"]) if flags.get("config") else {}
    return cmd, cmd.options(**{**values, **flags})


def settings_of(cmd: Command, options: Any) -> dict:
    """What a run's output depends on: compared when the same --out is used again."""
    values = dataclasses.asdict(options)
    keys = cmd.compare if cmd.compare is not None else [k for k in values if k not in FREE]
    return {k: values[k] for k in keys}


@dataclass
class Common:
    """Options of every command."""

    config: str | None = option(None, "YAML file of this command's options (flags override it)")
    quiet: bool = option(False, "no progress bars")


@dataclass
class Writes(Common):
    """Options of every command that writes an output folder."""

    out: str | None = option(None, "output folder: a new one, or this command's own with the same settings to resume")
    overwrite: bool = option(False, "replace what --out holds (another command's or other settings' output)")

    def require_out(self, command: str) -> Path:
        if not self.out:
            raise ConfigError(f"likra {command} needs --out (on the command line or as 'out:' in --config)")
        return Path(self.out)


def to_argv(name: str, options: Any) -> list[str]:
    """The command line that gives ``options`` back (options at their defaults are left out):
    what ``likra reproduce`` records, so that every recorded command redoes its step alone."""
    cmd = COMMANDS[name]
    argv, positional = [name], []
    own = set(cmd.options.__dict__.get("__annotations__", {}))
    for f in sorted(dataclasses.fields(cmd.options), key=lambda f: f.name not in own):
        opt, value = f.metadata.get("likra"), getattr(options, f.name)
        if opt is None or f.name == "config" or value == _default(f):
            continue
        flag = (opt.flags or (f"--{f.name.replace('_', '-')}",))[0]
        if opt.positional:
            positional += map(str, value) if isinstance(value, list) else [str(value)]
        elif isinstance(value, bool):
            argv.append(flag)  # a default-False flag given as true
        elif isinstance(value, list):
            argv += [flag, *map(str, value)] if opt.nargs else [x for v in value for x in (flag, str(v))]
        else:
            argv += [flag, str(value)]
    return argv + positional
