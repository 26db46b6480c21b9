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


def has_words(texts) -> bool:
    """Whether any of ``texts`` has a word token (see :func:`tokenize`)."""
    return any(_TOKEN.search(text) for text in texts)


@EXTRACTORS.register("tfidf", kind="text")
class Tfidf(Extractor):
    """TF-IDF (scikit-learn ``TfidfVectorizer``) over word n-grams, reduced by truncated SVD
    (latent semantic analysis); on short texts over word and character n-grams instead,
    unreduced. Vocabularies and SVD are fitted on train.

    Character n-grams (``char_wb``: n-grams inside word boundaries, lengths ``char_ngrams``)
    catch inflections, typos and shared stems that whole words miss, which matters most when
    a text has few words. With ``chars: auto`` they are used when the train texts' median
    length is at most ``short_words`` words (decided once, at fit, and kept in the state);
    ``on`` and ``off`` force it. The word and character TF-IDF rows (each of unit length)
    are put side by side, and the SVD is skipped: reduced to ``svd_components`` they lost
    what the character n-grams add (docs/extractors.md).

    Output dimension: ``min(svd_components, vocabulary size - 1, train texts)`` with
    ``svd_components`` and no character n-grams, else the word vocabulary size (at most
    ``max_features``) plus the character n-gram vocabulary size (at most
    ``char_max_features``)

    Parameters:
        max_features: largest word vocabulary (most frequent n-grams)
        ngram_max: longest word n-gram
        min_df: documents an n-gram must appear in
        sublinear_tf: use 1 + log(tf)
        svd_components: 0 (off) or the number of SVD components kept (without chars)
        seed: random seed of the SVD (defaults to the config seed)
        chars: auto (character n-grams, no SVD, on short train texts), on or off
        char_ngrams: shortest and longest character n-gram
        char_max_features: largest character n-gram vocabulary
        short_words: with chars auto, the longest median train text (words) counted short
    """

    worker_modules = ("sklearn.feature_extraction.text", "sklearn.decomposition")

    @dataclasses.dataclass
    class Params:
        max_features: int = 2000
        ngram_max: int = 2
        min_df: int = 1
        sublinear_tf: bool = True
        svd_components: int = 100
        seed: int = 0
        chars: str = "auto"
        char_ngrams: list = dataclasses.field(default_factory=lambda: [2, 5])
        char_max_features: int = 5000
        short_words: float = 20.0

    def _check(self) -> None:
        self._at_least(1, "max_features", "ngram_max", "min_df", "char_max_features")
        self._at_least(0, "svd_components", "short_words")
        self._one_of("chars", ("auto", "on", "off"))
        lengths = self.params.char_ngrams
        if not (len(lengths) == 2 and all(isinstance(n, int) and not isinstance(n, bool)
                                          for n in lengths) and 1 <= lengths[0] <= lengths[1]):
            raise self._bad("char_ngrams", lengths, "[shortest, longest] with "
                            "1 <= shortest <= longest")

    def _vectorizer(self, vocabulary=None):
        from sklearn.feature_extraction.text import TfidfVectorizer

        p = self.params
        return TfidfVectorizer(max_features=p.max_features, ngram_range=(1, p.ngram_max),
                               min_df=p.min_df, sublinear_tf=p.sublinear_tf,
                               tokenizer=tokenize, token_pattern=None, lowercase=False,
                               vocabulary=vocabulary, dtype=np.float32)

    def _char_vectorizer(self, vocabulary=None):
        from sklearn.feature_extraction.text import TfidfVectorizer

        p = self.params
        return TfidfVectorizer(analyzer="char_wb", ngram_range=tuple(p.char_ngrams),
                               max_features=p.char_max_features, min_df=p.min_df,
                               sublinear_tf=p.sublinear_tf, lowercase=True,
                               vocabulary=vocabulary, dtype=np.float32)

    def _use_chars(self, texts: list[str]) -> tuple[bool, str]:
        p = self.params
        if p.chars != "auto":
            return p.chars == "on", f"chars: {p.chars}"
        words = float(np.median([len(tokenize(t)) for t in texts])) if texts else 0.0
        short = words <= p.short_words
        return short, (f"train texts: median {words:g} words "
                       f"{'<=' if short else '>'} short_words {p.short_words:g}")

    @staticmethod
    def _fit_one(vec, texts: list[str]):
        """(vocabulary, idf, fitted vectorizer), or empty ones when train has no n-gram."""
        try:
            vec.fit(texts)
        except ValueError as exc:  # empty vocabulary: no tokens in train
            if "empty vocabulary" not in str(exc):  # a bad parameter, e.g. max_features: 0
                raise UsageError(f"tfidf cannot be fitted: {exc}",
                                 "fix extract.params.tfidf in the config") from None
            return [], np.zeros(0, dtype=np.float32), None
        return list(vec.get_feature_names_out()), vec.idf_.astype(np.float32), vec

    def _fit(self, texts: list[str]) -> int:
        self.chars_, self.chars_reason_ = self._use_chars(texts)
        self.vocabulary_, self.idf_, self._vec = self._fit_one(self._vectorizer(), texts)
        self.char_vocabulary_, self.char_idf_, self._char_vec = [], np.zeros(0, np.float32), None
        if self.chars_:
            self.char_vocabulary_, self.char_idf_, self._char_vec = self._fit_one(
                self._char_vectorizer(), texts)
        n = len(self.vocabulary_) + len(self.char_vocabulary_)
        self.svd_ = np.zeros((0, n), dtype=np.float32)
        if n == 0:
            return 1
        k = 0 if self.chars_ else min(self.params.svd_components, n - 1, len(texts))
        if k >= 1:
            from sklearn.decomposition import TruncatedSVD

            svd = TruncatedSVD(n_components=k, random_state=self.params.seed)
            svd.fit(self._tfidf(texts).astype(np.float64))
            self.svd_ = svd.components_.astype(np.float32)
            return int(self.svd_.shape[0])
        return n

    def fit_note(self) -> str | None:
        used = "on, no SVD" if self.chars_ else "off"
        return f"character n-grams {used} ({self.chars_reason_})"

    def _tfidf(self, texts: list[str]):
        """The sparse word (and character) TF-IDF rows, side by side."""
        import scipy.sparse

        parts = []
        if self.vocabulary_:
            if self._vec is None:
                self._vec = self._vectorizer({t: k for k, t in enumerate(self.vocabulary_)})
                self._vec.idf_ = self.idf_
            parts.append(self._vec.transform(texts))
        if self.char_vocabulary_:
            if self._char_vec is None:
                self._char_vec = self._char_vectorizer(
                    {t: k for k, t in enumerate(self.char_vocabulary_)})
                self._char_vec.idf_ = self.char_idf_
            parts.append(self._char_vec.transform(texts))
        return parts[0] if len(parts) == 1 else scipy.sparse.hstack(parts, format="csr")

    def _transform(self, texts: list[str]) -> np.ndarray:
        if not (self.vocabulary_ or self.char_vocabulary_):
            return np.zeros((len(texts), 1), dtype=np.float32)
        x = self._tfidf(texts)
        return x @ self.svd_.T if self.svd_.shape[0] else x.toarray()

    def _state(self):
        arrays = {"idf": self.idf_}
        if self.char_vocabulary_:
            arrays["char_idf"] = self.char_idf_
        if self.svd_.shape[0]:
            arrays["svd"] = self.svd_
        return {"vocabulary": self.vocabulary_, "chars": self.chars_,
                "chars_reason": self.chars_reason_,
                "char_vocabulary": self.char_vocabulary_}, arrays

    def _load(self, params, arrays):
        self.vocabulary_ = list(params["vocabulary"])
        self.idf_ = arrays.get("idf", np.zeros(0, dtype=np.float32))
        # states written before character n-grams existed have none
        self.chars_ = bool(params.get("chars", False))
        self.chars_reason_ = params.get("chars_reason", "")
        self.char_vocabulary_ = list(params.get("char_vocabulary", []))
        self.char_idf_ = arrays.get("char_idf", np.zeros(0, dtype=np.float32))
        n = len(self.vocabulary_) + len(self.char_vocabulary_)
        self.svd_ = arrays.get("svd", np.zeros((0, n), dtype=np.float32))
        self._vec = self._char_vec = None


