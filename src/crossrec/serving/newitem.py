"""A new item from raw media, scored without retraining (cold start in production).

Uploads are checked with ingest's guard (``crossrec.data.media.media_problem``: the file must
decode, whole) plus a decoded-size limit for images (a small file can decode to gigapixels),
then encoded by the encoders and settings of ``featurize_modalities`` (the ones the model's
features came from), L2-normalised as fuse does, and fused by the trained fusion module.

Its vector follows the model's forward pass for an item without interactions: no ID embedding
(as a cold item), no user-item edges (LightGCN layers > 0 add nothing, so the ego embedding is
averaged with zeros), and, where the model propagates over the modality kNN graphs, each layer
is approximated by the mean of the previous layer's vectors of its nearest items in each
modality (the graphs are symmetric-normalised; this mean ignores the degree weights).
"""

from __future__ import annotations

import numpy as np

from crossrec.serving.catalogue import BadRequestError

#: the magic numbers of the accepted upload formats (decoders are only then tried)
IMAGE_MAGIC = {b"\x89PNG": "png", b"\xff\xd8\xff": "jpeg", b"GIF8": "gif", b"RIFF": "webp"}
AUDIO_MAGIC = {b"RIFF": "wav", b"fLaC": "flac", b"OggS": "ogg"}


def without_path(message: str, path: str, modality: str) -> str:
    """A decoder's message with the server's file path replaced by the field name: where the
    server keeps uploads is none of the client's business."""
    return message.replace(f"'{path}'", f"the {modality} upload").replace(path, f"{modality}")


def check_upload(path: str, modality: str, head: bytes, max_pixels: int) -> None:
    """Raise BadRequestError (field = modality) unless the file is an acceptable image/audio;
    the message never names the server's path of the file."""
    try:
        _check_upload(path, modality, head, max_pixels)
    except BadRequestError as err:
        raise BadRequestError(modality, without_path(str(err), path, modality)[:300]) from None


def _check_upload(path: str, modality: str, head: bytes, max_pixels: int) -> None:
    from crossrec.data.media import media_problem

    magic = IMAGE_MAGIC if modality == "image" else AUDIO_MAGIC
    if not any(head.startswith(m) for m in magic):
        raise BadRequestError(
            modality, f"{modality} upload is not one of {sorted(set(magic.values()))}"
        )
    if modality == "image":
        import warnings

        from PIL import Image

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(path) as image:
                    width, height = image.size
        except Exception as err:  # noqa: BLE001 - any decoder failure is the client's file
            raise BadRequestError(modality, f"image upload does not decode: {err}") from None
        if width * height > max_pixels:
            raise BadRequestError(
                modality,
                f"image upload decodes to {width}x{height} pixels, more than the limit of "
                f"{max_pixels} (decompression bomb?)",
            )
    problem = media_problem(path, modality)
    if problem is not None:
        raise BadRequestError(modality, f"{modality} upload: {problem}")


def _encoder(serving, modality: str):
    from crossrec.encoders.config import parse_featurize_params
    from crossrec.encoders.modalities import media_encoder, text_encoder

    key = f"encoder:{modality}"
    with serving.lock:
        if key not in serving.cache:
            config = parse_featurize_params(serving.artifacts.featurize or {})
            serving.cache[key] = (
                text_encoder(config) if modality == "text" else media_encoder(modality, config)[0]
            )
        return serving.cache[key]


def render_text(serving, fields: dict[str, str]) -> str:
    from crossrec.encoders.config import parse_featurize_params
    from crossrec.encoders.text import choose_template, render_texts

    columns = list(serving.artifacts.dataset_info.get("text_columns") or [])
    unknown = sorted(set(fields) - set(columns))
    if unknown:
        raise BadRequestError(
            "text", f"unknown text field(s) {unknown}; this dataset's text columns are {columns}"
        )
    config = parse_featurize_params(serving.artifacts.featurize or {})
    template = choose_template(config.text.templates, columns)
    return render_texts([fields], columns, template)[0]


def attribute_vector(serving, fields: dict[str, str]) -> dict[str, np.ndarray]:
    """{"attributes": vector} of a new item's structured fields, in the space the model's items
    were encoded in (the fitted ``spec``); {} when none of its values is known."""
    import pandas as pd

    from crossrec.encoders.attributes import encode_attributes

    spec = serving.artifacts.fused_item_features.get("attributes", {}).get("spec")
    if not spec:
        return {}
    row = pd.DataFrame([{"item_id": "(new item)", **{c: fields.get(c, "") for c in spec}}])
    try:
        vectors, mask = encode_attributes(row, spec)
    except ValueError as err:
        raise BadRequestError("text", str(err)) from None
    return {"attributes": vectors[0]} if mask[0] else {}


