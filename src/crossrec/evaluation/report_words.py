"""The report's "Words" and "Users without history" sections (metrics.json ``words`` and
``cold_users`` blocks), shared with docs/results.md."""

from __future__ import annotations

from crossrec.evaluation.report_tables import markdown_table

WORDS_KEY = "words"

#: what each row of the Words table does with the request
WORDS_ROWS = {
    "history_only": "history only (the trained model, words ignored)",
    "bm25": "words only, lexical (BM25 over the item text)",
    "dense_frozen": "words only, dense (frozen encoder)",
    "tower_frozen": "words only, query tower (frozen encoder)",
    "words_history_frozen": "words + history (frozen encoder)",
    "dense_finetuned": "words only, dense (fine-tuned encoder)",
    "words_history_finetuned": "words + history (fine-tuned encoder)",
    "mostpop_no_history": "no history: MostPop",
    "words_only_no_history": "no history: words only",
}


def _block_tables(block: dict, labels: dict[str, str], first: str) -> tuple[str, str]:
    """(mean ± std table of the block's rows, table of its paired tests) at the block's k."""
    k = block.get("k", 20)
    metrics = (f"recall@{k}", f"ndcg@{k}")
    rows = [
        [label, *(f"{block[name][m]:.4f} ± {block[name][m + '_std']:.4f}" for m in metrics)]
        for name, label in labels.items()
        if name in block
    ]
    tests = [
        [pair, *(f"{t[m]['mean_diff']:+.4f} (p = {t[m]['wilcoxon_p']:.2g})" for m in metrics)]
        for pair, t in block.get("significance", {}).items()
    ]
    return (
        markdown_table([first, *metrics], rows),
        markdown_table(["comparison", *(f"Δ {m}" for m in metrics)], tests),
    )


def words_section(words: dict | None) -> list[str]:
    """The "Words" table: requests in words on the test requests, mean ± std over seeds."""
    if not words:
        return []
    k = words.get("k", 20)
    table, tests = _block_tables(words, WORDS_ROWS, "requests ranked by")
    requests = words.get("requests", {})
    cold = words.get("cold_item_requests")
    cold_lines = []
    if cold:
        cold_rows = [
            [label, *(f"{cold[name][m]:.4f}" for m in (f"recall@{k}", f"ndcg@{k}"))]
            for name, label in WORDS_ROWS.items()
            if name in cold
        ]
        cold_lines = [
            f"The {cold['requests']} test requests that ask for cold-start items (no "
            "interaction in train):",
            "",
            markdown_table(["requests ranked by", f"recall@{k}", f"ndcg@{k}"], cold_rows),
            "",
        ]
    return [
        "## Words",
        "",
        f"{requests.get('test')} test requests in words ({requests.get('valid')} valid, "
        f"{words.get('training_pairs')} training pairs; encoder `{words.get('encoder')}`): "
        "full ranking, the user's known items masked except in the no-history rows. Blend "
        "weights chosen on the valid requests.",
        "",
        table,
        "",
        "Paired Wilcoxon over test requests (values averaged over seeds):",
        "",
        tests,
        "",
        *cold_lines,
    ]


COLD_USERS_KEY = "cold_users"

COLD_USER_ROWS = {
    "mostpop": "MostPop",
    "group_popularity": "popularity in the user's attribute group",
    "attributes_tower": "attributes as words, query tower",
    "attributes": "attributes: tower + group popularity (weights from valid)",
    "attributes_regression": "attributes: softmax regression over items (L2 from valid)",
}


def _regression_note(chosen: dict | None) -> str:
    """What validation chose for the attribute regression (L2 None: infinite, popularity)."""
    if not chosen:
        return ""
    if chosen["l2"] is None:
        return " Softmax regression: validation chose no attribute weight (MostPop)."
    pairs = ", with attribute pairs" if chosen["crosses"] else ""
    return (
        f" Softmax regression: L2 {chosen['l2']:g}{pairs}, each {chosen['weighting']} "
        "weighing 1 (chosen on valid)."
    )


def cold_users_section(block: dict | None) -> list[str]:
    """The "Users without history" table (cold-user holdout, lists from attributes)."""
    if not block:
        return []
    table, tests = _block_tables(block, COLD_USER_ROWS, "lists from")
    return [
        "## Users without history",
        "",
        f"{block['users']['test']} test users held out whole ({block['users']['valid']} valid), "
        f"recommended from {', '.join(block['described_by'])} only; every item ranked. Group "
        f"popularity shrunk towards overall popularity by {block['group_shrinkage']:g} users "
        "(chosen on valid)." + _regression_note(block.get("regression")),
        "",
        table,
        "",
        tests,
        "",
    ]
