"""Embed a corpus with Ray Data: one goembed Encoder per worker (docs/RAY.md).

    python examples/ray_embed.py --input corpus.jsonl.gz --output emb_parquet/ --workers 2

`embed(ds, ...)` is the recipe: `Dataset.map_batches` with a callable class, so each of the
`workers` actors loads the model once and then embeds batch after batch. Rows keep their order
(and every other column, e.g. an id) and gain an "embedding" column of float32 vectors.
"""

from __future__ import annotations

import argparse

import numpy as np


class GoembedEmbedder:
    """A Ray Data callable class: loads the model in the worker, embeds one batch per call."""

    def __init__(self, model: str = "all-MiniLM-L6-v2", device: str = "auto", text_column: str = "text",
                 **encode_kwargs):
        import goembed  # in the worker process: one Go runtime and one model per actor

        self.encoder = goembed.Encoder(model, device=device)
        self.text_column = text_column
        self.encode_kwargs = encode_kwargs

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = batch[self.text_column].tolist()
        batch["embedding"] = self.encoder.encode(texts, **self.encode_kwargs)  # (rows, dim) float32
        return batch


def embed(ds, model: str = "all-MiniLM-L6-v2", workers: int = 1, rows_per_call: int = 1024,
          device: str = "auto", text_column: str = "text", num_cpus: float = 1, num_gpus: float = 0,
          **encode_kwargs):
    """Add an "embedding" column to a Ray Dataset with `workers` goembed actors.

    rows_per_call is the rows Ray hands an actor per call (map_batches' batch_size); encode then
    sorts them by length and runs forwards of encode_kwargs' batch_size (default 32); num_cpus / num_gpus reserve that much
    of a node per actor (num_gpus=1 with device="cuda" puts one actor on each GPU). Output rows
    come in input order because Ray Data is told to preserve it.
    """
    from ray.data import ActorPoolStrategy

    out = ds.map_batches(
        GoembedEmbedder, compute=ActorPoolStrategy(size=workers),
        fn_constructor_kwargs=dict(model=model, device=device, text_column=text_column, **encode_kwargs),
        batch_size=rows_per_call, batch_format="numpy", num_cpus=num_cpus, num_gpus=num_gpus,
    )
    # a Dataset executes with the DataContext it was made with (a copy of the current one)
    out.context.execution_options.preserve_order = True
    return out


def main() -> None:
    import ray

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", required=True, help="JSON lines, optionally .gz, with a text field")
    ap.add_argument("--output", required=True, help="folder for Parquet files (embedding as a tensor column)")
    ap.add_argument("--model", default="all-MiniLM-L6-v2")
    ap.add_argument("--field", default="text")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=32, help="sequences per forward pass")
    ap.add_argument("--address", default=None, help="Ray cluster address (default: start a local one)")
    args = ap.parse_args()

    ray.init(address=args.address)
    ds = ray.data.read_json(args.input)
    out = embed(ds, model=args.model, workers=args.workers, device=args.device, text_column=args.field,
                batch_size=args.batch_size)
    out.write_parquet(args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