def raw_vectors(serving, fields: dict[str, str], image: str | None, audio: str | None) -> dict:
    """{modality: raw encoder vector} for the inputs given (modalities of the model only)."""
    modalities = serving.model.modalities
    out: dict[str, np.ndarray] = {}
    text = render_text(serving, fields) if any(v.strip() for v in fields.values()) else ""
    if text and "text" in modalities:
        out["text"] = _encoder(serving, "text").encode([text])[0]
    if text and "attributes" in modalities:
        out.update(attribute_vector(serving, fields))
    for modality, path in (("image", image), ("audio", audio)):
        if path is None:
            continue
        if modality not in modalities:
            raise BadRequestError(modality, f"this model has no {modality} modality ({modalities})")
        vectors, ok, reasons = _encoder(serving, modality).encode([path])
        if not ok[0]:
            raise BadRequestError(modality, f"{modality} upload: {reasons.get(0, 'undecodable')}")
        out[modality] = vectors[0]
    if not out:
        raise BadRequestError(
            "item", f"a new item needs at least one input of the model's modalities {modalities}"
        )
    return out


def new_item_vector(serving, raw: dict[str, np.ndarray], neighbours: int = 10) -> np.ndarray:
    """The serving-space vector (as ``catalogue.item_vectors`` rows) of a new item."""
    import torch

    model = serving.model
    if model.fusion is None or model.late_content:
        raise BadRequestError(
            "item",
            "this model's item vectors do not come from modality vectors alone "
            "(no content fusion, or the llm strategy): it cannot place a new item",
        )
    projector = model.fusion.tokens
    with torch.no_grad():
        tokens, unit = [], {}
        for i, name in enumerate(projector.modalities):
            if name in raw:
                vector = np.asarray(raw[name], np.float32)
                vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
                unit[name] = vector
                tokens.append(projector.projections[i](torch.from_numpy(vector)))
            else:
                tokens.append(projector.missing[i])
        ego = model.fusion.fuse_tokens(torch.stack(tokens)[None])[0]
        if model.content_mask is not None:  # content_space separate: the content half only
            ego = ego * model.content_mask[0]
        # VBPR's bias column: a new item has no ID bias, only its content's
        bias = model.content_bias(ego).reshape(1) if model.content_bias is not None else None
        vector = ego / (model.ui_layers + 1) if model.ui_layers else ego.clone()
        if model.content_channel:
            # content_path channel: the content is not in the ego; without train edges the new
            # item's channel is its own content, normalised (Recommender.content_channel_vectors)
            vector = torch.nn.functional.normalize(ego, dim=-1)
            ego = torch.zeros_like(ego)
        if model.ii_layers:
            layers = _item_graph_layers(serving)
            near = _neighbours(serving, unit, neighbours)
            # the item graph smooths what the model feeds it: ego vectors, or (item_graph_input:
            # id) ID vectors only, and a new item has no ID vector yet
            ids_only = (
                model.config.propagation.item_graph_input == "id" and model.item_id is not None
            )
            outputs = [torch.zeros_like(ego) if ids_only else ego]
            for layer in range(model.ii_layers):
                outputs.append(layers[layer][near].mean(0) if len(near) else torch.zeros_like(ego))
            vector = vector + torch.stack(outputs).mean(0)
        if model.cosine:
            vector = torch.nn.functional.normalize(vector, dim=-1)
        if model.has_bias_column:
            vector = torch.cat([vector, bias if bias is not None else vector.new_zeros(1)])
    vector = vector.numpy().astype(np.float32)
    if getattr(model, "mixed", False):  # the content model's vector placed in the mix's space
        return model.mixed_item_vector(vector)
    return vector


def _item_graph_layers(serving) -> list:
    """[P^0 x, P^1 x, ...] of the item ego embeddings over the model's item graph (cached)."""
    import torch

    with serving.lock:
        if "ii_layers" not in serving.cache:
            model = serving.model
            with torch.no_grad():
                x = model.item_ego().float()
                if model.config.propagation.item_graph_input == "id" and model.item_id is not None:
                    x = model.id_rows().float()
                layers, order = [x], model.ii_order  # the graph's own node order (large ones)
                x = x if order is None else x[order]
                for _ in range(model.ii_layers):
                    x = torch.sparse.mm(model.ii_graph, x)
                    layers.append(x if order is None else x[model.ii_inverse])
            serving.cache["ii_layers"] = layers
        return serving.cache["ii_layers"]


def _neighbours(serving, unit: dict[str, np.ndarray], k: int) -> np.ndarray:
    """Nearest catalogue items of the new item in each of its modalities (cosine)."""
    found = []
    for name, vector in unit.items():
        if name not in serving.catalogue.modality_vectors:
            continue
        vectors, mask = serving.catalogue.modality_vectors[name]
        sims = np.where(mask, vectors @ vector, -np.inf)
        top = np.argsort(-sims, kind="stable")[:k]
        found.append(top[np.isfinite(sims[top])])
    return np.unique(np.concatenate(found)) if found else np.array([], dtype=np.int64)
