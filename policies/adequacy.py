"""Learned adequacy: each model's probability of answering *this* prompt well, from the prompt alone.

An adequacy file is what ``router train`` writes: a portable, versioned JSON artifact (no pickle)
holding the featurizer (a TF-IDF vocabulary over word uni- and bigrams, with its IDF weights) and,
per model, the weights of a logistic regression on those features and its calibration. Planning
reads it once and then predicts in tens of microseconds per request; numpy is imported only when a
policy uses one.

The featurizer is written here, not taken from scikit-learn, so that routing never imports
scikit-learn (seconds and a large install): training fits scikit-learn's ``TfidfVectorizer`` and
stores what this module needs to reproduce its transform exactly (a test pins the equality).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import sys
import zlib
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, TypeAlias

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

FORMAT: Final = "router-adequacy"
# 2 added per-model calibration (``calibration: {a, b}``: p = sigmoid(a * logit + b)) and the
# training prompts' typical length (``reference_tokens``, what ``cost_weight`` prices against).
# 3 added tasks (``tasks``: per task a centroid over the same TF-IDF vector and its suggested
# setting; ``task_threshold``): what ``cost_weight: auto`` reads.
# 4 added the neighbour memory (``neighbours``: per training prompt a MinHash signature of its
# ending and each model's outcome; per model the learned weights of a near-duplicate's outcome).
# Routers reading only 1-3 reject a version 4 file (their message says to retrain): its
# predictions differ from what they would compute, so it is not silently half-read.
VERSION: Final = 4
VERSION_WITHOUT_NEIGHBOURS: Final = 3
READABLE_VERSIONS: Final = frozenset({1, 2, 3, 4})
# scikit-learn's default token pattern: runs of two or more word characters.
TOKEN_PATTERN: Final = r"(?u)\b\w\w+\b"
_FAST_TOKEN: Final = r"\w\w+"
# Only the end of a long prompt is read: few-shot prompts repeat their examples up front, and what
# varies (the question) comes last. Bounds the work per request too.
DEFAULT_MAX_CHARS: Final = 1000
# cost_weight: auto with a file that suggests none (router train without --target).
DEFAULT_COST_WEIGHT: Final = 0.1
_UNSET: Final[Any] = object()  # judge(): the prompt's task not given
_NO_TASKS: Final[Mapping[str | None, tuple[float | None, str]]] = MappingProxyType({})


def _sigmoids(logits: Sequence[float]) -> list[float]:
    """1 / (1 + e^-x) of each logit: in Python for the dozen a prediction has (cheaper than numpy
    calls), through numpy when one overflows ``math.exp`` (a logit below -709: probability 0)."""
    exp = math.exp
    try:
        return [1.0 / (1.0 + exp(-x)) for x in logits]
    except OverflowError:
        import numpy as np

        with np.errstate(over="ignore"):
            return (1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))).tolist()  # type: ignore[no-any-return]


# The neighbour memory (version 4). A prompt's *ending* (the text after its last blank line, at most
# its last 400 characters: few-shot prompts share their examples, the question comes last) is
# summarised by a MinHash signature over its word bigrams: NEIGHBOUR_HASHES one-byte values. Two
# endings' signatures agree in about a share J of their bytes, J their bigrams' Jaccard similarity.
NEIGHBOUR_CHARS: Final = 400
NEIGHBOUR_HASHES: Final = 64
# Bytes per LSH band: a training prompt is a candidate when one band of 4 bytes matches exactly
# (probability J^4 per band; at J = 0.8 some band of 16 matches with probability 0.9998).
NEIGHBOUR_BAND: Final = 4
# A near-duplicate: estimated Jaccard >= 0.8 (chosen by cross-validation, docs/adequacy.md);
# an exact repeat: every byte of the signature agrees. Each has its own learned weights.
NEIGHBOUR_JACCARD: Final = 0.8
NEIGHBOUR_SEED: Final = 20261207
# The memory's shingle filter (optional): one bit per slot of a table of 2^k, set for every training
# prompt's bigrams (slot: the top k bits of bigram x FILTER_MULTIPLIER). A training prompt of
# Jaccard J with a request holds at least a share J of the request's bigrams, so a request with less
# than FILTER_COVERAGE of its bigrams in the table has none of Jaccard >= 0.6 - and one below that
# agrees in 52 of 64 signature bytes with a chance under 1 in 3,000 (at 0.5, 1 in 10^7): it is
# neither MinHashed nor searched. On the shared training data, 74% of prompts without a neighbour
# (their endings' words shuffled) skip the lookup; none with one does (examples in docs/adequacy.md).
FILTER_MULTIPLIER: Final = 0x9E3779B97F4A7C15
FILTER_COVERAGE: Final = 0.6
# Outcome bytes: a score s in [0, 1] stored as round(250 * s); 255 = the model's outcome is unknown.
OUTCOME_SCALE: Final = 250
OUTCOME_UNKNOWN: Final = 255
_WORD: Final = re.compile(r"\w+")
# What a rejection reason adds when a neighbour moved the predictions (by tier).
NEIGHBOUR_NOTES: Final = (
    " (an exact repeat of a training prompt: its outcomes counted)",
    " (a near-duplicate of a training prompt: its outcomes counted)",
)


def ending(text: str) -> str:
    """The part of a prompt near-duplicates are looked for in: after its last blank line, at most
    its last ``NEIGHBOUR_CHARS`` characters, lower case."""
    return _ending(text).lower()


def _ending(text: str) -> str:
    text = text.strip()
    # Only a blank line within the last NEIGHBOUR_CHARS + 2 characters can shorten the ending: the
    # search starts there (rfind over a whole long prompt cost more than the rest of a lookup).
    cut = text.rfind("\n\n", max(0, len(text) - NEIGHBOUR_CHARS - 2))
    if cut >= 0:
        text = text[cut + 2 :]
    return text[-NEIGHBOUR_CHARS:]


# ASCII endings (most) skip the regex: word characters kept (upper case lowered), every other byte
# a space, then bytes.split(): the same words as \w+ finds in the lowered text.
_ASCII_WORDS: Final = bytes(
    (c + 32 if 65 <= c <= 90 else c) if c < 128 and (chr(c).isalnum() or c == 95) else 32 for c in range(256)
)


def _words(text: str) -> list[bytes]:
    """The words of a prompt's ending (lower case, UTF-8): what its shingles are made of."""
    tail = _ending(text)
    if tail.isascii():
        return tail.encode("ascii").translate(_ASCII_WORDS).split()
    return [w.encode("utf-8", "surrogatepass") for w in _WORD.findall(tail.lower())]