@EXTRACTORS.register("tokens", kind="text")
class TokenIds(Extractor):
    """Word ids for sequence encoders (GRU, Transformer): the first ``max_len`` tokens of each
    text as vocabulary ids, padded with 0.

    The vocabulary is fitted on the train split only: the ``max_vocab - 2`` most frequent words
    seen at least ``min_count`` times (ties in alphabetical order) get ids 2, 3, ...; 0 is
    padding and 1 an unknown word. Ids are stored as float32, exact for vocabularies below
    2^24. Meant for the GRU / Transformer encoders of the learned-fusion models (``encoder:
    auto``): the concat fusion keeps this block unnormalised so the ids reach them intact;
    other models and fusion methods see the ids as plain numbers.

    Output dimension: ``max_len``

    Parameters:
        max_len: tokens kept per text (longer texts are cut, shorter ones padded with 0)
        max_vocab: largest vocabulary, padding and unknown ids included
        min_count: train occurrences a word needs to get its own id
    """

    @dataclasses.dataclass
    class Params:
        max_len: int = 32
        max_vocab: int = 5000
        min_count: int = 1

    def _check(self) -> None:
        self._at_least(1, "max_len", "min_count")
        self._at_least(3, "max_vocab")
        if self.params.max_vocab > 1 << 24:
            raise self._bad("max_vocab", self.params.max_vocab, "<= 16777216 (2^24: float32 "
                            "ids stay exact)")

    def _fit(self, texts: list[str]) -> int:
        from collections import Counter

        counts = Counter(w for t in texts for w in tokenize(t))
        kept = sorted((w for w, c in counts.items() if c >= self.params.min_count),
                      key=lambda w: (-counts[w], w))[:self.params.max_vocab - 2]
        self.vocabulary_ = kept
        self._index = {w: k + 2 for k, w in enumerate(kept)}
        return self.params.max_len

    def _transform(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.params.max_len), dtype=np.float32)
        for k, text in enumerate(texts):
            ids = [self._index.get(w, 1) for w in tokenize(text)[:self.params.max_len]]
            out[k, :len(ids)] = ids
        return out

    def structure(self) -> dict | None:
        return {"layout": "tokens", "shape": [self.params.max_len],
                "vocab": len(self.vocabulary_) + 2}

    def _state(self):
        return {"vocabulary": self.vocabulary_}, {}

    def _load(self, params, arrays):
        self.vocabulary_ = list(params["vocabulary"])
        self._index = {w: k + 2 for k, w in enumerate(self.vocabulary_)}


