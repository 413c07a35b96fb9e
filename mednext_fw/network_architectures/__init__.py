"""Pure torch networks: MedNeXt and the 2D classifiers, found by name through NETWORKS."""
