"""Thin argparse front ends, one per console script. Nothing imports this package."""
