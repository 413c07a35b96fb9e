"""``mednext_apply_postprocessing -i IN -o OUT -pp postprocessing.json``: apply decided rules to a folder.

The rules come from ``mednext_find_best_configuration`` or ``mednext_predict
--determine-postprocessing``; labels and the file ending come from the ``dataset.json`` next to the
rules file (or ``--dataset-json``). Outputs keep each input's geometry; a re-run skips finished files.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


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

    try:
        rules = PostprocessingRules.load(args.rules)
        dj = args.dataset_json or args.rules.parent / "dataset.json"
        if not dj.is_file():
            raise FileNotFoundError(f"{dj}: dataset.json not found next to {args.rules}; pass --dataset-json")
        outputs = postprocess_folder(args.input, args.output, rules, DatasetJson.load(dj), args.overwrite)
    except (ValueError, FileNotFoundError) as exc:
        print(f"mednext_apply_postprocessing: error: {exc}", file=sys.stderr)
        return 1
    print(f"{len(outputs)} postprocessed prediction(s) in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
