"""The ``likra`` command: parse (every command is an entry of ``likra.command.COMMANDS``, declared
beside its recipe), claim the output folder, run, record. likra's own errors print in one line with
exit code 2; anything else is a bug and keeps its traceback."""

from __future__ import annotations

import os
import sys

from .defaults import __version__


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["lm-eval"]:  # lm-eval's own command line, with the likra model type registered
        from .lm_eval_plugin import main as lm_eval_main

        lm_eval_main(argv[1:])
        return 0
    from . import experiments, model_store, reproduce, serve  # noqa: F401  (declare the commands)
    from .command import parse
    from .errors import LikraError

    name = argv[0] if argv and not argv[0].startswith("-") else "likra"
    try:
        cmd, options = parse(argv, __version__)
        from .distributed import init_from_env, sharding_requested

        rank, _ = init_from_env()  # a no-op unless started by a launcher (accelerate launch, torchrun)
        if sharding_requested() and rank == 0 and not (cmd.name == "train" and options.method != "likra"):
            print(f"likra {cmd.name}: warning: the launcher asked for {sharding_requested()}, which only the TRL baselines "
                  "(likra train --method dpo|kto) use; this command runs plain data parallel with a full model "
                  "copy per process (configs/accelerate/multi-gpu.yaml is its config)", file=sys.stderr)
        from .experiments.runs import run_in_folder

        run_in_folder(cmd, options, argv, claim=rank == 0 and not getattr(options, "dry_run", False))
    except LikraError as err:
        print(f"likra {name}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