HashParameters = tuple["npt.NDArray[np.uint64]", "npt.NDArray[np.uint64]", "np.uint64"]
# A prompt's task for the neighbour memory's weights: its name, None (pooled), or a function giving
# it (worked out only when a neighbour is found).
TaskArg: TypeAlias = "str | Callable[[], str | None] | None"


def _hash_parameters(hashes: int, seed: int) -> HashParameters:
    """Multiply-shift hash functions: h(x) = a * x + b mod 2^64, a odd; a signature's byte is bits
    32-39 of each function's minimum over the shingles. (And numpy's 32, made once.)"""
    import numpy as np

    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2**63, size=hashes, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(0, 2**63, size=hashes, dtype=np.uint64)
    return a, b, np.uint64(32)


def signature(text: str, parameters: HashParameters) -> npt.NDArray[np.uint8] | None:
    """The MinHash signature of a prompt's ending, one byte per hash function; None when the
    ending has no word."""
    h = shingles(text)
    return None if h is None else minhash(h, parameters)


def shingles(text: str) -> npt.NDArray[np.uint64] | None:
    """The word bigrams of a prompt's ending, each a 64-bit number (the lone word of a one-word
    ending); None when the ending has no word."""
    import numpy as np

    words = _words(text)
    if not words:
        return None
    # Stable across processes (Python's str hash is not): CRC-32 of each word; a bigram is the
    # pair of its words' CRCs in one 64-bit number.
    h = np.fromiter(map(zlib.crc32, words), np.uint64, len(words))
    if len(h) > 1:
        h = (h[:-1] << np.uint64(32)) | h[1:]
    return h


# A lookup's bigrams as overlapping 8-byte windows on the words' CRCs laid out as 4-byte integers in
# reverse order (each window: the earlier word's CRC in its high half, on a little-endian machine):
# one array of CRCs and one strided view, instead of shingles()' half a dozen numpy calls.
_PAIRED_VIEW: Final = sys.byteorder == "little" and array("I").itemsize == 4


def _bigrams(words: list[bytes]) -> npt.NDArray[np.uint64]:
    """``shingles`` of these words (at least one), last bigram first: the filter and the MinHash
    read them as a set, so the order is free."""
    import numpy as np

    if not _PAIRED_VIEW or len(words) < 2:
        h = np.fromiter(map(zlib.crc32, words), np.uint64, len(words))
        return (h[:-1] << np.uint64(32)) | h[1:] if len(h) > 1 else h
    crcs = array("I", map(zlib.crc32, reversed(words)))
    return np.ndarray((len(crcs) - 1,), np.uint64, crcs, 0, (4,))


def minhash(h: npt.NDArray[np.uint64], parameters: HashParameters) -> npt.NDArray[np.uint8]:
    """The signature of a set of shingles: per hash function, a byte of the minimum hash."""
    import numpy as np

    a, b, shift = parameters
    values = h[:, None] * a
    values += b
    # astype keeps the lowest byte of bits 32 and up
    out: npt.NDArray[np.uint8] = (values.min(axis=0) >> shift).astype(np.uint8)
    return out


def near_matches(hashes: int, jaccard: float = NEIGHBOUR_JACCARD) -> int:
    """How many of ``hashes`` one-byte MinHash values two endings of Jaccard ``jaccard`` share,
    in expectation (a byte also agrees by chance, 1 time in 256)."""
    return math.ceil(hashes * (jaccard + (1 - jaccard) / 256) - 1e-9)


Weights = tuple[float, float, float, float]

# Token ids are 4-byte integers (counting joins them as bytes; a bigram's key is two side by side).
_MAX_IDS: Final = 2**31


def _pair_key(first: int, second: int) -> int:
    """A bigram's key in ``Adequacy.counts``: the 8 bytes of its two 4-byte token ids, first then
    second, read as one integer in this machine's byte order."""
    return int.from_bytes(
        first.to_bytes(4, sys.byteorder) + second.to_bytes(4, sys.byteorder), sys.byteorder, signed=True
    )


def _filter(spec: Any) -> tuple[Any, Any]:
    """The shingle filter of a memory section (None: the file has none, every request is hashed),
    one bool per slot, and the shift giving a bigram's slot."""
    import numpy as np

    if spec is None:
        return None, None
    bits = int(spec["bits"])
    if not 1 <= bits <= 32:
        raise ValueError(f"filter of 2^{bits} slots")
    table = np.unpackbits(np.frombuffer(base64.b64decode(spec["table"]), np.uint8), bitorder="little")
    if len(table) != 1 << max(bits, 3):
        raise ValueError(f"filter table of {len(table)} bits for 2^{bits}")
    return table.view(bool), np.uint64(64 - bits)


def shingle_filter(h: npt.NDArray[np.uint64], bits: int) -> dict[str, Any]:
    """The filter section for a memory whose training endings' bigrams are ``h``."""
    import numpy as np

    table = np.zeros(1 << max(bits, 3), dtype=np.uint8)
    table[(h * np.uint64(FILTER_MULTIPLIER)) >> np.uint64(64 - bits)] = 1
    packed = np.packbits(table, bitorder="little")
    return {"bits": bits, "table": base64.b64encode(packed.tobytes()).decode("ascii")}


def _four(model: str, values: Any) -> Weights:
    w = tuple(float(x) for x in values)
    if len(w) != 4:
        raise ValueError(f"{model}: 4 weights expected")
    return (w[0], w[1], w[2], w[3])


# Up to this many candidate rows (band hits, repeats counted), a lookup compares them in Python.
_FEW_CANDIDATES: Final = 48


Lines = tuple[list[tuple[float, float]], list[tuple[float, float]]]


def _lines(weights: Sequence[Weights]) -> Lines:
    def line(ok: float, failed: float) -> tuple[float, float]:
        # clamped at the outcome's ends (0 and OUTCOME_SCALE): the shift stays within +-700
        low, high = max(-700.0, min(700.0, failed)), max(-700.0, min(700.0, ok))
        return low, (high - low) / OUTCOME_SCALE

    return [line(w[0], w[1]) for w in weights], [line(w[2], w[3]) for w in weights]


