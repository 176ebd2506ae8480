"""Frozen sparse graphs built once from features and interactions: item–item modality kNN graphs
and the normalised user–item graph (LATTICE / FREEDOM). numpy / scipy only, no Kedro."""
