"""Text extractors over lists of normalised strings."""

from __future__ import annotations

import dataclasses
import re
import zlib

import numpy as np

from mmcli.errors import UsageError
from mmcli.extractors.base import EXTRACTORS, Extractor

_TOKEN = re.compile(r"\w+", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Unicode word tokens (letters, digits, underscore in any script), lower-cased."""
    return _TOKEN.findall(text.lower())


@EXTRACTORS.register("tfidf", kind="text")
class Tfidf(Extractor):
    """TF-IDF (scikit-learn ``TfidfVectorizer``) over word n-grams, vocabulary from train.

    Output dimension: the vocabulary size, at most ``max_features``.
    """

    @dataclasses.dataclass
    class Params:
        max_features: int = 2000
        ngram_max: int = 2
        min_df: int = 1
        sublinear_tf: bool = True

    def _vectorizer(self, vocabulary=None):
        from sklearn.feature_extraction.text import TfidfVectorizer

        p = self.params
        return TfidfVectorizer(max_features=p.max_features, ngram_range=(1, p.ngram_max),
                               min_df=p.min_df, sublinear_tf=p.sublinear_tf,
                               tokenizer=tokenize, token_pattern=None, lowercase=False,
                               vocabulary=vocabulary, dtype=np.float32)

    def _fit(self, texts: list[str]) -> int:
        vec = self._vectorizer()
        try:
            vec.fit(texts)
        except ValueError as exc:  # empty vocabulary: no tokens in train
            if "empty vocabulary" not in str(exc):  # a bad parameter, e.g. max_features: 0
                raise UsageError(f"tfidf cannot be fitted: {exc}",
                                 "fix extract.params.tfidf in the config") from None
            self.vocabulary_, self.idf_ = [], np.zeros(0, dtype=np.float32)
            return 1
        self.vocabulary_ = list(vec.get_feature_names_out())
        self.idf_ = vec.idf_.astype(np.float32)
        self._vec = vec
        return len(self.vocabulary_)

    def _transform(self, texts: list[str]) -> np.ndarray:
        if not self.vocabulary_:
            return np.zeros((len(texts), 1), dtype=np.float32)
        if getattr(self, "_vec", None) is None:
            vec = self._vectorizer({t: k for k, t in enumerate(self.vocabulary_)})
            vec.idf_ = self.idf_
            self._vec = vec
        return self._vec.transform(texts).toarray()

    def _state(self):
        return {"vocabulary": self.vocabulary_}, {"idf": self.idf_}

    def _load(self, params, arrays):
        self.vocabulary_ = list(params["vocabulary"])
        self.idf_ = arrays.get("idf", np.zeros(0, dtype=np.float32))
        self._vec = None


def _stable_hash(text: str) -> int:
    # gensim seeds each word's initial vector with hashfxn(word + seed); Python's hash() is
    # salted per process, so a stable hash is what makes training reproducible.
    return zlib.crc32(text.encode("utf-8"))


@EXTRACTORS.register("word2vec", kind="text")
class Word2VecMean(Extractor):
    """Average of Word2Vec vectors (gensim, skip-gram) trained on the train split's text.

    Words not in the vocabulary are skipped; a text with none gives zeros.
    Output dimension: ``vector_size``.
    """

    @dataclasses.dataclass
    class Params:
        vector_size: int = 64
        window: int = 5
        min_count: int = 1
        epochs: int = 30
        sg: int = 1
        seed: int = 0

    def _fit(self, texts: list[str]) -> int:
        from gensim.models import Word2Vec

        p = self.params
        sentences = [tokenize(t) for t in texts]
        sentences = [s for s in sentences if s]
        if not sentences:
            self.words_, self.vectors_ = [], np.zeros((0, p.vector_size), dtype=np.float32)
            return p.vector_size
        model = Word2Vec(sentences=sentences, vector_size=p.vector_size, window=p.window,
                         min_count=p.min_count, epochs=p.epochs, sg=p.sg, seed=p.seed,
                         workers=1, hashfxn=_stable_hash, sorted_vocab=1)
        self.words_ = list(model.wv.index_to_key)
        self.vectors_ = np.asarray(model.wv.vectors, dtype=np.float32)
        return p.vector_size

    def _transform(self, texts: list[str]) -> np.ndarray:
        index = getattr(self, "_index", None)
        if index is None:
            index = self._index = {w: k for k, w in enumerate(self.words_)}
        out = np.zeros((len(texts), self.dim_), dtype=np.float32)
        for row, text in enumerate(texts):
            ids = [index[w] for w in tokenize(text) if w in index]
            if ids:
                out[row] = self.vectors_[ids].mean(axis=0)
        return out

    def _state(self):
        return {"words": self.words_}, {"vectors": self.vectors_}

    def _load(self, params, arrays):
        self.words_ = list(params["words"])
        self.vectors_ = arrays["vectors"]
        self._index = None
