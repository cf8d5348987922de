"""BLEU-4 on characters and ROUGE on jieba words, checked on texts small enough to count by hand."""

from __future__ import annotations

import pytest

from diaguide.evaluation.text_metrics import bleu4_chars, rouge_f, text_scores


def test_rouge_on_words_counted_by_hand():
    # words: pred [start, metformin, today], ref [start, metformin, now]
    # ROUGE-1: 2 shared of 3 and 3 -> F 2/3; ROUGE-2: {start metformin} shared of 2 and 2 -> 1/2; LCS 2 -> 2/3
    scores = rouge_f("start metformin today", "start metformin now")
    assert scores["rouge1"] == pytest.approx(200 / 3)
    assert scores["rouge2"] == pytest.approx(50.0)
    assert scores["rougeL"] == pytest.approx(200 / 3)


def test_rouge_segments_chinese_into_words_not_characters():
    # jieba cuts 二甲双胍 (metformin) as one word: a one-character change is a whole-word miss
    same = rouge_f("继续二甲双胍", "继续二甲双胍")
    changed = rouge_f("继续二甲双胍", "继续二甲双胺")
    assert same["rouge1"] == pytest.approx(100.0)
    assert changed["rouge1"] < 100.0


def test_bleu_counts_characters():
    assert bleu4_chars("二甲双胍 500 mg", "二甲双胍 500 mg") == pytest.approx(100.0)
    # same words in another order: word BLEU-4 would share no 4-gram, character BLEU still overlaps a lot
    swapped = bleu4_chars("glipizide metformin", "metformin glipizide")
    assert 30.0 < swapped < 100.0
    assert bleu4_chars("", "metformin") == 0.0


def test_missing_prediction_scores_zero():
    assert text_scores(None, "MED: start | metformin\nEND") == {
        "bleu4": 0.0,
        "rouge1": 0.0,
        "rouge2": 0.0,
        "rougeL": 0.0,
    }
