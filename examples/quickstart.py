"""Embed a few sentences with the default model and print their cosine-similarity matrix."""

import logging

import numpy as np

import goembed

logging.basicConfig(level=logging.INFO, format="%(message)s")

sentences = [
    "The weather is lovely today.",
    "It's so sunny outside!",
    "He drove to the stadium.",
    "A package manager installs software on Debian.",
]

model = goembed.Encoder("all-MiniLM-L6-v2")
print(model)
embeddings = model.encode(sentences, show_progress_bar=False)
print("embeddings:", embeddings.shape, embeddings.dtype)
np.set_printoptions(precision=3, suppress=True)
print("cosine similarity:")
print(model.similarity(embeddings, embeddings))
