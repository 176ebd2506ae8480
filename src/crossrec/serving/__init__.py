"""Serving: top-K lists, fold-in of new users, new items from raw media, explanations and the
ANN index, over a trained model loaded from its artifacts. No HTTP here (``crossrec.api`` is
the FastAPI app) and no Kedro (the recommend pipeline and the API load the artifacts)."""