def _stable_hash(text: str) -> int:
    # gensim seeds each word's initial vector with hashfxn(word + seed); Python's hash() is
    # salted per process, so a stable hash is what makes training reproducible.
    return zlib.crc32(text.encode("utf-8"))


def _mean_vectors(texts: list[str], index: dict[str, int], vectors: np.ndarray,
                  oov=None) -> np.ndarray:
    """Average of the token vectors per text; ``oov(token)`` gives a vector or None."""
    out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
    for row, text in enumerate(texts):
        rows = []
        for token in tokenize(text):
            k = index.get(token)
            if k is not None:
                rows.append(vectors[k])
            elif oov is not None:
                v = oov(token)
                if v is not None:
                    rows.append(v)
        if rows:
            out[row] = np.mean(rows, axis=0)
    return out


@EXTRACTORS.register("word2vec", kind="text")
class Word2VecMean(Extractor):
    """Average of Word2Vec vectors (gensim) per text: trained on the train split's text, or
    loaded from your ``pretrained`` vectors.

    ``pretrained`` is a word2vec text file (``.txt``, ``.vec``, optionally ``.gz``), a word2vec
    binary file (``.bin``) or gensim KeyedVectors (``.kv``; a pickle, so it is loaded only with
    ``trust_pickle: true``). The first ``max_vocab`` words of the file are kept (lower-cased,
    first occurrence wins) and stored as plain arrays in the state. Words not in the
    vocabulary are skipped; a text with none gives zeros.

    Output dimension: ``vector_size``, or the pretrained vectors' size

    Parameters:
        vector_size: vector size when training
        window: context window when training
        min_count: minimum train count of a word when training
        epochs: training epochs
        sg: 1 skip-gram, 0 CBOW
        seed: training seed (defaults to the config seed)
        pretrained: path to pretrained vectors; empty trains on the train split
        max_vocab: most words kept from pretrained vectors
        trust_pickle: allow loading a pickle-based gensim .kv file
    """

    worker_modules = ("gensim.models",)

    @dataclasses.dataclass
    class Params:
        vector_size: int = 64
        window: int = 5
        min_count: int = 1
        epochs: int = 30
        sg: int = 1
        seed: int = 0
        pretrained: str = ""
        max_vocab: int = 200000
        trust_pickle: bool = False

    def _check(self) -> None:
        self._at_least(1, "vector_size", "window", "min_count", "epochs", "max_vocab")
        self._one_of("sg", (0, 1))

    @property
    def needs_fit(self) -> bool:  # type: ignore[override]
        return not self.params.pretrained

    def _fit(self, texts: list[str] | None) -> int:
        if self.params.pretrained:
            self.words_, self.vectors_ = load_pretrained(
                self.params.pretrained, self.params.max_vocab, self.params.trust_pickle)
            return int(self.vectors_.shape[1])
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
        return _mean_vectors(texts, index, self.vectors_)

    def _state(self):
        return {"words": self.words_}, {"vectors": self.vectors_}

    def _load(self, params, arrays):
        self.words_ = list(params["words"])
        self.vectors_ = arrays["vectors"]
        self._index = None


