"""A long list reaches Go in pieces (goembed._encoder._encode_fed): Go starts on the first piece
while Python packs the next ones. Here the piece sizes are made small so that a CPU call takes
that path; the vectors must be those of one call, and a failure in any piece must surface as
the same exception, leaving the Encoder usable."""

import numpy as np
import pytest

from goembed import _encoder


@pytest.fixture
def small_pieces(monkeypatch):
    monkeypatch.setattr(_encoder, "_FEED_MIN", 40)
    monkeypatch.setattr(_encoder, "_FEED_PART", 17)


def texts(corpus, n):
    return [d["text"] for d in corpus[:n]]


def test_fed_matches_one_call(model, corpus, monkeypatch):
    sents = texts(corpus, 150)
    sents[120] = sents[3]  # a duplicate in another piece
    want, cut_want = model.encode(sents, batch_size=64), model.count_tokens(sents).truncated
    calls = []
    real = _encoder._encode_fed
    monkeypatch.setattr(_encoder, "_encode_fed", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr(_encoder, "_FEED_MIN", 40)
    monkeypatch.setattr(_encoder, "_FEED_PART", 17)
    got = model.encode(sents, batch_size=64)  # chunks of 512 on the CPU: one fed chunk
    assert calls, "the fed path was not taken"
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got[120], got[3])
    assert model.count_tokens(sents).truncated.tolist() == cut_want.tolist()


def test_fed_bad_text_in_a_later_piece(model, corpus, small_pieces):
    sents = texts(corpus, 100)
    sents[70] = "lone \ud800 surrogate"
    with pytest.raises(UnicodeEncodeError, match=r"sentences\[70\]"):
        model.encode(sents, batch_size=64)
    sents[70] = "fine again"
    assert np.isfinite(model.encode(sents, batch_size=64)).all()


def test_fed_go_error_wins_over_the_refused_piece(model, corpus, small_pieces, monkeypatch):
    # When Go's encode fails while Python is still handing over pieces, the next piece is
    # refused ("the encode call has ended") and EncodeFinish returns Go's error: that error is
    # the one raised. Go's failure is simulated around the real calls.
    real = _encoder._api.call
    seen = []

    def call(name, *args):
        seen.append(name)
        if name == "EncodeFeedTexts" and seen.count(name) == 2:
            raise ValueError("the encode call has ended")
        if name == "EncodeFinish":
            try:
                real(name, *args)  # lets go of the pieces; its own error is replaced below
            except ValueError:
                pass
            raise MemoryError("out of device memory: simulated")
        return real(name, *args)

    monkeypatch.setattr(_encoder._api, "call", call)
    with pytest.raises(MemoryError, match="simulated"):
        model.encode(texts(corpus, 100), batch_size=64)
    monkeypatch.setattr(_encoder._api, "call", real)
    assert np.isfinite(model.encode(texts(corpus, 100), batch_size=64)).all()
