"""Why item X for user U: the model's score split into additive parts.

The final item vector is linear in the ego embeddings (LightGCN and item-graph propagation are
sparse matrix products), and an item's ego embedding = its ID embedding + its fused content. So
``item_vector = A(user_ego, id) + A(0, content)`` with A the propagation; the content is split
over modalities by exact Shapley values of the fusion module, with "modality absent" = the
model's learned missing vector for it (what the model uses for items without that input):
``content = fuse(no modality) + sum_m phi_m``. Hence

    score(U, X) = collaborative + content_baseline + sum over modalities of modality parts

exactly (up to float32 rounding); for a cosine-trained model each part is divided by the item
vector's norm. A late (LLM) content vector is one part, ``llm_content``; VBPR's item biases
(``model.id_bias`` / ``content_bias``) are the parts ``id_bias`` and ``content_bias``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np


def _shapley_content(fusion, tokens, missing) -> tuple[list, object]:
    """(per-modality Shapley parts, baseline) of ``fusion.fuse_tokens`` over modality tokens;
    tokens (n, M, d), missing (M, d). Parts + baseline = fuse_tokens(tokens)."""
    import torch

    n, m, _ = tokens.shape

    def value(subset: tuple[int, ...]) -> torch.Tensor:
        keep = torch.zeros(m, dtype=torch.bool)
        keep[list(subset)] = True
        mixed = torch.where(keep[None, :, None], tokens, missing[None].expand(n, -1, -1))
        return fusion.fuse_tokens(mixed)

    values = {s: value(s) for r in range(m + 1) for s in itertools.combinations(range(m), r)}
    parts = []
    for j in range(m):
        phi = torch.zeros_like(values[()])
        others = [i for i in range(m) if i != j]
        for r in range(m):
            weight = math.factorial(r) * math.factorial(m - r - 1) / math.factorial(m)
            for s in itertools.combinations(others, r):
                phi += weight * (values[tuple(sorted((*s, j)))] - values[s])
        parts.append(phi)
    return parts, values[()]


def item_vector_parts(model) -> tuple[list[str], np.ndarray]:
    """(part names, (n_parts, n_items, d) array) whose sum over parts is every item's final
    vector (before cosine normalisation)."""
    import torch

    from crossrec.models.graph_ops import propagate_mean

    with torch.no_grad():
        n_items, dim = model.n_items, model.config.embedding_dim
        zeros = torch.zeros(n_items, dim)
        id_part = model.id_rows() if model.item_id is not None else zeros
        names, ego = ["collaborative"], [id_part]
        fusion = model.fusion
        channel = getattr(model, "content_channel", False)
        if fusion is not None and not model.late_content and not channel:
            tokens = fusion.tokens(None)
            phis, base = _shapley_content(fusion, tokens, fusion.tokens.missing)
            if model.content_mask is not None:  # content_space separate: the content half
                phis, base = [phi * model.content_mask for phi in phis], base * model.content_mask
            if not model.output_gate:  # model.content_gate: each item's share of content
                gate = model.gate("content")
                phis, base = [phi * gate for phi in phis], base * gate
            names += ["content_baseline", *fusion.tokens.modalities]
            ego += [base, *phis]
        items_ego = sum(ego[1:], ego[0])
        users_ego = model.user_ego(items_ego)
        users = [users_ego] + [torch.zeros_like(users_ego)] * (len(ego) - 1)
        stacked_items = torch.cat(ego, dim=1)  # (n_items, K*d): propagation is column-wise
        stacked_users = torch.cat(users, dim=1)
        out = stacked_items
        if model.ui_layers:
            both = propagate_mean(
                model.ui_graph,
                model.ui_graph_t,
                torch.cat([stacked_users, stacked_items]),
                model.ui_layers,
            )
            out = both[model.n_users :]
        if model.output_gate:  # content_gate stage output: the items' propagated content scaled
            out = out.view(n_items, len(ego), dim)
            out = torch.cat([out[:, :1], out[:, 1:] * model.gate("content")[:, None]], dim=1)
            out = out.reshape(n_items, -1)
        if model.ii_layers:
            source = stacked_items
            if model.config.propagation.item_graph_input == "id" and model.item_id is not None:
                # the item graph smooths the ID part only (as Recommender.embeddings does)
                source = torch.cat([id_part, *[torch.zeros_like(e) for e in ego[1:]]], dim=1)
            out = out + model.smooth_items(source) * model.gate("item_graph")
        parts = out.view(n_items, len(ego), dim).permute(1, 0, 2)
        if channel:
            # content_path channel: the content is its own normalised channel, one part (its
            # normalisation is not additive over modalities)
            _, content_items = model.content_channel_vectors(model.ui_graph, model.ui_graph_t)
            content_items = content_items * model.gate("content")
            parts = torch.cat([parts, content_items[None]])
            names.append("content_channel")
        if model.late_content:
            late = fusion.encode_all(n_items, parts.device)
            parts = torch.cat([parts, late[None]])
            names.append("llm_content")
        if model.has_bias_column:
            parts, extra = _bias_parts(model, parts)
            names += extra
        return names, parts.float().numpy()


def _bias_parts(model, parts):
    """Parts padded with the bias column (0), plus one part per VBPR bias that holds it alone:
    the user side of that column is 1, so each part's score is the bias itself."""
    import torch

    n_items = parts.shape[1]
    padded = torch.cat([parts, parts.new_zeros(len(parts), n_items, 1)], dim=2)
    biases, names = [], []
    if model.id_bias is not None:
        biases.append((model.id_bias.weight * model.item_id_seen).squeeze(1))
        names.append("id_bias")
    if model.content_bias is not None:
        biases.append(model.content_bias(model.content_table()).squeeze(1))
        names.append("content_bias")
    columns = [padded.new_zeros(n_items, parts.shape[2] + 1) for _ in biases]
    for column, bias in zip(columns, biases, strict=True):
        column[:, -1] = bias
    return torch.cat([padded, torch.stack(columns)]), names