class Neighbours:
    """The neighbour memory: for a prompt, the training prompt whose ending nearly repeats its own,
    and that prompt's recorded outcome per model, moving each model's prediction by learned weights.

    RouterBench's Winogrande comes in twins (one trigger word changed, the answer flipped): a model
    biased toward one option gets one twin right and the other wrong, so a near-duplicate's success
    there predicts failure; MMLU's exact repeats agree. The weights (per model: an exact repeat's
    success and failure, a near one's) are learned with their sign free, on top of the default's
    calibrated logit; a prompt without a neighbour is predicted exactly as without the memory.
    """

    def __init__(self, section: Mapping[str, Any], models: Sequence[str], source: str) -> None:
        import numpy as np

        try:
            self.hashes = int(section["hashes"])
            band = int(section["band"])
            if self.hashes <= 0 or band <= 0 or self.hashes % band or band != 4:
                raise ValueError(f"hashes {self.hashes} in bands of {band} (4 bytes per band are read)")
            self._parameters = _hash_parameters(self.hashes, int(section["seed"]))
            self._filter, self._filter_shift = _filter(section.get("filter"))
            self._multiplier = np.uint64(FILTER_MULTIPLIER)
            raw = base64.b64decode(section["signatures"])
            if len(raw) % self.hashes:
                raise ValueError("signatures are not whole rows")
            self._signatures = np.frombuffer(raw, dtype=np.uint8).reshape(-1, self.hashes)
            rows = len(self._signatures)
            self._near = near_matches(self.hashes, float(section.get("jaccard", NEIGHBOUR_JACCARD)))
            self._outcomes: dict[str, npt.NDArray[np.uint8]] = {}
            self._weights: dict[str, Weights] = {}
            # Per task (files trained with tasks): each model's own weights; a prompt recognised as
            # none of the tasks, or a model without weights for its task, uses the pooled ones.
            self._task_weights: dict[str, dict[str, Weights]] = {}
            for model, spec in (section.get("models") or {}).items():
                if model not in models:
                    continue
                outcomes = np.frombuffer(base64.b64decode(spec["outcomes"]), dtype=np.uint8)
                if len(outcomes) != rows:
                    raise ValueError(f"{model}: {len(outcomes)} outcomes for {rows} signatures")
                self._outcomes[model] = outcomes
                self._weights[model] = _four(model, spec["weights"])
                for task, weights in (spec.get("tasks") or {}).items():
                    self._task_weights.setdefault(str(task), {})[model] = _four(model, weights)
            for per_model in self._task_weights.values():
                for model, weights in self._weights.items():
                    per_model.setdefault(model, weights)
        except (KeyError, TypeError, ValueError) as exc:
            raise AdequacyError(
                f"{source}: malformed neighbours section ({exc!r}); retrain it with `router train` "
                "(or `router train --no-neighbours` for a file without it)."
            ) from None
        self.rows = rows
        # Per training prompt, every remembered model's outcome byte in one row (one gather per
        # hit), and each model's column: the hit's shifts are then worked out in plain Python.
        self._columns = {model: k for k, model in enumerate(self._outcomes)}
        self._table = (
            np.column_stack(list(self._outcomes.values()))
            if self._outcomes
            else np.zeros((rows, 0), np.uint8)
        )
        # Exact repeats (every byte agreeing) by the signature itself: the earliest row of each.
        self._exact: dict[bytes, int] = {}
        for k, raw_row in enumerate(map(bytes, self._signatures)):
            self._exact.setdefault(raw_row, k)
        # Band keys: band number in the high 32 bits, the band's 4 bytes in the low ones; sorted,
        # so that a lookup is one searchsorted over every band at once.
        bands = self.hashes // band
        values = self._signatures.view("<u4").astype(np.int64) if rows else np.zeros((0, bands), np.int64)
        keys = (values + (np.arange(bands, dtype=np.int64) << 32)[None, :]).ravel()
        order = np.argsort(keys, kind="stable")
        self._rows = (order // bands).astype(np.intp)
        # Each distinct key once, and where its rows start in _rows (CSR); a last key above every
        # real one: searchsorted's answer is always a valid position.
        unique, starts = np.unique(keys[order], return_index=True)
        self._keys = np.append(unique, np.iinfo(np.int64).max)
        self._starts = np.append(starts, len(order)).astype(np.intp)
        self._offsets = np.arange(bands, dtype=np.int64) << 32
        self._np = np
        # For lookups in plain Python (cheaper than numpy calls for the few rows a lookup touches):
        # the rows' signatures and outcome bytes as bytes, the CSR arrays as memoryviews.
        self._blob = self._signatures.tobytes()
        self._outcome_blob = self._table.tobytes()
        self._start_view = self._starts.data
        self._row_view = self._rows.data
        # Per set of weights (None: pooled; else a task's) and tier, per outcome column: the logit's
        # shift as a line in the outcome byte: w_fail + (w_ok - w_fail) * byte / OUTCOME_SCALE, its
        # magnitude capped so that e^shift stays finite.
        self._lines: dict[str | None, Lines] = {
            name: _lines([weights[m] for m in self._outcomes])
            for name, weights in ((None, self._weights), *self._task_weights.items())
        }
        # Weights that move nothing (a task with too few near repeats to learn from): no lookup.
        self._inert_tasks = frozenset(
            name for name, (exact, near) in self._lines.items() if not any(map(any, exact + near))
        )

    def find(self, text: str) -> tuple[int, int] | None:
        """The training prompt nearest-repeating this one: (its row, tier: 0 = an exact repeat,
        1 = a near one), or None. Ties go to the earliest row."""
        words = _words(text)
        if not words:
            return None
        h = _bigrams(words)
        table = self._filter
        if table is not None:
            slots = h * self._multiplier
            slots >>= self._filter_shift
            if self._np.count_nonzero(table.take(slots)) < FILTER_COVERAGE * len(h):
                return None  # too few of its bigrams occur in any training prompt's ending
        sig = minhash(h, self._parameters)
        raw = sig.tobytes()
        exact = self._exact.get(raw)
        if exact is not None:
            return exact, 0
        keys = self._keys
        query = self._offsets + sig.view("<u4")
        at = keys.searchsorted(query)
        hits = at[keys[at] == query].tolist()  # the last key, above every real one, never hits
        if not hits:
            return None
        starts, rows_of, hashes = self._start_view, self._row_view, self.hashes
        # Most lookups: a handful of candidate rows, compared in plain Python as integers (XOR: a
        # zero byte agrees); many (a template's bands, shared by hundreds of rows) are left to numpy.
        candidates: set[int] = set()
        total = 0
        for k in hits:
            i, j = starts[k], starts[k + 1]
            total += j - i
            if total > _FEW_CANDIDATES:
                return self._find_many(sig, hits)
            candidates.update(rows_of[i:j])
        mine = int.from_bytes(raw, "little")
        blob = self._blob
        best = row = -1
        for r in candidates:
            agree = (
                (mine ^ int.from_bytes(blob[r * hashes : (r + 1) * hashes], "little"))
                .to_bytes(hashes, "little")
                .count(0)
            )
            if agree > best or (agree == best and r < row):
                best, row = agree, r
        return (row, 1) if best >= self._near else None

    def _find_many(self, sig: npt.NDArray[np.uint8], hits: list[int]) -> tuple[int, int] | None:
        """``find`` among the rows of many band hits, compared in numpy."""
        np, starts = self._np, self._start_view
        rows = np.concatenate([self._rows[starts[k] : starts[k + 1]] for k in hits])
        matches = np.count_nonzero(self._signatures[rows] == sig, axis=1)
        most = int(matches.max())  # never all of them: an exact repeat is found by its signature
        return (int(rows[matches == most].min()), 1) if most >= self._near else None

    @property
    def per_task(self) -> bool:
        """Whether the weights depend on the prompt's task (files trained with tasks)."""
        return bool(self._task_weights)

    def adjust(self, text: str, predicted: Mapping[str, float], task: TaskArg = None) -> dict[str, float]:
        """``predicted`` moved by the prompt's neighbour's outcomes (unchanged without one)."""
        return self.moved(text, predicted, task)[0]

    def moved(
        self, text: str, predicted: Mapping[str, float], task: TaskArg = None
    ) -> tuple[dict[str, float], str | None]:
        """``adjust``, and what moved the predictions for routing's reasons (None: nothing).

        ``task``: the task the prompt was recognised as (its weights; None: the pooled ones), or a
        function giving it, called only when the prompt has a neighbour and the weights are per task.
        """
        unchanged = predicted if isinstance(predicted, dict) else dict(predicted), None
        lines = None
        if not callable(task):
            lines = self._lines_for(task)
            if lines is None:  # this task's weights are all zero: its near repeats don't count
                return unchanged
        found = self.find(text)
        if found is None:
            return unchanged
        if callable(task):
            lines = self._lines_for(task())
        if lines is None:
            return unchanged
        row, tier = found
        line = lines[tier]
        width = len(self._columns)
        outcomes = self._outcome_blob[row * width : (row + 1) * width]
        columns, exp = self._columns, math.exp
        out = dict(predicted)
        for model, p in predicted.items():
            k = columns.get(model)
            if k is None or outcomes[k] == OUTCOME_UNKNOWN:
                continue
            intercept, slope = line[k]
            shift = intercept + slope * outcomes[k]
            if shift:
                # sigmoid(logit(p) + shift), without the logit: p e^s / (1 - p + p e^s)
                factor = exp(shift)
                out[model] = p * factor / (1.0 - p + p * factor)
        return out, NEIGHBOUR_NOTES[tier]

    def _lines_for(self, task: str | None) -> Lines | None:
        """The lines of a task's weights (else the pooled ones); None when they are all zero."""
        key = task if task in self._lines else None
        return None if key in self._inert_tasks else self._lines[key]


class AdequacyError(ValueError):
    """An adequacy file that can't be used; the message names the file and what to do."""


def prompt_text(prompt: str | Sequence[Mapping[str, Any]] | None) -> str:
    """The text a prompt's adequacy is judged on: every message's text content, in order."""
    if prompt is None:
        return ""
    if isinstance(prompt, str):
        return prompt
    parts: list[str] = []
    for message in prompt:
        if not isinstance(message, Mapping):
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, Sequence):
            for part in content:
                if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                    parts.append(part["text"])
    return "\n".join(parts)


