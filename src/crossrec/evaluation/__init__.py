"""Full-ranking evaluation shared by ``finetune`` (validation) and ``evaluate`` (test)."""