def load_pretrained(path: str, max_vocab: int, trust_pickle: bool
                    ) -> tuple[list[str], np.ndarray]:
    """Words (lower-cased, unique, file order) and float32 vectors of a pretrained file."""
    from pathlib import Path

    from gensim.models import KeyedVectors

    file = Path(path)
    if not file.is_file():
        raise UsageError(f"pretrained vectors file {file} does not exist",
                         "set extract.params.word2vec.pretrained to a word2vec or .kv file")
    try:
        if file.suffix == ".kv":
            if not trust_pickle:
                raise UsageError(
                    f"{file} is a gensim .kv file, which is a pickle and can run code",
                    "set extract.params.word2vec.trust_pickle: true if you trust it, or save "
                    "it with KeyedVectors.save_word2vec_format")
            kv = KeyedVectors.load(str(file))
        else:
            kv = KeyedVectors.load_word2vec_format(str(file), binary=file.suffix == ".bin",
                                                   limit=max_vocab, unicode_errors="replace")
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"cannot read pretrained vectors {file}: {reason}",
                         "give a word2vec text (.txt/.vec), binary (.bin) or gensim .kv "
                         "file") from None
    words, rows, seen = [], [], set()
    for k, word in enumerate(kv.index_to_key[:max_vocab]):
        key = word.lower()
        if key not in seen:
            seen.add(key)
            words.append(key)
            rows.append(k)
    return words, np.asarray(kv.vectors[rows], dtype=np.float32)


