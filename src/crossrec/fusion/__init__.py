"""Fusion of modalities with collaborative structure: kNN item graphs, the user–item graph and the
LLM item encoder (``crossrec.fusion.llm``). Plain modules, no Kedro."""
