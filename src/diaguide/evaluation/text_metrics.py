"""BLEU-4 and ROUGE-1/2/L the way ChatGLM-6B's P-tuning v2 recipe scored its fine-tunes.

What that recipe did (ChatGLM-6B `ptuning/main.py`, `compute_metrics`), for every
prediction/reference pair, whatever the language:

- BLEU-4: `nltk.translate.bleu_score.sentence_bleu([list(reference)], list(prediction),
  smoothing_function=SmoothingFunction().method3)` — on *characters* (spaces and newlines
  included, since `list(str)` keeps them), uniform 4-gram weights, smoothing method 3 (NIST
  geometric sequence smoothing).
- ROUGE-1/2/L: both texts cut into words with `jieba.cut`, joined with spaces and scored with
  `rouge_chinese.Rouge().get_scores(...)`; the F value is kept.
- Every score multiplied by 100 and averaged over the pairs (a mean of sentence scores, not a
  corpus score).

What we do: BLEU-4 exactly so, with nltk (the same function and smoothing). ROUGE with Google's
`rouge-score` package (`RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=<jieba>)`), the
tokenizer being `jieba.cut` with whitespace tokens dropped (what joining with spaces and
splitting again did in the recipe), no lowercasing and no stemming, F-measure kept. Two known
differences from `rouge_chinese` on the same tokens: rouge-score counts repeated n-grams
(clipped counts) where `rouge_chinese` by default counts each distinct n-gram once, and
rouge-score's `rougeL` is the sentence-level LCS over the whole text where `rouge_chinese`
takes a summary-level union LCS over sentences split at "."; on short plan texts the two agree
closely, but the figures are not bit-identical. Scores are on the recipe's 0-100 scale.

The same computation is applied to English text (character BLEU, jieba-cut words, which for
English are the words and punctuation), as the recipe did for any input. An empty prediction
scores 0 (the recipe's `rouge_chinese` raises on an empty hypothesis).
"""

from __future__ import annotations

import functools
import logging

TEXT_METRICS: tuple[str, ...] = ("bleu4", "rouge1", "rouge2", "rougeL")


class _JiebaWords:
    """A rouge-score tokenizer: jieba words, whitespace dropped, case kept."""

    def tokenize(self, text: str) -> list[str]:
        import jieba

        return [w for w in jieba.cut(text) if w.strip()]


@functools.lru_cache(maxsize=1)
def _scorer():
    import jieba
    from rouge_score import rouge_scorer

    jieba.setLogLevel(logging.WARNING)  # jieba announces its dictionary build on stderr otherwise
    return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False, tokenizer=_JiebaWords())


def bleu4_chars(prediction: str, reference: str) -> float:
    """Sentence BLEU-4 on characters with smoothing method 3, on the 0-100 scale."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    if not prediction or not reference:
        return 0.0
    score = sentence_bleu([list(reference)], list(prediction), smoothing_function=SmoothingFunction().method3)
    return 100.0 * float(score)


def rouge_f(prediction: str, reference: str) -> dict[str, float]:
    """ROUGE-1, ROUGE-2 and ROUGE-L F-measures on jieba words, on the 0-100 scale."""
    if not prediction.strip() or not reference.strip():
        return {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    scores = _scorer().score(reference, prediction)  # rouge-score takes (target, prediction)
    return {name: 100.0 * scores[name].fmeasure for name in ("rouge1", "rouge2", "rougeL")}


def text_scores(prediction: str | None, reference: str) -> dict[str, float]:
    """`bleu4`, `rouge1`, `rouge2`, `rougeL` of one prediction against its reference text."""
    prediction = prediction or ""
    return {"bleu4": bleu4_chars(prediction, reference), **rouge_f(prediction, reference)}
