"""The seq2seq task: pairs from files, tokenizers saved with the run, sacrebleu's scores,
greedy and beam decoding with and without the cache, `zoo translate` and `zoo data scan`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sacrebleu
import torch
from zoo_transformer.seq2seq import Seq2SeqConfig, TransformerSeq2Seq

import zoo_core
from zoo_core import protocols, testing
from zoo_core.data import scan
from zoo_core.data.pairs import read_pairs
from zoo_core.errors import ZooError
from zoo_core.tasks.seq2seq import (
    BOS,
    EOS,
    PAD,
    Seq2SeqOptions,
    SequenceToSequence,
    beam_search,
    corpus_scores,
    greedy,
)
from zoo_core.testing import check_model
from zoo_core.tokenizers.pair import PairTokenizer

# Tiny sizes of each encoder-decoder, the mixed ones among them.
MODELS = {
    "lstm-seq2seq": {"embed_dim": 32, "hidden_size": 32},
    "lstm-seq2seq-bahdanau": {"embed_dim": 32, "hidden_size": 32},
    "transformer-seq2seq": {"n_embd": 32, "ffn": 64, "n_head": 2},
    "transformer-seq2seq:lstm-encoder": {
        "n_embd": 32,
        "ffn": 64,
        "n_head": 2,
        "encoder": "lstm",
        "norm": "post",
    },
    "transformer-seq2seq:lstm-decoder": {"n_embd": 32, "ffn": 64, "n_head": 2, "decoder": "lstm"},
}


def _zoo(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "zoo_core", *args],
        capture_output=True,
        text=True,
        input=stdin,
    )


def _write_jsonl(path: Path, pairs: list[tuple[str, str]]) -> Path:
    lines = [json.dumps({"source": s, "target": t}) for s, t in pairs]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def scan_files(tmp_path_factory) -> tuple[Path, Path]:
    """A small part of SCAN simple: 400 training pairs and 40 validation pairs."""
    folder = tmp_path_factory.mktemp("scan")
    train, test = scan.split("simple")
    return (
        _write_jsonl(folder / "train.jsonl", train[:400]),
        _write_jsonl(folder / "val.jsonl", test[:40]),
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory, scan_files) -> dict[str, Path]:
    """Each model trained for a few steps: enough to end some outputs with EOS."""
    out = {}
    for key, overrides in MODELS.items():
        folder = tmp_path_factory.mktemp("runs") / key.replace(":", "-")
        zoo_core.train(
            key.split(":")[0],
            data=scan_files[0],
            val_data=scan_files[1],
            out=folder,
            steps=40,
            batch_size=16,
            lr=1e-2,
            eval_interval=1000,  # the final evaluation alone
            progress=False,
            overrides={"warmup": 5, **overrides},
        )
        out[key] = folder
    return out


# -- data ----------------------------------------------------------------------------------------
def test_jsonl_tsv_and_csv_read_the_same_pairs(tmp_path):
    pairs = [("jump twice", "JUMP JUMP"), ('say "hi", then go', "SAY HI\tGO")[:1] + ("GO",)]
    _write_jsonl(tmp_path / "p.jsonl", pairs)
    (tmp_path / "p.tsv").write_text(
        "source\ttarget\n" + "".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8"
    )
    (tmp_path / "p.csv").write_text(
        'source,target\njump twice,JUMP JUMP\n"say ""hi"", then go",GO\n', encoding="utf-8"
    )
    for name in ("p.jsonl", "p.tsv", "p.csv"):
        assert read_pairs(tmp_path / name) == pairs, name


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.jsonl", '{"source": "x"}\n', "line 1 is not an object with 'source' and 'target'"),
        ("a.jsonl", '{"source": "x", "target": 3}\n', "'target' must be a string, not int"),
        ("a.jsonl", '{"source": "x", "target": "Y"\n', "line 1: not valid JSON"),
        ("a.jsonl", '{"source": " ", "target": "Y"}\n', "'source' is empty"),
        ("a.tsv", "a\tb\tc\n", "3 tab-separated fields, not 2"),
        ("a.csv", "src,tgt\na,b\n", "columns 'source' and 'target'"),
        ("a.txt", "a b\n", "not .jsonl, .tsv or .csv"),
        ("a.jsonl", "\n\n", "holds no pairs"),
        ("a.jsonl", b"\xff\xfe{".decode("latin1"), "not UTF-8"),
    ],
)
def test_bad_pairs_are_one_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content.encode("latin1") if "not UTF-8" in message else content.encode())
    with pytest.raises(ZooError, match=message) as raised:
        read_pairs(path)
    assert "\n" not in str(raised.value)


def test_the_default_is_scan_and_its_split_is_an_option():
    task = SequenceToSequence(Seq2SeqOptions(split="length"))
    task.setup(None)
    assert task.data_name == "scan-length"
    assert (len(task.train_set), len(task.val_set)) == (16990, 3920)
    # word tokenizers of their own: the 13 command words, the 6 actions
    assert task.model_config() == {"source_vocab_size": 17, "target_vocab_size": 10}
    assert not task.tokenizer.shared
    with pytest.raises(ZooError, match="simple, length, addprim-jump"):
        SequenceToSequence(Seq2SeqOptions(split="addprim-left")).setup(None)


def test_a_shared_vocabulary_is_one_tokenizer():
    task = SequenceToSequence(Seq2SeqOptions(share_vocab=True))
    task.setup(None)
    assert task.tokenizer.shared
    # 13 words and 6 actions, the unknown id, the 3 special ids
    assert task.model_config() == {"source_vocab_size": 23, "target_vocab_size": 23}
    both = SequenceToSequence(Seq2SeqOptions(share_vocab=True, target_tokenizer="char"))
    with pytest.raises(ZooError, match="a shared vocabulary is one tokenizer"):
        both.setup(None)


def test_batches_are_teacher_forced_and_padded():
    task = SequenceToSequence()
    task.setup(None)
    source, mask, target_in, target_out = task._collate(
        [task._encode([("jump twice", "JUMP JUMP")])[0], task._encode([("walk", "WALK")])[0]]
    )
    assert source[0].tolist()[-1] == EOS and source[1].tolist() == [source[1, 0].item(), EOS, PAD]
    assert mask.tolist() == [[True, True, True], [True, True, False]]
    assert target_in[:, 0].tolist() == [BOS, BOS]
    assert target_out[0].tolist()[-1] == EOS and target_out[1].tolist()[1:] == [EOS, PAD]
    assert torch.equal(target_in[0, 1:], target_out[0, :-1])  # shifted by one


# -- metrics -------------------------------------------------------------------------------------
def test_bleu_and_chrf_are_sacrebleus():
    hypotheses = ["the cat sat on the mat", "a dog ran", "JUMP JUMP LTURN WALK", "hello there"]
    references = ["the cat sat on a mat", "the dog ran away", "JUMP JUMP LTURN WALK", "hi there"]
    scores = corpus_scores(hypotheses, references)
    assert scores["val_bleu"] == sacrebleu.corpus_bleu(hypotheses, [references]).score
    assert scores["val_chrf"] == sacrebleu.corpus_chrf(hypotheses, [references]).score
    assert corpus_scores(references, references)["val_bleu"] == pytest.approx(100.0)
    assert 0 < scores["val_bleu"] < 100


@pytest.mark.parametrize("key", list(MODELS))
def test_evaluation_scores_the_greedy_translations(runs, scan_files, key):
    artifact = zoo_core.load(runs[key])
    metrics = artifact.evaluate()
    pairs = read_pairs(scan_files[1])
    references = [t for _, t in pairs]
    # Evaluation decodes up to twice the longest reference and 10 tokens more (a word a token)
    cap = 2 * max(len(r.split()) for r in references) + 10
    outputs = artifact.translate([s for s, _ in pairs], max_length=cap)
    assert metrics["val_exact_match"] == sum(
        o == r for o, r in zip(outputs, references, strict=True)
    ) / len(pairs)
    assert metrics["val_bleu"] == sacrebleu.corpus_bleu(outputs, [references]).score
    assert metrics["val_chrf"] == sacrebleu.corpus_chrf(outputs, [references]).score
    assert 0 <= metrics["val_token_accuracy"] <= 1 and metrics["val_loss"] > 0


# -- decoding ------------------------------------------------------------------------------------
def _batch(artifact, texts):
    rows = [(artifact.task.encode_source(t), []) for t in texts]
    return artifact.task._collate(rows)[:2]


SOURCES = [
    "jump twice",
    "walk left and run",
    "look around right thrice after turn left",
    "run opposite left twice and jump",
]


@pytest.mark.parametrize("key", list(MODELS))
def test_beam_1_is_greedy_and_the_cache_changes_nothing(runs, key):
    artifact = zoo_core.load(runs[key])
    source, mask = _batch(artifact, SOURCES)
    model = artifact.model
    with torch.no_grad():
        cached = greedy(model, source, mask, 60)
        assert greedy(model, source, mask, 60, use_cache=False) == cached
        assert beam_search(model, source, mask, 1, 60) == cached
        assert beam_search(model, source, mask, 1, 60, use_cache=False) == cached
        wide = beam_search(model, source, mask, 4, 60)
        assert beam_search(model, source, mask, 4, 60, use_cache=False) == wide
    assert any(ids for ids in cached)  # it writes something
    translated = artifact.translate(SOURCES, beam=4, max_length=60)
    assert translated == [artifact.task.decode_target(w) for w in wide]


def test_beam_search_finds_a_likelier_translation_than_greedy(runs):
    """Under a length penalty of 0, beam search ranks by log-probability: its pick is at least
    as likely as greedy's, sequence by sequence."""
    artifact = zoo_core.load(runs["transformer-seq2seq"])
    model, task = artifact.model, artifact.task
    source, mask = _batch(artifact, SOURCES)

    def log_prob(row: int, ids: list[int]) -> float:
        target = torch.tensor([[BOS, *ids]])
        with torch.no_grad():
            logp = model(source[row : row + 1], mask[row : row + 1], target).log_softmax(-1)
        return float(logp[0, torch.arange(len(ids) + 1), torch.tensor([*ids, EOS])].sum())

    with torch.no_grad():
        plain = greedy(model, source, mask, 60)
        beamed = beam_search(model, source, mask, 5, 60, length_penalty=0.0)
    for row in range(len(SOURCES)):
        if EOS in [*plain[row], EOS] and len(plain[row]) < 60:
            assert log_prob(row, beamed[row]) >= log_prob(row, plain[row]) - 1e-4
    assert task.decode_target(beamed[0])  # decodes to words