def score_parts(
    user_vector: np.ndarray, parts: np.ndarray, cosine: bool
) -> tuple[np.ndarray, float]:
    """(per-part scores, total) of one user for one item: ``parts`` (n_parts, d) of the item.
    ``user_vector`` is the serving vector (already normalised for a cosine model)."""
    contributions = parts.astype(np.float64) @ user_vector.astype(np.float64)
    if cosine:
        contributions = contributions / max(np.linalg.norm(parts.sum(0)), 1e-12)
    return contributions, float(contributions.sum())


def history_contributors(
    item_vectors: np.ndarray, history: np.ndarray, item_idx: int, limit: int
) -> list[tuple[int, float]]:
    """The user's history items closest to the item by the model's item vectors (cosine):
    "because you liked ...". The item itself is never among them (it may be in the history
    when seen items are not excluded; "you liked X because you liked X" explains nothing)."""
    history = history[history != item_idx]
    if not len(history):
        return []
    unit = item_vectors / np.maximum(np.linalg.norm(item_vectors, axis=1, keepdims=True), 1e-12)
    sims = unit[history] @ unit[item_idx]
    order = np.lexsort((history, -sims))[:limit]
    return [(int(history[i]), float(sims[i])) for i in order]


def template_sentence(
    title: str,
    user: str,
    parts: dict[str, float],
    weights: dict[str, float] | None,
    because: list[str],
) -> str:
    """One plain sentence from the explanation's numbers."""
    total = sum(parts.values())
    reason = " and ".join(_drivers(parts)) or "no single signal"
    sentence = (
        f"{title} is recommended to user {user} (score {total:.3f}) mostly because of {reason}"
    )
    if weights:
        top = max(weights, key=weights.get)
        sentence += f"; the model weighs this item's {top} most ({weights[top]:.0%})"
    if because:
        sentence += f"; it is close to {', '.join(because[:3])}, which this user liked"
    return sentence + "."


def _drivers(parts: dict[str, float], limit: int = 2) -> list[str]:
    """The largest positive parts, as words."""
    ranked = sorted(parts.items(), key=lambda kv: -kv[1])
    return [_label(name) for name, value in ranked if value > 0][:limit]


def _label(part: str) -> str:
    return {
        "collaborative": "what similar users liked (collaborative signal)",
        "content_baseline": "the model's content prior",
        "llm_content": "its text as read by the LLM",
        "id_bias": "its popularity",
        "content_bias": "how popular items like it are",
        "id_twin": "what similar users liked (the ID-only twin)",
        "centring": "the user's mean score (subtracted)",
    }.get(part, f"its {part}")


#: the prompt's section labels, in order: the recommended item and the user's history are
#: separate, labelled sections so a small model cannot read one as the other
PROMPT_SECTIONS = ("RECOMMENDED ITEM", "WHY THE MODEL CHOSE IT", "USER'S HISTORY")


def prompt_history(title: str, because: list[str], limit: int = 3) -> list[str]:
    """History titles for the prompt: never the recommended item's own title."""
    wanted = title.strip().casefold()
    return [b for b in because if b.strip().casefold() != wanted][:limit]


def llm_prompt(title: str, parts: dict[str, float], because: list[str]) -> str:
    """The instruction for the explanation model: the recommended item, the reasons and the
    user's history in labelled sections, the item kept out of the history."""
    drivers = _drivers(parts) or ["no single signal"]
    history = prompt_history(title, because)
    history_lines = "\n".join(f"- {h}" for h in history) or "- (nothing similar)"
    recommended, why, past = PROMPT_SECTIONS
    return (
        "You write one friendly sentence telling a user why an item is recommended to them.\n\n"
        f"{recommended} (the item to explain):\n- {title}\n\n"
        f"{why}:\n" + "\n".join(f"- {d}" for d in drivers) + "\n\n"
        f"{past} (items the user liked before, similar to the recommended item):\n"
        f"{history_lines}\n\n"
        'Write one sentence addressed to the user: "You may enjoy <recommended item> because you '
        'liked <items of the history>". Never say the user liked the recommended item. '
        "No numbers."
    )


def answer_start(title: str, because: list[str]) -> str:
    """The words the model's answer is made to begin with: the recommended item is named as
    what the user may enjoy, and the closest history item as what they liked, before the model
    writes a word, so the two cannot swap (a small model otherwise often swaps them)."""
    history = prompt_history(title, because, 1)
    if not history:
        return f"You may enjoy {title} because"
    return f"You may enjoy {title} because you liked {history[0]}"


def llm_sentence(
    prompt: str, model_name: str, cache: dict, start: str = "", max_new_tokens: int = 60
) -> str:
    """The packaged instruction model's sentence for ``prompt`` (greedy, deterministic),
    its answer begun with ``start``; the first line of the answer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from crossrec.encoders.zoo import resolve_model

    if "llm" not in cache:
        path = resolve_model(model_name)
        cache["llm"] = (
            AutoTokenizer.from_pretrained(path),
            AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval(),
        )
    tokenizer, llm = cache["llm"]
    messages = [{"role": "user", "content": prompt}]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = tokenizer(text + start, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        out = llm.generate(ids, max_new_tokens=max_new_tokens, do_sample=False)
    rest = tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
    answer = (start + rest).strip()
    return answer.splitlines()[0].strip() if answer else answer
