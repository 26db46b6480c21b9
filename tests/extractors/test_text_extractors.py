"""Text extractors: tokenisation, train-only vocabularies, reproducible word2vec."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mmcli.errors import UsageError
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
    ext = build_extractor("tfidf", "text", {"svd_components": 0, "chars": "off"}).fit(TRAIN)
    assert "zebra" not in ext.vocabulary_
    assert not any("zebra" in term for term in ext.vocabulary_)
    assert "red fire" in ext.vocabulary_  # bigrams by default
    out = ext.transform(OTHER)
    np.testing.assert_array_equal(out[0], 0)
    assert out[1].sum() > 0  # "a", "the", "sea" are known


def test_tfidf_rows_are_l2_normalised():
    ext = build_extractor("tfidf", "text", {"ngram_max": 1, "svd_components": 0,
                                            "chars": "off"}).fit(TRAIN)
    out = ext.transform(TRAIN)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    assert ext.dim_ == len(ext.vocabulary_) == len({t for s in TRAIN for t in tokenize(s)})


def test_tfidf_max_features():
    ext = build_extractor("tfidf", "text", {"max_features": 5, "svd_components": 0,
                                            "chars": "off"}).fit(TRAIN)
    assert ext.dim_ == 5
    assert ext.transform(OTHER).shape == (2, 5)


def test_tfidf_empty_train_vocabulary():
    ext = build_extractor("tfidf", "text", {"chars": "off"}).fit(["!!!", "..."])
    assert ext.dim_ == 1
    np.testing.assert_array_equal(ext.transform(["hello"]), [[0.0]])
    # its state saves and loads (getting it raised AttributeError: no svd_)
    state, arrays = ext.get_state()
    again = type(ext).from_state(json.loads(json.dumps(state)), arrays)
    np.testing.assert_array_equal(again.transform(["hello", "..."]), [[0.0], [0.0]])


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
cases, train, other = json.loads(sys.argv[1])
for name, params in cases:
    ext = build_extractor(name, "text", params).fit(train)
    print(hashlib.sha256(ext.transform(train + other).tobytes()).hexdigest())
"""