def test_translate_refuses_bad_options_in_one_line(runs):
    artifact = zoo_core.load(runs["lstm-seq2seq"])
    for options, message in (
        ({"beam": 0}, "the beam must be a whole number, at least 1"),
        ({"max_length": 0}, "max_length must be a whole number"),
        ({"length_penalty": -1.0}, "length_penalty must be in"),
        ({"temperature": 1.0}, "its options are beam, length_penalty, max_length, use_cache"),
    ):
        with pytest.raises(ZooError, match=message):
            artifact.translate("jump", **options)
    with pytest.raises(ZooError, match="give at least one text"):
        artifact.translate([])
    assert isinstance(artifact.translate("jump"), str)


# -- what a run saves ----------------------------------------------------------------------------
def test_both_tokenizers_are_saved_with_the_run(runs):
    saved = json.loads((runs["lstm-seq2seq"] / "tokenizer.json").read_text())
    assert saved["type"] == "source-target"
    assert saved["source"]["type"] == saved["target"]["type"] == "word"
    assert "jump" in saved["source"]["words"] and "JUMP" in saved["target"]["words"]
    config = json.loads((runs["lstm-seq2seq"] / "config.json").read_text())
    assert config["task"] == "seq2seq" and config["tokenizer"] == "source-target"


def test_a_shared_vocabulary_with_shared_embeddings_trains_and_loads(tmp_path, scan_files):
    artifact, _ = zoo_core.train(
        "transformer-seq2seq",
        data=scan_files[0],
        val_data=scan_files[1],
        out=tmp_path / "run",
        steps=2,
        batch_size=4,
        progress=False,
        overrides={
            "n_embd": 16,
            "n_head": 2,
            "ffn": 32,
            "share_vocab": True,
            "share_embeddings": True,
            "label_smoothing": 0.1,
        },
    )
    model = artifact.model
    assert (
        model.source_embed is model.target_embed and model.head.weight is model.target_embed.weight
    )
    saved = json.loads((tmp_path / "run" / "tokenizer.json").read_text())
    assert set(saved) == {"type", "shared"}
    loaded = zoo_core.load(tmp_path / "run")
    assert loaded.tokenizer.shared
    assert loaded.translate(SOURCES) == artifact.translate(SOURCES)


