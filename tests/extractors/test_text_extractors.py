"""Text extractors: tokenisation, train-only vocabularies, reproducible word2vec."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np

from mmcli.extractors import build_extractor
from mmcli.extractors.text import tokenize

TRAIN = ["the red fire burns", "a red apple here", "green grass and a leaf",
         "the green frog", "blue sea and sky", "the blue ice"]
OTHER = ["zebra", "a zebra near the sea"]  # "zebra" appears only outside train

W2V = {"vector_size": 16, "epochs": 10, "seed": 3}


def test_tokenize_unicode():
    assert tokenize("Hello, WORLD! x_1 naïve Привет 東京") == \
        ["hello", "world", "x_1", "naïve", "привет", "東京"]


def test_tfidf_vocabulary_from_train_only():
    ext = build_extractor("tfidf", "text", {}).fit(TRAIN)
    assert "zebra" not in ext.vocabulary_
    assert not any("zebra" in term for term in ext.vocabulary_)
    assert "red fire" in ext.vocabulary_  # bigrams by default
    out = ext.transform(OTHER)
    np.testing.assert_array_equal(out[0], 0)
    assert out[1].sum() > 0  # "a", "the", "sea" are known


def test_tfidf_rows_are_l2_normalised():
    ext = build_extractor("tfidf", "text", {"ngram_max": 1}).fit(TRAIN)
    out = ext.transform(TRAIN)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    assert ext.dim_ == len(ext.vocabulary_) == len({t for s in TRAIN for t in tokenize(s)})


def test_tfidf_max_features():
    ext = build_extractor("tfidf", "text", {"max_features": 5}).fit(TRAIN)
    assert ext.dim_ == 5
    assert ext.transform(OTHER).shape == (2, 5)


def test_tfidf_empty_train_vocabulary():
    ext = build_extractor("tfidf", "text", {}).fit(["!!!", "..."])
    assert ext.dim_ == 1
    np.testing.assert_array_equal(ext.transform(["hello"]), [[0.0]])


def test_word2vec_vocabulary_from_train_only():
    ext = build_extractor("word2vec", "text", W2V).fit(TRAIN)
    assert "zebra" not in ext.words_
    assert set(ext.words_) == {t for s in TRAIN for t in tokenize(s)}
    out = ext.transform(OTHER)
    np.testing.assert_array_equal(out[0], 0)
    # known words are averaged, the unknown one is skipped
    index = {w: k for k, w in enumerate(ext.words_)}
    expected = ext.vectors_[[index[w] for w in ("a", "the", "sea")]].mean(axis=0)
    np.testing.assert_allclose(out[1], expected, rtol=1e-6)


def test_word2vec_seed_matters():
    a = build_extractor("word2vec", "text", W2V).fit(TRAIN)
    b = build_extractor("word2vec", "text", {**W2V, "seed": 4}).fit(TRAIN)
    assert not np.array_equal(a.vectors_, b.vectors_)


def test_word2vec_no_tokens_in_train():
    ext = build_extractor("word2vec", "text", W2V).fit(["...", ""])
    assert ext.dim_ == 16
    np.testing.assert_array_equal(ext.transform(["the sea"]), np.zeros((1, 16)))


_SCRIPT = """
import hashlib, json, sys
from mmcli.extractors import build_extractor
params, train, other = json.loads(sys.argv[1])
ext = build_extractor("word2vec", "text", params).fit(train)
out = ext.transform(train + other)
print(hashlib.sha256(out.tobytes()).hexdigest())
"""


def test_word2vec_reproducible_across_processes():
    """Python's str hash is salted per process; training must not depend on it."""
    arg = json.dumps([W2V, TRAIN, OTHER])
    procs = [
        subprocess.Popen([sys.executable, "-c", _SCRIPT, arg], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONHASHSEED": seed})
        for seed in ("1", "2")
    ]
    ext = build_extractor("word2vec", "text", W2V).fit(TRAIN)
    here = hashlib.sha256(ext.transform(TRAIN + OTHER).tobytes()).hexdigest()
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        results.append(stdout.strip())
    assert results == [here, here]
