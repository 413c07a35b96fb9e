"""The console scripts switch on torch's huge-page allocations before torch is first imported."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

# Imports a CLI module, recording THP_MEM_ALLOC_ENABLE at the moment torch is first imported.
PROBE = """
import builtins, os, sys
orig = builtins.__import__
seen = {}
def probe(name, *args, **kwargs):
    if name.split('.')[0] == 'torch' and 'value' not in seen and 'torch' not in sys.modules:
        seen['value'] = os.environ.get('THP_MEM_ALLOC_ENABLE')
    return orig(name, *args, **kwargs)
builtins.__import__ = probe
import mednext_fw.cli.MODULE
import torch  # the CLI's own (possibly lazy) import of torch, if the module did not import it yet
print(seen.get('value'))
"""


def _value_seen_by_torch(module: str, preset: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    if preset is not None:
        env["THP_MEM_ALLOC_ENABLE"] = preset
    out = subprocess.run([sys.executable, "-c", PROBE.replace("MODULE", module)], env=env, capture_output=True,
                         text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("module", ["predict", "train"])
def test_huge_pages_on_before_torch_loads(module):
    assert _value_seen_by_torch(module, None) == "1"


def test_user_opt_out_is_kept():
    assert _value_seen_by_torch("predict", "0") == "0"
