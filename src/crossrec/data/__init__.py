"""Raw multimodal recommendation data: adapters, validation, k-core, splits, summary, synthetic
data. Knows nothing of Kedro; the ingest pipeline's nodes call it."""