@EXTRACTORS.register("fasttext", kind="text")
class FastTextMean(Extractor):
    """Average of FastText vectors (gensim) trained on the train split's text; words never
    seen in train get a vector from their character n-grams, so typos and rare inflections
    still count.

    The state keeps the vocabulary's vectors and the vectors of the n-gram buckets that
    train words use (plain arrays, no pickle); an unseen word's vector is the mean of its
    n-grams' bucket vectors (gensim's ``ft_ngram_hashes``), skipping buckets no train word
    used.

    Output dimension: ``vector_size``

    Parameters:
        vector_size: vector size
        window: context window
        min_count: minimum train count of a word
        epochs: training epochs
        sg: 1 skip-gram, 0 CBOW
        min_n: shortest character n-gram
        max_n: longest character n-gram
        bucket: hash buckets for n-grams
        seed: training seed (defaults to the config seed)
    """

    worker_modules = ("gensim.models",)

    @dataclasses.dataclass
    class Params:
        vector_size: int = 64
        window: int = 5
        min_count: int = 1
        epochs: int = 30
        sg: int = 1
        min_n: int = 3
        max_n: int = 5
        bucket: int = 200000
        seed: int = 0

    def _check(self) -> None:
        self._at_least(1, "vector_size", "window", "min_count", "epochs", "min_n", "bucket")
        self._one_of("sg", (0, 1))
        if self.params.max_n < self.params.min_n:
            raise self._bad("max_n", self.params.max_n, f">= min_n ({self.params.min_n})")

    def _fit(self, texts: list[str]) -> int:
        from gensim.models import FastText

        p = self.params
        sentences = [s for s in (tokenize(t) for t in texts) if s]
        self.words_: list[str] = []
        self.vectors_ = np.zeros((0, p.vector_size), dtype=np.float32)
        self.buckets_ = np.zeros(0, dtype=np.int64)
        self.ngram_vectors_ = np.zeros((0, p.vector_size), dtype=np.float32)
        if not sentences:
            return p.vector_size
        model = FastText(sentences=sentences, vector_size=p.vector_size, window=p.window,
                         min_count=p.min_count, epochs=p.epochs, sg=p.sg, seed=p.seed,
                         min_n=p.min_n, max_n=p.max_n, bucket=p.bucket, workers=1,
                         hashfxn=_stable_hash, sorted_vocab=1)
        self.words_ = list(model.wv.index_to_key)
        self.vectors_ = np.asarray(model.wv.vectors, dtype=np.float32)
        used = sorted({h for w in self.words_ for h in self._hashes(w)})
        self.buckets_ = np.asarray(used, dtype=np.int64)
        self.ngram_vectors_ = np.asarray(model.wv.vectors_ngrams[used], dtype=np.float32)
        return p.vector_size

    def _hashes(self, word: str) -> list[int]:
        from gensim.models.fasttext import ft_ngram_hashes

        p = self.params
        return ft_ngram_hashes(word, p.min_n, p.max_n, p.bucket)

    def _oov(self, word: str):
        rows = [self._bucket_row[h] for h in self._hashes(word) if h in self._bucket_row]
        return self.ngram_vectors_[rows].mean(axis=0) if rows else None

    def _transform(self, texts: list[str]) -> np.ndarray:
        if getattr(self, "_index", None) is None:
            self._index = {w: k for k, w in enumerate(self.words_)}
            self._bucket_row = {int(h): k for k, h in enumerate(self.buckets_)}
        return _mean_vectors(texts, self._index, self.vectors_, self._oov)

    def _state(self):
        return {"words": self.words_}, {"vectors": self.vectors_, "buckets": self.buckets_,
                                        "ngram_vectors": self.ngram_vectors_}

    def _load(self, params, arrays):
        self.words_ = list(params["words"])
        self.vectors_, self.buckets_ = arrays["vectors"], arrays["buckets"]
        self.ngram_vectors_ = arrays["ngram_vectors"]
        self._index = None


