"""Data: loss only on the reply, chat template as served, packing that keeps examples apart."""

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # the suite runs with --import-mode=importlib

from tiny_models import rows, tiny_tokenizer

from diaguide.errors import InputError, ModelError
from diaguide.training.data import (
    IGNORE,
    block_causal_mask,
    check_chat_template,
    collate,
    encode,
    epoch_order,
    oversample,
    pack,
    read_rows,
)


def test_loss_only_on_the_reply_in_chat_format(tok):
    [ex] = encode([{"prompt": "hba1c 8.1", "target": "start metformin"}], tok, 512, True)
    text = tok.decode(ex.input_ids)
    assert text == "<|im_start|>user\nhba1c 8.1<|im_end|>\n<|im_start|>assistant\nstart metformin<|im_end|>\n"
    learned = tok.decode([t for t in ex.targets if t != IGNORE])
    assert learned == "start metformin<|im_end|>\n"
    # the reply is predicted from the token before it: targets are the inputs shifted by one
    first = ex.targets.index(next(t for t in ex.targets if t != IGNORE))
    assert ex.input_ids[first + 1] == ex.targets[first]
    assert tok.decode(ex.input_ids[: first + 1]).endswith("<|im_start|>assistant\n")


def test_long_prompt_loses_its_beginning_not_the_reply(tok):
    [ex] = encode([{"prompt": "old " * 50 + "newest", "target": "stop"}], tok, 64, True)
    assert len(ex) == 64
    assert "newest" in tok.decode(ex.input_ids)
    assert tok.decode([t for t in ex.targets if t != IGNORE]).startswith("stop")


def test_template_required_but_missing_is_an_error():
    with pytest.raises(ModelError, match="no chat template"):
        check_chat_template(tiny_tokenizer(chat_template=False), required=True, source="m")
    assert check_chat_template(tiny_tokenizer(chat_template=False), required=False) is False


def test_rows_with_empty_target_are_named(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(
        json.dumps({"prompt": "a", "target": "b"}) + "\n" + json.dumps({"prompt": "a", "target": " "}) + "\n"
    )
    with pytest.raises(InputError, match=r"train\.jsonl:2: target: missing or empty"):
        read_rows(path)
    path.write_text("{not json\n")
    with pytest.raises(InputError, match=r"train\.jsonl:1: not JSON"):
        read_rows(path)


def test_packing_keeps_every_example_whole_and_restarts_positions(tok):
    examples = encode(rows(20), tok, 128, True)
    packed = pack(examples, 256)
    assert sorted(len(e) for r in packed for e in r) == sorted(len(e) for e in examples)
    assert all(sum(len(e) for e in r) <= 256 for r in packed)
    assert len(packed) < len(examples)  # rows hold several examples
    batch = collate(packed[:2], tok.pad_token_id)
    assert batch.real_tokens == sum(len(e) for r in packed[:2] for e in r)
    first = packed[0]
    starts = [sum(len(e) for e in first[:i]) for i in range(len(first))]
    assert all(batch.position_ids[0, s] == 0 for s in starts)
    # no loss across an example boundary: the last token of each example predicts nothing
    assert all(batch.targets[0, s - 1] == IGNORE for s in starts[1:])


def test_block_mask_is_causal_within_and_blind_across_examples():
    seg = torch.tensor([[0, 0, 1, 1, -1]])
    m = block_causal_mask(seg, prefix_len=2)[0, 0]
    assert m[:, :2].all()  # every token sees the prefix
    assert m[1, 2 + 0] and not m[0, 2 + 1]  # causal
    assert not m[2, 2 + 1] and m[3, 2 + 2]  # the second example cannot see the first


def test_epoch_order_is_fixed_by_seed_and_epoch():
    assert epoch_order(10, 3, seed=1, epoch=0) == epoch_order(10, 3, seed=1, epoch=0)
    assert epoch_order(10, 3, seed=1, epoch=0) != epoch_order(10, 3, seed=1, epoch=1)
    assert len(epoch_order(10, 3, seed=1, epoch=0, world=2)) == 4  # the ragged tail is dropped evenly


def test_oversample_repeats_rows_by_their_rarest_decision():
    stop = {
        "prompt": "a",
        "target": "GOAL: -\nMED: stop | glyburide | sulfonylurea\nMED: continue | metformin | metformin",
    }
    start = {"prompt": "b", "target": "MED: start | metformin | metformin | 500 mg | bid\nEND"}
    plain = {"prompt": "c", "target": "MED: continue | metformin | metformin\nLAB: 4548-4 | HbA1c | stop later\nEND"}
    rows = [stop, start, plain]
    assert oversample(rows, {}) is rows
    # a row with several actions takes the largest count; "stop" inside a LAB reason is not an action
    assert oversample(rows, {"stop": 3, "start": 2}) == [stop, stop, stop, start, start, plain]
    assert oversample(rows, {"continue": 2}) == [stop, stop, start, plain, plain]