def test_shared_embeddings_need_a_shared_vocabulary(tmp_path, scan_files):
    with pytest.raises(ZooError, match="share_vocab=true") as raised:
        zoo_core.train(
            "transformer-seq2seq",
            data=scan_files[0],
            out=tmp_path / "run",
            steps=1,
            progress=False,
            overrides={"share_embeddings": True, "n_embd": 16, "n_head": 2},
        )
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", ["lstm-seq2seq", "transformer-seq2seq"])
def test_contract_of_the_mixed_and_plain_models(name):
    check_model(name)
    if name == "transformer-seq2seq":
        for encoder in ("attention", "lstm"):
            for decoder in ("attention", "lstm"):
                check_model(name, {"encoder": encoder, "decoder": decoder})


# -- the command line ----------------------------------------------------------------------------
def test_zoo_translate_prints_one_target_per_source(runs):
    run = str(runs["lstm-seq2seq"])
    artifact = zoo_core.load(run)
    done = _zoo("translate", run, "jump twice", "walk left", "--beam", "3")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == artifact.translate(["jump twice", "walk left"], beam=3)
    piped = _zoo("translate", run, "-", "--json", stdin="jump twice\n\nwalk left\n")
    assert piped.returncode == 0, piped.stderr
    assert [r["source"] for r in json.loads(piped.stdout)] == ["jump twice", "walk left"]