@EXTRACTORS.register("doc2vec", kind="text")
class Doc2VecInfer(Extractor):
    """Doc2Vec paragraph vectors (gensim) trained on the train split's text; every text,
    train included, gets its vector by inference (``epochs`` passes with the word weights
    frozen), so train and new data are embedded the same way.

    The state keeps the word vectors, output weights and word counts as plain arrays; the
    gensim model is rebuilt from them for inference (no pickle). Inference starts from a
    vector seeded by a stable hash of the text and reseeds the sampler per text, so a text
    gets the same vector in any batch and any process.

    Output dimension: ``vector_size``

    Parameters:
        vector_size: vector size
        window: context window
        min_count: minimum train count of a word
        epochs: training and inference epochs
        dm: 1 distributed memory, 0 distributed bag of words
        negative: negative samples
        seed: training seed (defaults to the config seed)
    """

    worker_modules = ("gensim.models",)

    @dataclasses.dataclass
    class Params:
        vector_size: int = 64
        window: int = 5
        min_count: int = 1
        epochs: int = 40
        dm: int = 0
        negative: int = 5
        seed: int = 0

    def _check(self) -> None:
        self._at_least(1, "vector_size", "window", "min_count", "epochs", "negative")
        self._one_of("dm", (0, 1))

    def _model(self, **extra):
        from gensim.models import Doc2Vec

        p = self.params
        return Doc2Vec(vector_size=p.vector_size, window=p.window, min_count=p.min_count,
                       epochs=p.epochs, dm=p.dm, negative=p.negative, hs=0, seed=p.seed,
                       workers=1, hashfxn=_stable_hash, **extra)

    def _fit(self, texts: list[str]) -> int:
        from gensim.models.doc2vec import TaggedDocument

        p = self.params
        docs = [TaggedDocument(words, [k]) for k, words in
                enumerate(w for w in (tokenize(t) for t in texts) if w)]
        self.words_: list[str] = []
        self.counts_ = np.zeros(0, dtype=np.int64)
        self.word_vectors_ = np.zeros((0, p.vector_size), dtype=np.float32)
        self.output_ = np.zeros((0, p.vector_size), dtype=np.float32)
        if docs:
            model = self._model()
            model.build_vocab(docs)
            if len(model.wv):
                model.train(docs, total_examples=len(docs), epochs=p.epochs)
                self.words_ = list(model.wv.index_to_key)
                self.counts_ = np.array([model.wv.get_vecattr(w, "count")
                                         for w in self.words_], dtype=np.int64)
                self.word_vectors_ = np.asarray(model.wv.vectors, dtype=np.float32)
                self.output_ = np.asarray(model.syn1neg, dtype=np.float32)
        self._gensim = None
        return p.vector_size

    def _rebuild(self):
        model = self._model()
        model.build_vocab_from_freq(dict(zip(self.words_, self.counts_.tolist())))
        # gensim may order ties differently from training: place rows by word
        stored = {w: k for k, w in enumerate(self.words_)}
        rows = [stored[w] for w in model.wv.index_to_key]
        model.wv.vectors[:] = self.word_vectors_[rows]
        model.syn1neg[:] = self.output_[rows]
        return model

    def _infer(self, model, words: list[str]) -> np.ndarray:
        from gensim.models.doc2vec_inner import train_document_dbow, train_document_dm

        p = self.params
        rng = np.random.default_rng(_stable_hash(" ".join(words)))
        vector = ((rng.random(p.vector_size) - 0.5) / p.vector_size).astype(np.float32)
        vector = vector.reshape(1, -1)
        locks = np.ones(1, dtype=np.float32)
        work = np.zeros(model.layer1_size, dtype=np.float32)
        neu1 = np.zeros(model.layer1_size, dtype=np.float32)
        model.random = np.random.RandomState(p.seed)
        alpha, delta = model.alpha, (model.alpha - model.min_alpha) / max(p.epochs - 1, 1)
        for _ in range(p.epochs):
            if p.dm:
                train_document_dm(model, words, [0], alpha, work, neu1, learn_words=False,
                                  learn_hidden=False, doctag_vectors=vector,
                                  doctags_lockf=locks)
            else:
                train_document_dbow(model, words, [0], alpha, work, learn_words=False,
                                    learn_hidden=False, doctag_vectors=vector,
                                    doctags_lockf=locks)
            alpha -= delta
        return vector[0]

    def _transform(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim_), dtype=np.float32)
        if not self.words_:
            return out
        if getattr(self, "_gensim", None) is None:
            self._gensim = self._rebuild()
        known = self._gensim.wv.key_to_index
        for row, text in enumerate(texts):
            words = [w for w in tokenize(text) if w in known]
            if words:
                out[row] = self._infer(self._gensim, words)
        return out

    def __getstate__(self):  # worker processes rebuild the gensim model themselves
        return {k: v for k, v in self.__dict__.items() if k != "_gensim"}

    def _state(self):
        return {"words": self.words_}, {"counts": self.counts_, "word_vectors":
                                        self.word_vectors_, "output": self.output_}

    def _load(self, params, arrays):
        self.words_ = list(params["words"])
        self.counts_ = arrays.get("counts", np.zeros(0, dtype=np.int64))
        self.word_vectors_ = arrays.get("word_vectors", np.zeros((0, self.dim_), np.float32))
        self.output_ = arrays.get("output", np.zeros((0, self.dim_), np.float32))
        self._gensim = None