def test_reproducible_across_processes():
    """Python's str hash is salted per process; training must not depend on it."""
    cases = [("word2vec", W2V), ("fasttext", {**W2V, "bucket": 1000}), ("doc2vec", W2V)]
    arg = json.dumps([cases, TRAIN, OTHER])
    procs = [
        subprocess.Popen([sys.executable, "-c", _SCRIPT, arg], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONHASHSEED": seed})
        for seed in ("1", "2")
    ]
    here = "\n".join(
        hashlib.sha256(build_extractor(name, "text", params).fit(TRAIN)
                       .transform(TRAIN + OTHER).tobytes()).hexdigest()
        for name, params in cases)
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        results.append(stdout.strip())
    assert results == [here, here]


def test_tfidf_svd_is_fitted_on_train():
    ext = build_extractor("tfidf", "text", {"svd_components": 3, "chars": "off"}).fit(TRAIN)
    assert ext.dim_ == 3 and ext.svd_.shape == (3, len(ext.vocabulary_))
    out = ext.transform(TRAIN + OTHER)
    assert out.shape == (8, 3)
    np.testing.assert_array_equal(out[6], 0)  # "zebra": no train n-gram
    many = build_extractor("tfidf", "text", {"svd_components": 1000, "chars": "off"}).fit(TRAIN)
    assert many.dim_ == len(TRAIN)  # at most the rank of the train matrix
    few = build_extractor("tfidf", "text", {"svd_components": 1000, "ngram_max": 1,
                                            "max_features": 4, "chars": "off"}).fit(TRAIN)
    assert few.dim_ == 3  # TruncatedSVD needs fewer components than features


def test_word2vec_pretrained_text_and_binary(tmp_path):
    from gensim.models import KeyedVectors

    from .helpers import write_word2vec_text

    words = ["Sea", "sea", "red", "zebra", "the"]
    text_file = write_word2vec_text(tmp_path / "v.txt", words, size=4)
    kv = KeyedVectors.load_word2vec_format(str(text_file))
    kv.save_word2vec_format(str(tmp_path / "v.bin"), binary=True)
    for path in (text_file, tmp_path / "v.bin"):
        ext = build_extractor("word2vec", "text", {"pretrained": str(path), "max_vocab": 4})
        assert not ext.needs_fit  # nothing is learned from the train split
        ext.fit(None)
        assert ext.dim_ == 4
        assert ext.words_ == ["sea", "red", "zebra"]  # lower-cased, first "Sea" wins, 4 kept
        out = ext.transform(["zebra", "SEA red", "unknown"])
        np.testing.assert_allclose(out[0], kv["zebra"], rtol=1e-5)
        np.testing.assert_allclose(out[1], (kv["Sea"] + kv["red"]) / 2, rtol=1e-5)
        np.testing.assert_array_equal(out[2], 0)


def test_word2vec_pretrained_errors(tmp_path):
    from gensim.models import KeyedVectors

    with pytest.raises(UsageError, match="does not exist"):
        build_extractor("word2vec", "text", {"pretrained": str(tmp_path / "no.txt")}).fit(None)
    bad = tmp_path / "bad.txt"
    bad.write_text("this is not\na vector file\n")
    with pytest.raises(UsageError, match="cannot read pretrained vectors"):
        build_extractor("word2vec", "text", {"pretrained": str(bad)}).fit(None)
    kv = KeyedVectors(vector_size=3)
    kv.add_vectors(["sea"], np.ones((1, 3), np.float32))
    kv.save(str(tmp_path / "v.kv"))
    with pytest.raises(UsageError, match="pickle") as exc:
        build_extractor("word2vec", "text", {"pretrained": str(tmp_path / "v.kv")}).fit(None)
    assert "trust_pickle" in exc.value.hint
    trusted = build_extractor("word2vec", "text", {"pretrained": str(tmp_path / "v.kv"),
                                                   "trust_pickle": True}).fit(None)
    np.testing.assert_array_equal(trusted.transform(["sea"]), np.ones((1, 3)))


def test_fasttext_embeds_unseen_words_from_ngrams():
    from gensim.models.fasttext import ft_ngram_hashes

    ext = build_extractor("fasttext", "text", {**W2V, "bucket": 5000}).fit(TRAIN)
    out = ext.transform(["zebra", "grasses", "grass"])
    assert not np.any(out[1] == 0)  # unseen, shares n-grams with "grass"
    cos = out[1] @ out[2] / np.linalg.norm(out[1]) / np.linalg.norm(out[2])
    assert cos > 0.5
    # an unseen word's vector: the mean of its n-grams' bucket vectors that train words use
    rows = {int(h): k for k, h in enumerate(ext.buckets_)}
    used = [rows[h] for h in ft_ngram_hashes("grasses", 3, 5, 5000) if h in rows]
    np.testing.assert_allclose(out[1], ext.ngram_vectors_[used].mean(axis=0), rtol=1e-5)


def topic_texts(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    topics = [["fire", "apple", "brick", "red", "rose"], ["grass", "leaf", "frog", "moss"],
              ["sea", "sky", "ice", "blue", "wave"]]
    filler = ["the", "a", "one", "small", "photo", "of", "some", "thing", "here"]
    y = np.arange(n) % 3
    return [" ".join([*rng.choice(topics[c], 4), *rng.choice(filler, 4)]) for c in y], y


def test_doc2vec_vectors_separate_topics():
    train, y = topic_texts(240, 0)
    test, y_test = topic_texts(30, 1)
    ext = build_extractor("doc2vec", "text", {"vector_size": 16, "epochs": 100}).fit(train)
    x, x_test = ext.transform(train), ext.transform(test + ["zebra"])
    np.testing.assert_array_equal(x_test[-1], 0)  # no known word
    centroids = np.stack([x[y == c].mean(axis=0) for c in range(3)])
    dist = ((x_test[:-1, None, :] - centroids[None]) ** 2).sum(axis=2)
    assert (dist.argmin(axis=1) == y_test).mean() >= 0.8


@pytest.mark.parametrize("name, params", [
    ("tfidf", {"svd_components": -1}), ("word2vec", {"sg": 2}), ("fasttext", {"max_n": 2}),
    ("doc2vec", {"dm": 3}), ("doc2vec", {"vector_size": 0})])
def test_bad_text_params(name, params):
    with pytest.raises(UsageError) as exc:
        build_extractor(name, "text", params)
    assert next(iter(params)) in exc.value.message and name in exc.value.message


def test_tokens_vocabulary_from_train_only_with_padding_and_unknown():
    tok = build_extractor("tokens", "text", {"max_len": 5, "max_vocab": 5})
    tok.fit(["b a b c", "c b d"])  # counts b 3, c 2, a 1, d 1: ties alphabetical
    assert tok.vocabulary_ == ["b", "c", "a"]  # max_vocab 5 = padding + unknown + 3 words
    ids = tok.transform(["B zebra a", "c c c c c c c", ""])
    assert ids.dtype == np.float32
    np.testing.assert_array_equal(ids, [[2, 1, 4, 0, 0], [3, 3, 3, 3, 3], [0, 0, 0, 0, 0]])
    assert tok.structure() == {"layout": "tokens", "shape": [5], "vocab": 5}


def test_tokens_min_count_and_state_round_trip():
    from mmcli.extractors import EXTRACTORS

    tok = build_extractor("tokens", "text", {"max_len": 3, "min_count": 2}).fit(["x y y", "z"])
    assert tok.vocabulary_ == ["y"]
    state, arrays = tok.get_state()
    again = EXTRACTORS.get("tokens").from_state(state, arrays)
    np.testing.assert_array_equal(again.transform(["y x z"]), [[2, 1, 1]])


@pytest.mark.parametrize("params", [{"max_len": 0}, {"max_vocab": 2},
                                    {"max_vocab": (1 << 24) + 1}])
def test_bad_tokens_params(params):
    with pytest.raises(UsageError, match=next(iter(params))):
        build_extractor("tokens", "text", params)


def test_tfidf_character_ngrams_on_short_texts_only():
    short = build_extractor("tfidf", "text", {}).fit(TRAIN)  # the SVD is skipped
    assert short.chars_ and "median 4 words <= short_words 20" in short.fit_note()
    assert short.svd_.shape[0] == 0
    assert " re" in short.char_vocabulary_ and "burn" in short.char_vocabulary_
    assert short.dim_ == len(short.vocabulary_) + len(short.char_vocabulary_)
    # an inflection never seen in train still shares character n-grams with "burns"
    words_only = build_extractor("tfidf", "text", {"svd_components": 0, "chars": "off"})
    assert not words_only.fit(TRAIN).transform(["burning"]).any()
    assert short.transform(["burning"]).any()
    rows = short.transform(TRAIN)
    n = len(short.vocabulary_)
    np.testing.assert_allclose(np.linalg.norm(rows[:, :n], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(rows[:, n:], axis=1), 1.0, rtol=1e-5)

    long = [" ".join([t] * 6) for t in TRAIN]  # 18-30 words
    off = build_extractor("tfidf", "text", {"short_words": 10.0}).fit(long)
    assert not off.chars_ and off.char_vocabulary_ == [] and "> short_words 10" in off.fit_note()
    assert off.svd_.shape[0] == off.dim_ == len(TRAIN)  # words: reduced by the SVD
    forced = build_extractor("tfidf", "text", {"short_words": 10.0, "chars": "on"}).fit(long)
    assert forced.chars_ and forced.char_vocabulary_


def test_tfidf_character_ngrams_survive_the_state_round_trip(tmp_path):
    from mmcli import artifacts
    from mmcli.extractors import EXTRACTORS

    ext = build_extractor("tfidf", "text", {"char_ngrams": [3, 4]})
    ext.fit(TRAIN)
    state, arrays = ext.get_state()
    artifacts.save_state(tmp_path, "t", state, arrays)
    loaded = EXTRACTORS.get("tfidf").from_state(*artifacts.load_state(tmp_path, "t"))
    assert loaded.chars_ and loaded.char_vocabulary_ == ext.char_vocabulary_
    assert loaded.fit_note() == ext.fit_note()
    np.testing.assert_array_equal(loaded.transform(TRAIN + OTHER), ext.transform(TRAIN + OTHER))


@pytest.mark.parametrize("params, message", [({"chars": "yes"}, "'chars' parameter"),
                                             ({"char_ngrams": [5, 2]}, "'char_ngrams'"),
                                             ({"char_ngrams": [3]}, "'char_ngrams'")])
def test_tfidf_bad_character_parameters(params, message):
    with pytest.raises(UsageError, match=message):
        build_extractor("tfidf", "text", params)