def test_zoo_translate_errors_are_one_line(runs, tmp_path):
    run = str(runs["lstm-seq2seq"])
    bad = _zoo("translate", run, "jump", "--beam", "0")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().count("\n") == 0 and "at least 1" in bad.stderr


def test_zoo_generate_with_source_translates_as_zoo_translate(runs):
    run = str(runs["lstm-seq2seq"])
    artifact = zoo_core.load(run)
    sources = ["jump twice", "walk left", "look around right thrice after turn left"]
    given = [flag for text in sources for flag in ("--source", text)]
    done = _zoo("generate", run, *given, "--beam", "3")
    assert done.returncode == 0, done.stderr
    expected = artifact.translate(sources, beam=3)
    assert done.stdout.splitlines() == expected and any(expected)
    # Greedy by default; --length bounds the targets as zoo translate's --max-length does.
    short = _zoo("generate", run, *given, "--length", "2")
    assert short.returncode == 0, short.stderr
    assert short.stdout.splitlines() == artifact.translate(sources, max_length=2)
    assert all(len(t.split()) <= 2 for t in short.stdout.splitlines())


def _one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().count("\n") == 0, done.stderr
    return done.stderr.strip()


def test_zoo_generate_source_errors_are_one_line(runs, tiny_run):
    run = str(runs["lstm-seq2seq"])
    line = _one_error_line(_zoo("generate", run, "--prompt", "jump"))
    assert line == (
        "Error: this model translates (task seq2seq): give the text with --source TEXT, or use "
        f"zoo translate {run} TEXT"
    )
    line = _one_error_line(_zoo("generate", str(tiny_run), "--source", "jump", "--beam", "2"))
    assert line == (
        "Error: --source and --beam are for sequence-to-sequence models; this model's task is "
        "'lm', not seq2seq"
    )
    line = _one_error_line(_zoo("generate", run, "--source", "jump", "--temperature", "0.5"))
    assert "--temperature is not for a sequence-to-sequence model" in line


def test_zoo_data_scan_writes_every_split(tmp_path):
    done = _zoo("data", "scan", "--out", str(tmp_path / "scan"))
    assert done.returncode == 0, done.stderr
    assert "simple 16,728/4,182" in done.stdout
    for name in scan.SPLITS:
        train, test = scan.split(name)
        assert read_pairs(tmp_path / "scan" / name / "train.jsonl") == train
        assert read_pairs(tmp_path / "scan" / name / "test.jsonl") == test
    again = _zoo("data", "scan", "--out", str(tmp_path / "scan"))
    assert again.returncode != 0 and "not empty" in again.stderr and "Traceback" not in again.stderr


@pytest.mark.parametrize(
    "document",
    [
        {"type": "source-target"},
        {"type": "source-target", "source": {"type": "word", "words": ["a"]}},
        {"type": "source-target", "shared": {"type": "no-such-tokenizer"}},
        {"type": "source-target", "shared": ["word"]},
        {"type": "source-target", "source": {"type": "word", "words": [1]}, "target": {}},
    ],
)
def test_a_malformed_pair_tokenizer_is_one_line(tmp_path, document):
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ZooError) as raised:
        PairTokenizer.load(path)
    assert "\n" not in str(raised.value)


def test_the_decode_step_check_fails_a_model_that_forgets_its_state():
    class Forgetful(TransformerSeq2Seq):
        def decode_step(self, target, memory, source_mask, state=None):
            return super().decode_step(target, memory, source_mask, None)  # starts over

    config = Seq2SeqConfig(source_vocab_size=12, target_vocab_size=10, n_embd=16, n_head=2)
    task = SequenceToSequence()
    testing._check_decode_step(TransformerSeq2Seq, config, task, protocols.Seq2SeqModel)
    with pytest.raises(AssertionError, match="decode_step disagrees with forward"):
        testing._check_decode_step(Forgetful, config, task, protocols.Seq2SeqModel)
