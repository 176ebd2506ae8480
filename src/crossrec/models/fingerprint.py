"""A content hash of a trained model: serving writes it beside every recommendation, and a
refresh chain records the one it started from (``crossrec.refresh.state``)."""

from __future__ import annotations

import hashlib
import io

import numpy as np


def model_fingerprint(bundle: dict) -> str:
    """Content hash of a trained_model bundle's weights and config: the same model gets the
    same fingerprint wherever it is loaded (written beside every recommendation). A mix
    (``content_mix``) hashes its twin and chosen point too."""
    digest = hashlib.sha256()
    _hash_into(digest, bundle)
    mix = bundle.get("content_mix")
    if mix:
        digest.update(repr(sorted(mix["choice"].items())).encode())
        _hash_into(digest, mix["twin"])
    return digest.hexdigest()[:16]


def _hash_into(digest, bundle: dict) -> None:
    digest.update(repr(sorted(bundle.get("config", {}).items())).encode())
    for name in sorted(bundle["state_dict"]):
        buffer = io.BytesIO()
        np.save(buffer, bundle["state_dict"][name].detach().cpu().float().numpy())
        digest.update(name.encode())
        digest.update(buffer.getvalue())
