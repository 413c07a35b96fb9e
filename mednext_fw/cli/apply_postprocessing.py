"""``mednext_apply_postprocessing -i IN -o OUT -pp postprocessing.json``: apply decided rules to a folder.

The rules come from ``mednext_find_best_configuration`` or ``mednext_predict
--determine-postprocessing``; labels and the file ending come from the ``dataset.json`` next to the
rules file (or ``--dataset-json``). Outputs keep each input's geometry; a re-run skips finished files.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mednext_fw.cli.common import run_command
from mednext_fw.errors import UsageError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mednext_apply_postprocessing",
                                description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    p.add_argument("-i", dest="input", type=Path, required=True, help="folder with predicted label maps")
    p.add_argument("-o", dest="output", type=Path, required=True, help="output folder (created)")
    p.add_argument("-pp", dest="rules", type=Path, required=True, help="postprocessing.json")
    p.add_argument("--dataset-json", type=Path, default=None,
                   help="dataset.json (default: the one next to the postprocessing file)")
    p.add_argument("--overwrite", action="store_true", help="redo files whose output exists")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from mednext_fw.inference.postprocessing import PostprocessingRules, postprocess_folder
    from mednext_fw.io.dataset_json import DatasetJson

    def run() -> None:
        rules = PostprocessingRules.load(args.rules)
        dj = args.dataset_json or args.rules.parent / "dataset.json"
        if not dj.is_file():
            raise UsageError(f"{dj}: dataset.json not found next to {args.rules}; pass --dataset-json")
        outputs = postprocess_folder(args.input, args.output, rules, DatasetJson.load(dj), args.overwrite)
        print(f"{len(outputs)} postprocessed prediction(s) in {args.output}")

    return run_command("mednext_apply_postprocessing", run)


if __name__ == "__main__":
    sys.exit(main())
