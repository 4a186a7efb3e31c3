"""Past one process: DDP and FSDP under a real torchrun (gloo, on the CPU), gradient
accumulation, activation checkpointing."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file
from zoo_testutil import run_zoo

import zoo_core

# Tiny settings per model; the models with batch norm (resnet, gan) are compared with one
# process that runs two micro-batches, as each process normalises its own half of the batch.
# The GAN's random augmentation and its pairs of latents (drawn per process) are off.
TINY = {
    "lstm": ["--set", "hidden_size=16", "--set", "embed_dim=16", "--set", "seq_len=16",
             "--set", "dropout=0"],
    "transformer": ["--set", "n_layer=2", "--set", "n_embd=16", "--set", "n_head=2",
                    "--set", "seq_len=16"],
    "resnet": ["--set", "width=4", "--set", "num_images=300", "--set", "image_size=16"],
    "gan": ["--set", "width=4", "--set", "d_width=4", "--set", "image_size=16",
            "--set", "latent_dim=8", "--set", "num_images=300", "--set", "classifier_steps=0",
            "--set", "augment=none", "--set", "diversity_weight=0", "--set", "eval_samples=32",
            "--set", "grid=4"],
}  # fmt: skip
BATCH_NORM = {"resnet", "gan"}
STEPS = 120  # enough for a kill (after the checkpoint of step 20) to land before the end
COMMON = ["--batch-size", "8", "--set", "checkpoint_interval=20", "--set", "log_interval=20"]


def _weights(folder):
    return load_file(str(folder / "model.safetensors"))


def _steps(folder):
    records = map(json.loads, (folder / "metrics.jsonl").read_text().splitlines())
    return [r["step"] for r in records if "loss" in r or "loss_generator" in r]


def _train(name, out, *extra, cwd):
    return run_zoo("train", name, "--steps", STEPS, "--out", out, *TINY[name], *COMMON,
                   "--quiet", *extra, cwd=cwd)  # fmt: skip


def _descendants(pid):
    """The processes started by ``pid``, at any depth (torchrun starts its ranks in sessions
    of their own: a signal to the launcher's process group does not reach them)."""
    parents = {}
    for stat in os.listdir("/proc"):
        if stat.isdigit():
            try:
                fields = open(f"/proc/{stat}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents.setdefault(int(fields[1]), []).append(int(stat))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def _killed_in_the_middle(name, out, cwd):
    """`zoo train --nproc 2` SIGKILLed, with all its processes, once it has a checkpoint."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "zoo_core", "train", name, "--steps", str(STEPS), "--out",
         str(out), *TINY[name], *COMMON, "--quiet", "--nproc", "2"],
        cwd=cwd, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    deadline = time.time() + 300
    while not (out / "checkpoints" / "step-00000020").is_dir():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.02)
    ranks = _descendants(proc.pid)  # torchrun and the two ranks
    assert len(ranks) >= 3, ranks
    for pid in [proc.pid, *ranks]:  # all at once, as a crash of the machine would
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    saved = sorted(p.name for p in (out / "checkpoints").glob("step-*"))
    assert saved[-1] < f"step-{STEPS:08d}", saved  # it was stopped before it finished


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lstm", "transformer", "resnet", "gan"])
def test_two_processes_equal_one_and_resume_after_sigkill_is_bit_identical(tmp_path, name):
    one = tmp_path / "one"
    accum = ["--set", "grad_accum=2"] if name in BATCH_NORM else []
    _train(name, one, *accum, cwd=tmp_path)
    two = tmp_path / "two"
    _train(name, two, "--nproc", "2", cwd=tmp_path)
    a, b = _weights(one), _weights(two)
    assert a.keys() == b.keys()
    # Batch norm's running statistics are rank 0's under DDP (it broadcasts its buffers): they
    # are of half the batch, so only the weights proper are compared for those models.
    statistics = ("running_mean", "running_var", "num_batches_tracked")
    compared = [k for k in a if name not in BATCH_NORM or not k.endswith(statistics)]
    assert len(compared) > len(a) // 2
    for k in compared:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=2e-5, msg=k)
    assert _steps(two) == _steps(one)

    killed = tmp_path / "killed"
    _killed_in_the_middle(name, killed, tmp_path)
    run_zoo("train", "--resume", killed, "--nproc", "2", "--quiet", cwd=tmp_path)
    c = _weights(killed)
    assert c.keys() == b.keys() and all(torch.equal(b[k], c[k]) for k in b)
    assert _steps(killed) == _steps(two)


@pytest.mark.slow
def test_fsdp_matches_one_process_writes_no_pickle_and_resumes_on_another_number_of_processes(
    tmp_path,
):
    args = [*TINY["transformer"], "--batch-size", "12", "--quiet",
            "--set", "checkpoint_interval=6", "--set", "log_interval=3"]  # fmt: skip
    # Against one process, which DDP equals (the test above): a torchrun launch fewer.
    run_zoo("train", "transformer", "--out", tmp_path / "one", "--steps", "12", *args)
    fsdp = tmp_path / "fsdp"
    run_zoo("train", "transformer", "--out", fsdp, "--nproc", "2", "--fsdp", "--steps", "12",
            *args)  # fmt: skip
    one_weights, fsdp_weights = _weights(tmp_path / "one"), _weights(fsdp)
    # model.safetensors is the whole model, as an unsharded run writes it (tied weights once).
    assert one_weights.keys() == fsdp_weights.keys()
    for k in one_weights:
        assert one_weights[k].shape == fsdp_weights[k].shape
        torch.testing.assert_close(one_weights[k], fsdp_weights[k], rtol=1e-4, atol=2e-5, msg=k)
    # Each rank wrote its own shards with DCP, as safetensors and JSON: no pickled metadata.
    step = fsdp / "checkpoints" / "step-00000012"
    files = sorted(p.relative_to(step).as_posix() for p in step.rglob("*") if p.is_file())
    assert files == [
        "model/shard-00001-model-00001-of-00001.safetensors",
        "model/shard-00002-model-00001-of-00001.safetensors",
        "optimizer/shard-00001-model-00001-of-00001.safetensors",
        "optimizer/shard-00002-model-00001-of-00001.safetensors",
        "rng.safetensors",
        "state.json",
    ]
    shard = load_file(str(step / "model" / "shard-00002-model-00001-of-00001.safetensors"))
    whole = one_weights["blocks.0.mlp.fc.weight"]
    assert shard["blocks.0.mlp.fc.weight"].shape[0] == whole.shape[0] // 2  # half of it

    # Stopped at step 6 on two processes, on to 9 on one, to 12 on three: DCP reshards (a third
    # of 16 rows is uneven).
    half = tmp_path / "half"
    run_zoo("train", "transformer", "--out", half, "--nproc", "2", "--fsdp", "--steps", "6",
            *args)  # fmt: skip
    run_zoo("train", "--resume", half, "--steps", "9", "--quiet")
    run_zoo("train", "--resume", half, "--steps", "12", "--nproc", "3", "--quiet")
    resumed = _weights(half)
    for k in fsdp_weights:
        torch.testing.assert_close(resumed[k], fsdp_weights[k], rtol=1e-4, atol=2e-5, msg=k)
    steps = _steps(half)  # one curve (its evaluations came at other steps: it had 6 to run)
    assert steps == sorted(set(steps)) and steps[-1] == 12


def _train_in_process(tmp_path, name, label, **settings):
    overrides = {"n_layer": 2, "n_embd": 16, "n_head": 2, "seq_len": 16, "log_interval": 1}
    if name == "resnet":
        overrides = {"width": 4, "num_images": 200, "image_size": 16, "log_interval": 1}
    artifact, _ = zoo_core.train(
        name, steps=4, batch_size=8, out=tmp_path / label, progress=False,
        overrides={**overrides, **settings},
    )  # fmt: skip
    records = [json.loads(line) for line in (artifact.path / "metrics.jsonl").open()]
    return _weights(artifact.path), [r for r in records if "loss" in r]


def test_k_micro_batches_make_the_update_of_one_batch(tmp_path):
    whole, log = _train_in_process(tmp_path, "transformer", "whole")
    micro, micro_log = _train_in_process(tmp_path, "transformer", "micro", grad_accum=4)
    for k in whole:
        torch.testing.assert_close(whole[k], micro[k], rtol=1e-4, atol=1e-5, msg=k)
    # Steps, learning rates and the loss count optimiser steps, not micro-batches.
    assert [r["step"] for r in micro_log] == [1, 2, 3, 4]
    assert [r["lr"] for r in micro_log] == [r["lr"] for r in log]
    for r, m in zip(log, micro_log, strict=True):
        assert m["loss"] == pytest.approx(r["loss"], rel=1e-5)
    # The batch is still the step's: 8 sequences of 16 tokens, in 4 micro-batches of 2.
    state = json.loads(
        (tmp_path / "micro" / "checkpoints" / "step-00000004" / "state.json").read_text()
    )
    assert state["step"] == 4 and state["trainer"]["units"] == 4 * 8 * 16


def test_a_batch_that_does_not_divide_into_micro_batches_is_one_clear_error(tmp_path):
    proc = run_zoo("train", "lstm", "--batch-size", "6", "--set", "grad_accum=4",
                   "--out", tmp_path / "run", check=False)  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "Error: batch size 6 does not divide among 4 micro-batches; use a multiple of 4 "
        "(--batch-size is the global batch of a step)"
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", ["transformer", "resnet"])
def test_activation_checkpointing_changes_memory_not_results(tmp_path, name):
    plain, _ = _train_in_process(tmp_path, name, "plain")
    recomputed, _ = _train_in_process(tmp_path, name, "ac", activation_checkpointing=True)
    assert plain.keys() == recomputed.keys()  # the state dict keeps its names
    for k in plain:  # buffers (batch norm's statistics) included
        torch.testing.assert_close(plain[k], recomputed[k], rtol=1e-5, atol=1e-6, msg=k)


def test_activation_checkpointing_of_a_model_without_blocks_is_refused(tmp_path):
    proc = run_zoo("train", "lstm", "--set", "activation_checkpointing=true", "--out",
                   tmp_path / "run", check=False)  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "activation_checkpointing recomputes the blocks a model declares, and lstm " in (
        proc.stderr
    )
    assert not (tmp_path / "run").exists()