def encode_floats(values: Iterable[float]) -> str:
    """float32 little-endian, base64: a third of the size of JSON numbers, and exact on reload."""
    import numpy as np

    return base64.b64encode(np.asarray(list(values), dtype="<f4").tobytes()).decode("ascii")


def decode_floats(text: str) -> npt.NDArray[np.float32]:
    import numpy as np

    return np.frombuffer(base64.b64decode(text), dtype="<f4")


def prompt_fingerprint(text: str) -> str:
    """A short, stable hash of a prompt: how a training set is recorded without its text."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


class Adequacy:
    """A loaded adequacy file: ``predict(text)`` gives each model's probability of success."""

    def __init__(
        self, data: Mapping[str, Any], *, source: str = "<memory>", digest: str | None = None
    ) -> None:
        import numpy as np

        self._np = np
        self.source = source
        self.data = data
        if data.get("format") != FORMAT:
            raise AdequacyError(
                f"{source}: not an adequacy file (format is not {FORMAT!r}); make one with `router train`."
            )
        if data.get("version") not in READABLE_VERSIONS:
            raise AdequacyError(
                f"{source}: adequacy file version {data.get('version')!r}; "
                f"this router reads versions {', '.join(map(str, sorted(READABLE_VERSIONS)))}. "
                "Retrain it with this router's `router train`."
            )
        try:
            featurizer = data["featurizer"]
            vocabulary: list[str] = list(featurizer["vocabulary"])
            idf = decode_floats(featurizer["idf"]).astype(np.float64)
            models: Mapping[str, Mapping[str, Any]] = data["models"]
            self.models: tuple[str, ...] = tuple(models)
            coef = np.column_stack([decode_floats(models[m]["coef"]).astype(np.float64) for m in self.models])
            intercept = np.array([float(models[m]["intercept"]) for m in self.models])
            # Platt scaling fitted on held-out folds (version 2); version 1 files predict uncalibrated.
            calibration = [models[m].get("calibration") or {} for m in self.models]
            slope = np.array([float(c.get("a", 1.0)) for c in calibration])
            shift = np.array([float(c.get("b", 0.0)) for c in calibration])
            reference = data.get("reference_tokens")
            self.reference_tokens: float | None = None if reference is None else float(reference)
            low, high = featurizer.get("ngram_range", (1, 2))
            self._max_chars = int(featurizer.get("max_chars", DEFAULT_MAX_CHARS))
            self._lowercase = bool(featurizer.get("lowercase", True))
            self._sublinear = bool(featurizer.get("sublinear_tf", True))
            pattern = featurizer.get("token_pattern", TOKEN_PATTERN)
            # The same tokens without the word-boundary checks, which cost a third of the time:
            # findall takes maximal runs of word characters either way (tests pin the equality).
            self._token = re.compile(_FAST_TOKEN if pattern == TOKEN_PATTERN else pattern)
        except (KeyError, TypeError, ValueError) as exc:
            raise AdequacyError(
                f"{source}: malformed adequacy file ({exc!r}); retrain it with `router train`."
            ) from None
        if len(idf) != len(vocabulary) or coef.shape[0] != len(vocabulary):
            raise AdequacyError(f"{source}: vocabulary, IDF and weights differ in length; retrain it.")
        if (int(low), int(high)) not in ((1, 1), (1, 2)):
            raise AdequacyError(f"{source}: ngram_range {low}-{high} is not supported (1-1 or 1-2).")
        self._bigrams = int(high) == 2
        self._lookup(vocabulary, pattern == TOKEN_PATTERN)
        # A term's frequency as the prediction weighs it, by its count (log(count) + 1 with
        # sublinear_tf): one gather instead of a cast, a log and an add per prediction. A count is at
        # most the tokens of max_chars characters (findall finds at most one more than characters).
        counted = np.arange(max(self._max_chars, 0) + 2, dtype=np.float64)
        if self._sublinear:
            counted[0] = -np.inf  # log(0) + 1, as computing it gives (a count of 0 is never counted)
            counted[1:] = np.log(counted[1:]) + 1.0
        self._tf: npt.NDArray[np.float64] = counted
        self._idf = idf
        self._intercept = intercept * slope + shift
        self._intercepts: tuple[float, ...] = tuple(self._intercept.tolist())
        # What a prompt without any known term gets: the intercepts alone.
        self._prior = tuple(_sigmoids(self._intercepts))
        self.digest = digest or hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
        suggested = data.get("suggested") or {}
        self.suggested: dict[str, float] = {
            key: float(suggested[key])
            for key in ("min_success", "max_shortfall", "cost_weight")
            if suggested.get(key) is not None
        }
        self._fingerprints: frozenset[str] | None = None
        self._featurizer_id: str | None = None
        section = data.get("neighbours")
        self.neighbours: Neighbours | None = (
            Neighbours(section, self.models, source) if isinstance(section, Mapping) else None
        )
        centroids = self._tasks(data, len(vocabulary))
        # One row per term: its IDF, then per model IDF x coefficient x the calibration's slope (which
        # folds into the weights), then per task IDF x centroid. A prediction gathers the prompt's
        # rows once; one product with its term frequencies gives every logit and task similarity.
        self._table = np.ascontiguousarray(
            np.hstack([idf[:, None], coef * idf[:, None] * slope[None, :], centroids * idf[:, None]])
        )
        # The IDF and the tasks' columns alone: recognising the task without predicting (task_of).
        self._task_table = np.ascontiguousarray(np.hstack([idf[:, None], centroids * idf[:, None]]))

    def _lookup(self, vocabulary: Sequence[str], default_pattern: bool) -> None:
        """The tables ``counts`` reads: each word of the vocabulary (a unigram or either half of a
        bigram) gets a token id; a unigram's term is ``_uni[id]``, a bigram's is found by its key
        (``_pair_key(first, second)``: the two ids' 4-byte values side by side, read as one 8-byte
        integer) in the sorted ``_bigram_keys``. Ids ``W`` (a word outside the vocabulary) and
        ``W + 1`` (a one-character run, which is not a token) have no term.

        Counting then takes one dict lookup per token and a few vector operations for the prompt,
        unigrams and bigrams together, instead of counting strings and pairs of strings."""
        import numpy as np

        ids: dict[str, int] = {}
        unigrams: list[tuple[int, int]] = []
        bigrams: list[tuple[str, str, int]] = []
        for i, term in enumerate(vocabulary):
            first, _, second = term.partition(" ")
            if second:
                bigrams.append((first, second, i))
                ids.setdefault(first, len(ids))
                ids.setdefault(second, len(ids))
            else:
                unigrams.append((ids.setdefault(term, len(ids)), i))
        size = len(ids)
        if size + 2 > _MAX_IDS:
            raise AdequacyError(
                f"{self.source}: {size:,} words in the vocabulary, more than the {_MAX_IDS - 2:,} a file "
                "may have; retrain it with `router train` (its files keep at most 50,000 terms)."
            )
        self._unknown = size
        self._uni = np.full(size + 2, -1, dtype=np.intp)
        for word, i in unigrams:
            self._uni[word] = i
        keys = np.array([_pair_key(ids[a], ids[b]) for a, b, _ in bigrams], dtype=np.int64)
        order = np.argsort(keys, kind="stable")
        # A last key above every real one: searchsorted's answer is always a valid position.
        self._bigram_keys = np.append(keys[order], np.iinfo(np.int64).max)
        self._bigram_terms = np.append(np.array([i for _, _, i in bigrams], dtype=np.intp)[order], -1)
        # What counting's one concatenation puts around the prompt's terms: a "no term" below them
        # (so the sorted terms always start with a run of -1) and one above them all (so the last
        # real run has an end to compare with); the run-length count then needs no filter.
        self._below = np.array([-1], dtype=np.intp)
        self._above = np.array([len(vocabulary)], dtype=np.intp)
        self._ids = ids.get
        # ASCII prompts (most of them) skip the regex: one byte table maps every non-word character to
        # a space (and upper case to lower, if the file lowercases), and bytes.split() then gives the
        # runs of word characters; runs of one character, which the regex doesn't match, are dropped
        # by their id. On ASCII text the Unicode and ASCII classes of \w are the same characters.
        self._ascii_ids: Any = None
        if default_pattern:
            word_chars = {c for c in range(128) if chr(c).isalnum() or c == ord("_")}
            lower = self._lowercase
            self._translate = bytes(
                (c + 32 if lower and 65 <= c <= 90 else c) if c in word_chars else 32 for c in range(256)
            )
            # Each id as its 4 bytes, joined into the prompt's id array in one call (numpy's fromiter
            # packs item by item); a one-character run joins nothing: it is dropped, as the regex does.
            endian = sys.byteorder
            ascii_ids = {w.encode("ascii"): i.to_bytes(4, endian) for w, i in ids.items() if w.isascii()}
            for c in word_chars:
                ascii_ids[bytes((c,))] = b""
            self._ascii_ids = ascii_ids.get
            self._unknown_bytes = size.to_bytes(4, sys.byteorder)

    def _tasks(self, data: Mapping[str, Any], size: int) -> npt.NDArray[np.float64]:
        """Version 3: the tasks the file was trained on, each a centroid of its prompts' TF-IDF
        vectors (its largest terms, unit length) with its own suggested setting. A prompt is of the
        task whose centroid is nearest by cosine, if that similarity reaches ``task_threshold``."""
        import numpy as np

        tasks = data.get("tasks") or []
        self.tasks: tuple[str, ...] = ()
        self.task_suggested: dict[str, dict[str, float]] = {}
        self.task_threshold = 0.0
        self.task_thresholds: tuple[float, ...] = ()
        if not tasks:
            return np.zeros((size, 0))
        try:
            names = tuple(str(t["name"]) for t in tasks)
            centroids = np.zeros((size, len(tasks)))
            for j, task in enumerate(tasks):
                terms = np.frombuffer(base64.b64decode(task["terms"]), dtype="<i4")
                centroids[terms, j] = decode_floats(task["weights"])
                self.task_suggested[names[j]] = {
                    key: float(value)
                    for key, value in (task.get("suggested") or {}).items()
                    if key in ("min_success", "max_shortfall", "cost_weight") and value is not None
                }
            self.task_threshold = float(data.get("task_threshold", 0.0))
            # Each task's own threshold (files since per-task thresholds); else the file's one.
            self.task_thresholds = tuple(float(t.get("threshold", self.task_threshold)) for t in tasks)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise AdequacyError(
                f"{self.source}: malformed tasks section ({exc!r}); retrain it with `router train`."
            ) from None
        self.tasks = names
        return centroids

    def task_of(self, idx: npt.NDArray[np.intp], counts: npt.NDArray[np.intp]) -> str | None:
        """The task a prompt (its term counts) is recognised as; None: none of the file's tasks is
        near enough (or the file has none). What ``predict_task`` also gives, without the models'
        columns (the neighbour memory asks for it when a prompt has a neighbour)."""

        if not self.tasks or not len(idx):
            return None
        tf, rows, norm = self._gathered(self._task_table, idx, counts)
        if norm == 0.0:
            return None
        similarity = self._np.dot(tf, rows[:, 1:]).tolist()
        best = similarity.index(max(similarity))
        return self.tasks[best] if similarity[best] / norm >= self.task_thresholds[best] else None

    def _gathered(
        self, table: npt.NDArray[np.float64], idx: npt.NDArray[np.intp], counts: npt.NDArray[np.intp]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], float]:
        """The prompt's term frequencies, its rows of ``table`` (column 0: IDF) and the norm of its
        TF-IDF vector: what the predictions and the task's similarity both start from."""
        np = self._np
        try:
            tf = self._tf.take(counts)
        except IndexError:  # counts not from this file's counting (predict_counts is public)
            tf = counts.astype(np.float64)
            if self._sublinear:
                tf = np.log(tf) + 1.0
        rows = table.take(idx, axis=0)
        weights = tf * rows[:, 0]
        return tf, rows, math.sqrt(np.dot(weights, weights))

    def suggested_for(self, task: str | None) -> dict[str, float]:
        """A task's suggested setting, else the file's global one."""
        return self.task_suggested.get(task, self.suggested) if task is not None else self.suggested

    @classmethod
    def load(cls, path: str | Path) -> Adequacy:
        """Read an adequacy file; errors name the file and say how to make a good one."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise AdequacyError(
                f"{path}: can't read the adequacy file ({exc.strerror}); make one with `router train`."
            ) from None
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise AdequacyError(
                f"{path}: not JSON ({exc}); make an adequacy file with `router train`."
            ) from None
        if not isinstance(data, dict):
            raise AdequacyError(f"{path}: not an adequacy file; make one with `router train`.")
        try:
            import numpy  # noqa: F401
        except ImportError:
            raise AdequacyError(
                f"{path}: learned adequacy needs numpy: pip install 'router-sdk[adequacy]'."
            ) from None
        return cls(data, source=str(path), digest=hashlib.sha256(raw).hexdigest())

    @property
    def short_digest(self) -> str:
        return f"sha256:{self.digest[:12]}"

    @property
    def featurizer_id(self) -> str:
        """What makes two files' features the same (vocabulary and tokenizing, not the IDF weights):
        rows a production ledger recorded under one file can train the next file with the same one."""
        if self._featurizer_id is None:
            spec = {k: v for k, v in self.data["featurizer"].items() if k != "idf"}
            raw = json.dumps(spec, sort_keys=True, ensure_ascii=False).encode("utf-8", "surrogatepass")
            self._featurizer_id = hashlib.sha256(raw).hexdigest()[:16]
        return self._featurizer_id

    def counts(self, text: str) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """The prompt's term counts, sparse: (vocabulary indices, how often each occurs).

        Raw counts, not weights: they are what the ledger keeps for retraining without the text
        (IDF is refitted then), and the weights follow from them in a few vector operations.
        """
        np = self._np
        text = text[-self._max_chars :]
        if self._ascii_ids is not None and text.isascii():
            tokens = text.encode("ascii").translate(self._translate).split()
            ids: Any = b"".join(map(self._ascii_ids, tokens, repeat(self._unknown_bytes)))
            n = len(ids) // 4
        else:
            words = self._token.findall(text.lower() if self._lowercase else text)
            n = len(words)
            ids = np.fromiter(map(self._ids, words, repeat(self._unknown)), np.int32, n)
        # ids: the tokens' 4-byte ids, as bytes or as an array (numpy reads either as a buffer)
        found = [self._below, self._uni.take(np.frombuffer(ids, np.int32))]
        if self._bigrams and n > 1:
            # Each bigram's key is the 8 bytes of its two ids: one overlapping, strided view.
            keys = np.ndarray((n - 1,), np.int64, ids, 0, (4,))
            at = self._bigram_keys.searchsorted(keys)
            found.append(self._bigram_terms.take(at[self._bigram_keys.take(at) == keys]))
        found.append(self._above)
        # Sorted, the terms are a run of -1 (no term: at least the one below), each term's run, and
        # the one above them all: the last position of each run but that one gives each term, and
        # the distance from the previous run's last its count.
        terms = np.concatenate(found)
        terms.sort()
        ends = (terms[:-1] != terms[1:]).nonzero()[0]
        last = ends[1:]
        return terms.take(last), last - ends[:-1]

    def weights(self, idx: npt.NDArray[np.intp], counts: npt.NDArray[np.intp]) -> npt.NDArray[np.float64]:
        """TF-IDF weights of term counts, L2-normalized (scikit-learn's ``TfidfVectorizer``)."""
        import numpy as np

        tf = counts.astype(np.float64)
        if self._sublinear:
            tf = np.log(tf) + 1.0
        weights = tf * self._idf[idx]
        norm = math.sqrt(float(weights @ weights))
        if norm > 0:
            weights /= norm
        return weights

    def features(self, text: str) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
        """The prompt's TF-IDF vector, sparse: (vocabulary indices, L2-normalized weights)."""
        idx, counts = self.counts(text)
        return idx, self.weights(idx, counts)

    def predict_counts(self, idx: npt.NDArray[np.intp], counts: npt.NDArray[np.intp]) -> dict[str, float]:
        """Each model's probability of success, from the prompt's term counts (``counts``)."""
        return self.predict_task(idx, counts)[0]

    def predict_task(
        self, idx: npt.NDArray[np.intp], counts: npt.NDArray[np.intp]
    ) -> tuple[dict[str, float], str | None]:
        """``predict_counts``, and the task the prompt is recognised as (``task_of``): one pass."""

        if not len(idx):
            return dict(zip(self.models, self._prior, strict=True)), None
        # One gather of the prompt's rows of _table (IDF, then each model's and task's weights)
        # and one product give the weights' norm, every logit and every task similarity; the
        # dozen numbers that come out are finished in Python, cheaper than as arrays.
        tf, rows, norm = self._gathered(self._table, idx, counts)
        if norm == 0.0:  # only terms of IDF 0 (a hand-made file): no evidence either way
            return dict(zip(self.models, self._prior, strict=True)), None
        raw = self._np.dot(tf, rows).tolist()
        m = len(self.models) + 1
        probabilities = _sigmoids([b + r / norm for b, r in zip(self._intercepts, raw[1:m], strict=True)])
        task = None
        if self.tasks:
            similarity = [r / norm for r in raw[m:]]
            best = similarity.index(max(similarity))
            if similarity[best] >= self.task_thresholds[best]:
                task = self.tasks[best]
        return dict(zip(self.models, probabilities, strict=True)), task

    def predict(self, text: str) -> dict[str, float]:
        """Each model's probability of success on this prompt (with its neighbour's outcomes, if
        the file has a neighbour memory)."""
        return self.adjust(text, *self.predict_task(*self.counts(text)))

    def adjust(self, text: str, predicted: Mapping[str, float], task: TaskArg = None) -> dict[str, float]:
        """Predictions from the term counts (``predict_counts``) moved by the prompt's near-duplicate
        in the training data, if the file has a neighbour memory and the prompt has one (``task``:
        the task the prompt was recognised as, whose weights the memory uses)."""
        if self.neighbours is None:
            return dict(predicted)
        return self.neighbours.adjust(text, predicted, task)

    def trained_on(self, texts: Iterable[str]) -> int:
        """How many of ``texts`` were in this file's training data (by fingerprint)."""
        if self._fingerprints is None:
            recorded = (self.data.get("training") or {}).get("fingerprints") or ""
            self._fingerprints = frozenset(recorded.split()) if isinstance(recorded, str) else frozenset()
        return sum(1 for text in texts if prompt_fingerprint(text) in self._fingerprints)


@dataclass(frozen=True, slots=True)
class AdequacyGate:
    """A route's or feature's use of an adequacy file: who passes for one request, and why not.

    Three settings, any of them: ``min_success`` rejects a model predicted below an absolute floor;
    ``max_shortfall`` rejects one predicted more than that far below the likeliest candidate;
    ``cost_weight`` (the best rule in cross-validation, docs/adequacy.md) prices predicted success:
    each model scores ``p - cost_weight * cost / reference``, where the reference is the dearest
    candidate's cost for a prompt of the training data's typical length (the file's
    ``reference_tokens``; without it, for this prompt). The best score is the first choice; only
    models more likely than it stay on, as (dearer) retries.
    """

    adequacy: Adequacy
    min_success: float | None = None
    max_shortfall: float | None = None
    on_inadequate: str = "best"  # "best": keep the most likely model; "fail": reject them all
    cost_weight: float | None = None
    # cost_weight: auto: per request, the suggestion for the task recognised in the prompt
    # (``Adequacy.task_of``), else the file's global suggestion, else DEFAULT_COST_WEIGHT.
    auto: bool = False
    # With auto, per task the file knows (and None): the weight and the rule routing shows, worked
    # out once here (the gate is frozen) instead of per request.
    _per_task: Mapping[str | None, tuple[float | None, str]] = field(
        init=False, repr=False, compare=False, default_factory=lambda: _NO_TASKS
    )

    def __post_init__(self) -> None:
        if self.auto:
            per_task = {}
            for task in (None, *self.adequacy.tasks):
                weight = self.weight_for(task)[0]
                per_task[task] = (weight, self.describe(weight, task))
            object.__setattr__(self, "_per_task", MappingProxyType(per_task))

    @staticmethod
    def prompt_text(prompt: str | Sequence[Mapping[str, Any]] | None) -> str:
        """``prompt_text``: what the gate reads of a request (the planner imports this module only
        for a policy with adequacy, and reaches it through its gate)."""
        return prompt_text(prompt)

    def rule_for(self, task: str | None) -> tuple[float | None, str]:
        """With ``auto``: the cost_weight for a prompt recognised as ``task``, and the rule to show."""
        known = self._per_task.get(task)
        if known is not None:
            return known
        weight = self.weight_for(task)[0]
        return weight, self.describe(weight, task)

    def describe(self, cost_weight: float | None = None, task: str | None = None) -> str:
        """The rule routing shows; with ``auto``, per request: the weight used and the task it is for."""
        settings = [
            f"{key} {value:g}"
            for key, value in (
                ("min_success", self.min_success),
                ("max_shortfall", self.max_shortfall),
                ("cost_weight", self.cost_weight if cost_weight is None else cost_weight),
            )
            if value is not None
        ]
        if self.auto:
            if cost_weight is None:
                settings.append("cost_weight auto")
            else:
                settings.append(f"(task {task})" if task is not None else "(no task recognised: global)")
        return f"adequacy {self.adequacy.short_digest} {' '.join(settings)}"

    def resolve(
        self, counts: tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]
    ) -> tuple[float | None, str | None]:
        """The cost_weight for this prompt and the task it was recognised as (None: not ``auto``,
        or no task recognised)."""
        return self.weight_for(self.adequacy.task_of(*counts) if self.auto else None)

    def weight_for(self, task: str | None) -> tuple[float | None, str | None]:
        """The cost_weight for a prompt recognised as ``task`` (and the task, for the rule)."""
        if not self.auto:
            return self.cost_weight, None
        weight = self.adequacy.suggested_for(task).get("cost_weight")
        if weight is None:
            weight = self.adequacy.suggested.get("cost_weight", DEFAULT_COST_WEIGHT)
        return weight, task

    def verdicts(
        self,
        text: str,
        names: Iterable[str],
        costs: Mapping[str, float | None] | None = None,
        tokens: tuple[int, int] | None = None,
    ) -> tuple[dict[str, str], dict[str, float]]:
        """Rejection reasons for the models of ``names`` predicted to fall short on this prompt."""
        rejected, judged, _ = self.judge(text, names, costs, tokens)
        return rejected, judged

    def judge(
        self,
        text: str,
        names: Iterable[str],
        costs: Mapping[str, float | None] | None = None,
        tokens: tuple[int, int] | None = None,
        *,
        counts: tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]] | None = None,
        cost_weight: float | None = None,
        predicted: Mapping[str, float] | None = None,
        task: Any = _UNSET,
    ) -> tuple[dict[str, str], dict[str, float], tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]]:
        """``verdicts``, and the prompt's term counts (what the ledger keeps for retraining).

        ``costs``: each model's expected cost for this request, and ``tokens`` its (prompt, output)
        tokens: ``cost_weight`` needs them (a model without a cost is not priced against the others).
        ``counts`` and ``predicted`` (the prompt's, if already counted and predicted) and
        ``cost_weight`` (what ``resolve`` gave; default: the gate's own, resolved here when ``auto``);
        ``task`` (the task ``predict_task`` recognised with ``predicted``: saves recognising it again
        when the prompt has a neighbour and the memory's weights are per task).
        Models the file doesn't know are not judged (their static floors apply). When every judged
        model falls short, ``on_inadequate: best`` keeps the one most likely to succeed.
        """
        if counts is None:
            counts = self.adequacy.counts(text)
        if predicted is None:
            predicted, task = self.adequacy.predict_task(*counts)
        elif task is _UNSET and self.auto and cost_weight is None:
            task = self.adequacy.task_of(*counts)
        # The term counts' predictions (what the planner passes) moved by the prompt's neighbour,
        # with its task's weights (recognised here only if the prompt has a neighbour).
        note = None
        if self.adequacy.neighbours is not None:
            known = counts
            predicted, note = self.adequacy.neighbours.moved(
                text,
                predicted,
                (lambda: self.adequacy.task_of(*known)) if task is _UNSET else task,
            )
        if cost_weight is None:
            cost_weight = self.weight_for(None if task is _UNSET else task)[0]
        judged = {name: predicted[name] for name in names if name in predicted}
        if not judged:
            return {}, judged, counts
        rejected: dict[str, str] = {}
        floor, shortfall = self.min_success, self.max_shortfall
        if floor is not None or shortfall is not None:
            likeliest = max(judged, key=judged.__getitem__)
            top = judged[likeliest]
            below = (
                f" below {likeliest}'s {top:.2f} (max_shortfall {shortfall:g})"
                if shortfall is not None
                else ""
            )
            for name, p in judged.items():
                if floor is not None and p < floor:
                    rejected[name] = f"predicted success {p:.2f} < {floor:.2f}"
                elif shortfall is not None and p < top - shortfall:
                    rejected[name] = f"predicted success {p:.2f}, {top - p:.2f}{below}"
        if cost_weight is not None and costs is not None:
            self._price(judged, costs, tokens, rejected, cost_weight)
        if len(rejected) == len(judged) and self.on_inadequate == "best":
            del rejected[max(judged, key=judged.__getitem__)]  # the likeliest
        if note is not None:
            rejected = {name: reason + note for name, reason in rejected.items()}
        return rejected, judged, counts

    def _price(
        self,
        judged: Mapping[str, float],
        costs: Mapping[str, float | None],
        tokens: tuple[int, int] | None,
        rejected: dict[str, str],
        weight: float,
    ) -> None:
        """``cost_weight``: among the models still passing, the best ``p - w * cost / reference`` is
        the first choice; a model scoring lower and no likelier is rejected (it is cheaper and worse,
        or dearer and no better); likelier ones stay, dearer, as retries."""
        priced = {
            name: cost
            for name, cost in costs.items()
            if cost is not None and cost >= 0 and name in judged and name not in rejected
        }
        if len(priced) < 2:
            return
        dearest = max(priced.values())
        if dearest <= 0:
            return
        reference = reference_cost(dearest, tokens, self.adequacy.reference_tokens)
        # cost / reference first: weight / reference overflows for a tiny (subnormal) reference.
        score = {name: judged[name] - weight * (cost / reference) for name, cost in priced.items()}
        first = max(score, key=score.__getitem__)
        p_first = judged[first]
        # Formatted once: the tail every rejection shares; most requests reject most candidates.
        # (%-formatting: the same text as f"{x:.2f}", in one call per reason.)
        tail = f" < {first}'s {score[first]:.2f} (cost_weight {weight:g})".replace("%", "%%")
        reason = "predicted success %.2f at %.0f%% of the dearest's cost scores %.2f" + tail
        for name, cost in priced.items():
            p = judged[name]
            if p <= p_first and name != first:
                rejected[name] = reason % (p, 100.0 * (cost / dearest), score[name])


