"""The end-to-end demo on embedded real data (see ATTRIBUTION.md) and its helpers."""
from pathlib import Path

DEMO_DATA = Path(__file__).resolve().parent / "data"
