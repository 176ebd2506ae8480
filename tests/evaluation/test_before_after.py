"""The before-vs-after table and its one-sentence verdict."""

from __future__ import annotations

from crossrec.evaluation.before_after import before_after_section, before_after_table, verdict


def _row(model: str, kind: str, recall: float) -> dict:
    return {
        "model": model,
        "kind": kind,
        "metrics": {"test/recall@20": {"mean": recall, "std": 0.0}},
        "epoch_s": 2.0,
        "epochs": 5,
        "trainable_params": 1000,
        "seeds": 1,
    }


def test_verdict_says_plainly_whether_fine_tuning_helps_and_by_how_much():
    worse = {"rows": [_row("frozen", "frozen", 0.30), _row("lora", "finetuned", 0.27)]}
    assert verdict(worse).startswith("In this measurement fine-tuning does not help")
    assert "-0.0300 (-10.0%)" in verdict(worse)
    better = {"rows": [_row("frozen", "frozen", 0.30), _row("lora", "finetuned", 0.33)]}
    assert "fine-tuning helps" in verdict(better) and "+0.0300 (+10.0%)" in verdict(better)
    assert verdict({"rows": [_row("ids", "baseline", 0.3)]}) == ""


def test_table_has_every_slice_and_missing_values_show_as_dashes():
    table = before_after_table({"rows": [_row("frozen", "frozen", 0.3)]})
    header, _, row = table.splitlines()
    assert "test_cold N@20" in header and "trainable params" in header
    assert row.startswith("| frozen | 0.3000 | – |") and row.endswith("| 2.0 | 5 | 1,000 | 1 |")
    assert before_after_section(None) == [] and before_after_section({"rows": []}) == []
