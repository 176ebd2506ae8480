"""Requests in words: what a user says they want, matched with the catalogue and blended with
what they did before.

* :mod:`.lexical` — BM25 over the item text (words only, no training);
* :mod:`.encoder` — the words encoder (a text encoder: frozen, or fine-tuned contrastively on
  (words, item text) pairs with in-batch negatives);
* :mod:`.tower` — the query tower: encoded words -> the trained recommender's item space;
* :mod:`.blend` — per-request standardised scores mixed with weights chosen on validation.

Nothing here knows Kedro, the HTTP app or how requests were collected (``crossrec.data.words``).
"""
