"""Dataset fingerprint -> plans (spacing, patch, batch, MedNeXt variant, normalisation)."""
