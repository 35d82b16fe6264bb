"""goembed: sentence embeddings from a Go engine, in-process, shaped like sentence-transformers.

    import goembed
    model = goembed.Encoder("all-MiniLM-L6-v2")
    embeddings = model.encode(["The weather is lovely today.", "It's so sunny outside!"])
"""

from ._encoder import Encoder, TokenCounts, devices

__version__ = "0.1.0"
__all__ = ["Encoder", "TokenCounts", "devices", "__version__"]
