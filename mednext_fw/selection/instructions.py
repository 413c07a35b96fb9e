"""``inference_instructions.txt``: the exact commands that reproduce the chosen model on new images.

Lines starting with ``#`` explain; every other line is a command to run as written from a folder
holding ``INPUT_FOLDER`` (or with the upper-case names replaced by your paths).
"""
from __future__ import annotations

import shlex
from typing import Any, Sequence

INPUT = "INPUT_FOLDER"


def predict_command(dataset: str, member: dict[str, Any], folds: Sequence[str], output: str,
                    probabilities: bool) -> str:
    cmd = ["mednext_predict", "-d", dataset, "-c", member["configuration"], "-tr", member["trainer"],
           "-f", *folds, "-i", INPUT, "-o", output, "--no-postprocessing"]
    if probabilities:
        cmd.append("--save-probabilities")
    return shlex.join(cmd)


def commands(info: dict[str, Any]) -> list[str]:
    best, folds, dataset = info["best"], [str(f) for f in info["folds"]], info["dataset"]
    members = best["members"]
    lines = []
    if len(members) == 1:
        lines.append(predict_command(dataset, members[0], folds, "OUTPUT_FOLDER", False))
        raw = "OUTPUT_FOLDER"
    else:
        outs = [f"OUTPUT_FOLDER_MODEL_{i + 1}" for i in range(len(members))]
        lines += [predict_command(dataset, m, folds, o, True) for m, o in zip(members, outs)]
        lines.append(shlex.join(["mednext_ensemble", "-i", *outs, "-o", "OUTPUT_FOLDER_ENSEMBLE"]))
        raw = "OUTPUT_FOLDER_ENSEMBLE"
    lines.append(shlex.join(["mednext_apply_postprocessing", "-i", raw, "-o", "OUTPUT_FOLDER_PP",
                             "-pp", best["postprocessing_file"]]))
    return lines


def instructions_text(info: dict[str, Any]) -> str:
    best = info["best"]
    head = [f"# mednext_find_best_configuration -d {info['dataset']}: folds {' '.join(map(str, info['folds']))}, "
            f"{len(info['cases'])} cross-validation case(s), ranked by foreground mean Dice",
            "#"]
    for c in info["candidates"]:
        mark = "  <- best" if c["name"] == best["name"] else ""
        head.append(f"#   {c['name']:<60} Dice {c['Dice']:.4f}  NSD {c['NSD']:.4f}{mark}")
    pp = best["postprocessing"]
    head += ["#",
             f"# Chosen: {best['name']}. Postprocessing: largest foreground component "
             f"{'on' if pp['largest_foreground_component'] else 'off'}, largest component per class "
             f"{pp['largest_component_per_class'] or 'none'}; Dice {best['Dice']:.4f} -> "
             f"{best['Dice_postprocessed']:.4f}.",
             f"# Run from a folder holding {INPUT} (your images, CASE_0000.nii.gz ...), or replace the upper-case "
             "names with your paths. The final label maps are in OUTPUT_FOLDER_PP.", ""]
    return "\n".join(head + commands(info)) + "\n"