def reference_cost(dearest: float, tokens: tuple[int, int] | None, reference_tokens: float | None) -> float:
    """What ``cost_weight`` prices against: the dearest candidate's cost, moved toward what it would
    be on a prompt of the training data's typical length (by the square root of the length ratio),
    so that a long prompt weighs its price more, and a short one less, than the typical prompt;
    ``dearest`` itself without the lengths.

    The square root: in cross-validation (docs/adequacy.md) the full ratio did best on MMLU, whose
    prompt lengths vary most, and no scaling did best on RouterBench; the square root came within
    noise of the best on both.
    """
    if tokens is None or reference_tokens is None:
        return dearest
    prompt, output = tokens
    return dearest * math.sqrt((reference_tokens + output) / max(prompt + output, 1))


def choose(
    predicted: Mapping[str, float],
    by_cost: Sequence[str],
    *,
    min_success: float | None = None,
    max_shortfall: float | None = None,
    cost_weight: float | None = None,
    costs: Mapping[str, float] | None = None,
    scale: float = 1.0,
) -> str:
    """What the gate followed by ``cheapest`` picks (training and tests use it to score thresholds).

    ``by_cost``: the models, cheapest first; ``costs``: their costs for this prompt, and ``scale``
    (``reference_cost`` / the dearest's cost) for ``cost_weight``.
    """
    top = max(predicted[m] for m in by_cost)
    passing = [
        m
        for m in by_cost
        if (min_success is None or predicted[m] >= min_success)
        and (max_shortfall is None or predicted[m] >= top - max_shortfall)
    ]
    if not passing:
        return max(by_cost, key=lambda m: predicted[m])
    if cost_weight is not None and costs is not None and len(passing) > 1:
        dearest = max(costs[m] for m in passing)
        if dearest > 0:
            # max() keeps the first of equal scores: the cheapest, as the gate then `cheapest` do.
            reference = dearest * scale
            return max(passing, key=lambda m: predicted[m] - cost_weight * costs[m] / reference)
    return passing[0]
