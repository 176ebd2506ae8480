"""Full-ranking top-K, accuracy metrics (Recall / NDCG / MRR / Hit / ...) and beyond-accuracy
measures. The one ranking code path shared by training-time validation and evaluation."""
