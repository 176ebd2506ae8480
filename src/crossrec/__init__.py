"""crossrec: a multimodal LLM recommender built as Kedro pipelines."""

__version__ = "0.1.0"
