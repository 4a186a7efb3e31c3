"""Fuzzing: a model or data set from a stranger is data, and hostile data must end in a ZooError.

Hypothesis writes malformed and adversarial files (``config.json``, ``tokenizer.json``,
safetensors headers, ``metrics.jsonl``, text, CSV and JSONL data, class folders, images) into
copies of a real run folder (``tests/fixtures/lstm-run-0.1.0``) or a tiny data folder, and hands
each to ``zoo_core.load``, ``run_info``, ``Artifact.evaluate``, ``zoo info``, ``zoo eval`` and the
data readers. Every input must end in a result or a ZooError (a command: exit 0, or exit 1 with
one ``Error:`` line): no other exception, no traceback, no hang past ``ZOO_FUZZ_TIMEOUT``
seconds, no allocation past ``ZOO_FUZZ_MEMORY`` bytes.

The inputs run in one worker process (``tests/fuzz_worker.py``) that caps its own address space
and checks case after case; a new one starts when one dies or hangs. Environment:

- ``ZOO_FUZZ_EXAMPLES``: examples per test (default 15; ``5000`` for a long run, which also draws
  new random inputs each time where the default run draws the same ones).
- ``ZOO_FUZZ_KEEP_GOING=1``: a test goes on through all its examples after a failure, and fails
  at the end naming every distinct failure, instead of stopping to shrink the first one.
- ``ZOO_FUZZ_LOG=FILE``: every failure seen is appended to FILE as a line of JSON.
"""

from __future__ import annotations

import io
import json
import os
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

FIXTURE = Path(__file__).parent / "fixtures" / "lstm-run-0.1.0"
WORKER = Path(__file__).parent / "fuzz_worker.py"
EXAMPLES = int(os.environ.get("ZOO_FUZZ_EXAMPLES", "15"))
LONG = EXAMPLES > 100
KEEP_GOING = os.environ.get("ZOO_FUZZ_KEEP_GOING") == "1"
TIMEOUT = float(os.environ.get("ZOO_FUZZ_TIMEOUT", "60"))
MEMORY = int(os.environ.get("ZOO_FUZZ_MEMORY", str(2 << 30)))
LOG = os.environ.get("ZOO_FUZZ_LOG")

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # no .hypothesis folder in the checkout
    derandomize=not LONG,  # CI sees the same inputs each time; a long run explores
    suppress_health_check=list(HealthCheck),
    # A failure found in CI is reported as drawn: shrinking it costs minutes of worker calls.
    phases=[Phase.explicit, Phase.generate] + ([Phase.shrink] if LONG and not KEEP_GOING else []),
    print_blob=LONG,
)


# -- the worker ------------------------------------------------------------------------------------
class Worker:
    """One memory-capped worker process, started again when it dies or stops answering."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.cases = 0

    def _start(self) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
        self.stderr.seek(0)
        self.stderr.truncate()
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), str(MEMORY)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            env=env,
        )
        ready = self._read(max(TIMEOUT, 120))
        if ready != {"ready": True}:
            raise RuntimeError(f"the fuzz worker did not start: {ready}; {self._stderr_tail()}")

    def _read(self, timeout: float) -> dict[str, Any] | None:
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None

    def _stderr_tail(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()[-2000:]

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def run(self, case: dict[str, Any]) -> dict[str, Any]:
        """The worker's answer to ``case``, or a failure when it dies or runs out of time."""
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        assert self.proc is not None and self.proc.stdin is not None
        self.cases += 1
        started = time.monotonic()
        try:
            self.proc.stdin.write(json.dumps(case) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        answer = self._read(TIMEOUT)
        if answer is not None:
            return answer
        seconds = time.monotonic() - started
        try:  # it closed its output (it is dying) or said nothing in time (it hangs)
            code = self.proc.wait(timeout=5 if seconds < TIMEOUT else 0.1)
        except subprocess.TimeoutExpired:
            code = None
        tail = self._stderr_tail()
        self.stop()
        if code is None:
            return {
                "outcome": "failure",
                "detail": f"no answer in {seconds:.0f} s",
                "where": "hang",
            }
        return {
            "outcome": "failure",
            "detail": f"the worker died (exit status {code})",
            "where": "died",
            "traceback": tail,
        }


@pytest.fixture(scope="module")
def worker():
    w = Worker()
    yield w
    w.stop()
    w.stderr.close()


class Fuzz:
    """Runs cases through the worker; a failure fails the test at once, or at the end with
    ``ZOO_FUZZ_KEEP_GOING=1``, named by its kind, exception and place in the code."""

    def __init__(self, worker: Worker, name: str) -> None:
        self.worker = worker
        self.name = name
        self.tried = 0
        self.failures: dict[tuple[str, str, str], dict[str, Any]] = {}

    def check(self, kind: str, case: dict[str, Any], show: Callable[[], str] = str) -> None:
        """Run ``case``; ``show()`` describes its input for the report of a failure."""
        self.tried += 1
        answer = self.worker.run(case)
        if answer["outcome"] != "failure":
            return
        what = case["target"] if case["target"] != "cli" else "zoo " + case["args"][0]
        key = (what, answer["detail"].split(":")[0], answer.get("where", ""))
        record = {
            "test": self.name,
            "kind": kind,
            "target": what,
            "detail": answer["detail"],
            "where": answer.get("where", ""),
            "input": show()[:2000],
            "traceback": answer.get("traceback", ""),
        }
        _log(record)
        if not KEEP_GOING:
            raise AssertionError(_describe(record))
        record["count"] = self.failures.get(key, {}).get("count", 0) + 1
        self.failures[key] = record

    def finish(self) -> None:
        _log({"test": self.name, "tried": self.tried, "distinct_failures": len(self.failures)})
        if self.failures:
            raise AssertionError(
                f"{len(self.failures)} distinct failures in {self.tried} inputs:\n\n"
                + "\n\n".join(_describe(r) for r in self.failures.values())
            )


def _log(record: dict[str, Any]) -> None:
    if LOG and record["test"] != "self-check":
        with open(LOG, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def _describe(record: dict[str, Any]) -> str:
    count = f" ({record['count']} inputs)" if "count" in record else ""
    return (
        f"{record['kind']} -> {record['target']}: {record['detail']}{count}\n"
        f"  at {record['where']}\n  input: {record['input'][:500]}\n{record['traceback']}"
    )


@pytest.fixture
def fuzz(worker, request):
    f = Fuzz(worker, request.node.name)
    yield f


# -- JSON that no one should write ----------------------------------------------------------------
class Raw(str):
    """JSON text put into a document as it is (a 10,000-digit number, a deep nesting)."""


def dump(value: Any) -> str:
    """``value`` as JSON text, ``Raw`` parts as they are, NaN and Infinity as Python writes them."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(dump(v) for v in value) + "]"
    return json.dumps(value)


def _nest(depth: int, inner: str = "1", kind: str = "[") -> Raw:
    if kind == "[":
        return Raw("[" * depth + inner + "]" * depth)
    return Raw('{"a": ' * depth + inner + "}" * depth)


huge_ints = st.integers(min_value=1, max_value=100_000).map(lambda n: Raw("9" * n))
deep = st.builds(_nest, st.integers(1, 200_000), st.just("1"), st.sampled_from(["[", "{"]))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([0, -1, 2**31, 2**63, -(2**63), 10**20]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["", "lstm", "../../etc/passwd", "/dev/zero", "\x00", "é" * 3, "1e999"]),
)
small_json = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
# Values that parse as JSON without help: wrong types, odd numbers, containers.
plain_values = small_json
# And those that stress the parser itself.
hostile_values = st.one_of(
    small_json, huge_ints, deep, st.integers(0, 2_000_000).map(lambda n: "x" * n)
)


def _set(document: Any, path: list[str], value: Any) -> None:
    for key in path[:-1]:
        document = document[key]
    if value is _DELETE:
        document.pop(path[-1], None)
    else:
        document[path[-1]] = value


_DELETE = object()


# -- run folders ----------------------------------------------------------------------------------
BASE_CONFIG = json.loads((FIXTURE / "config.json").read_text())
_SECTIONS = ("model_config", "task_config", "task_state", "train_config", "metrics")
CONFIG_PATHS = sorted(
    [[k] for k in BASE_CONFIG]
    + [["unknown_field"]]
    + [[s, k] for s in _SECTIONS for k in BASE_CONFIG[s]]
    + [["model_config", "unknown_field"], ["data_fingerprints", "data"]]
)
EVAL_TEXT = "The quick brown fox jumps over the lazy dog.\n" * 20


class RunFolder:
    """A fresh copy of the fixture run in a temporary folder, removed afterwards."""

    def __init__(self, root: Path) -> None:
        self.root = Path(tempfile.mkdtemp(dir=root))
        self.path = self.root / "run"
        shutil.copytree(FIXTURE, self.path)
        self.text = self.root / "eval.txt"
        self.text.write_text(EVAL_TEXT)

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def write(self, name: str, data: bytes | str) -> None:
        target = self.path / name
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogatepass")
        target.write_bytes(data)

    def check_all(self, fuzz: Fuzz, kind: str, show: Callable[[], str], evaluate: bool = True):
        """Load it, describe it and evaluate it, through the API and the commands."""
        path = str(self.path)
        fuzz.check(kind, {"target": "load", "path": path}, show)
        fuzz.check(kind, {"target": "run_info", "path": path}, show)
        fuzz.check(kind, {"target": "cli", "args": ["info", path]}, show)
        fuzz.check(kind, {"target": "cli", "args": ["info", "--json", path]}, show)
        if evaluate:
            text = str(self.text)
            fuzz.check(kind, {"target": "evaluate", "path": path, "data": text}, show)
            fuzz.check(kind, {"target": "cli", "args": ["eval", path, "--data", text]}, show)


def config_mutations(values: st.SearchStrategy) -> st.SearchStrategy:
    edit = st.tuples(st.sampled_from(CONFIG_PATHS), st.one_of(values, st.just(_DELETE)))
    return st.lists(edit, min_size=1, max_size=3)


def apply_config(mutations: list[tuple[list[str], Any]]) -> str:
    config = json.loads(json.dumps(BASE_CONFIG))
    for path, value in mutations:
        try:
            _set(config, path, value)
        except (KeyError, TypeError):  # an earlier edit replaced the section this one is in
            pass
    return dump(config)


def test_config_fields_of_wrong_type(fuzz, tmp_path):
    """Any field of config.json, set to a value of another type or deleted."""

    @FUZZ
    @given(config_mutations(plain_values))
    def run(mutations):
        text = apply_config(mutations)
        with RunFolder(tmp_path) as run:
            run.write("config.json", text)
            run.check_all(fuzz, "config.json field", lambda: text)

    run()
    fuzz.finish()


def test_config_hostile_json(fuzz, tmp_path):
    """config.json whose values stress the JSON parser: huge numbers, deep nesting, long text."""

    @FUZZ
    @given(config_mutations(hostile_values))
    def run(mutations):
        text = apply_config(mutations)
        with RunFolder(tmp_path) as run:
            run.write("config.json", text)
            run.check_all(fuzz, "config.json hostile JSON", lambda: text[:2000], evaluate=False)

    run()
    fuzz.finish()


def corrupt(data: bytes) -> st.SearchStrategy[bytes]:
    """``data`` truncated, with bytes flipped or inserted, or replaced by junk."""
    n = len(data)
    return st.one_of(
        st.integers(0, n).map(lambda i: data[:i]),
        st.lists(st.tuples(st.integers(0, max(n - 1, 0)), st.integers(0, 255)), max_size=8).map(
            lambda edits: _flip(data, edits)
        ),
        st.tuples(st.integers(0, n), st.binary(max_size=64)).map(
            lambda t: data[: t[0]] + t[1] + data[t[0] :]
        ),
        st.binary(max_size=256),
        st.sampled_from([b"", b"\xef\xbb\xbf" + data, b"\xff\xfe" + data, data + b"\x00" * 7]),
    )


def _flip(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for i, value in edits:
        if out:
            out[i % len(out)] = value
    return bytes(out)


def test_config_corrupt_bytes(fuzz, tmp_path):
    """config.json truncated, with bytes changed, in another encoding, or not JSON at all."""
    original = (FIXTURE / "config.json").read_bytes()

    @FUZZ
    @given(corrupt(original))
    def run(data):
        with RunFolder(tmp_path) as run:
            run.write("config.json", data)
            run.check_all(fuzz, "config.json bytes", lambda: repr(data[:500]))

    run()
    fuzz.finish()


names = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["transformer", "resnet", "gan", "lm", "byte", "bpe", "word", "char", ""]),
)


def test_config_unknown_or_other_names(fuzz, tmp_path):
    """A run that names another model, task or tokenizer than the one its files are of."""

    @FUZZ
    @given(
        st.dictionaries(
            st.sampled_from(["model", "task", "tokenizer", "family", "distribution"]),
            names,
            min_size=1,
        )
    )
    def run(edits):
        config = json.loads(json.dumps(BASE_CONFIG))
        config.update(edits)
        with RunFolder(tmp_path) as run:
            run.write("config.json", json.dumps(config))
            run.check_all(fuzz, "config.json names", lambda: json.dumps(edits))

    run()
    fuzz.finish()


# -- tokenizer.json --------------------------------------------------------------------------------
BASE_TOKENIZER = json.loads((FIXTURE / "tokenizer.json").read_text())
tokenizer_documents = st.one_of(
    st.fixed_dictionaries({"type": names, "chars": plain_values}),
    st.fixed_dictionaries(
        {"type": st.just("char"), "chars": st.lists(st.text(min_size=1, max_size=3), max_size=300)}
    ),
    st.fixed_dictionaries({"hf_tokenizer": plain_values}),
    plain_values,
)


def test_tokenizer_json(fuzz, tmp_path):
    """tokenizer.json of the wrong shape, with too many or odd characters, for each tokenizer."""

    @FUZZ
    @given(tokenizer_documents, st.sampled_from(["char", "byte", "bpe", "word"]))
    def run(document, tokenizer):
        config = json.loads(json.dumps(BASE_CONFIG))
        config["tokenizer"] = config["task_config"]["tokenizer"] = tokenizer
        text = dump(document)
        with RunFolder(tmp_path) as run:
            run.write("config.json", json.dumps(config))
            run.write("tokenizer.json", text)
            run.check_all(fuzz, f"tokenizer.json ({tokenizer})", lambda: text)

    run()
    fuzz.finish()


def test_tokenizer_json_hostile(fuzz, tmp_path):
    """tokenizer.json that stresses the JSON parser, or is not UTF-8 JSON at all."""
    original = (FIXTURE / "tokenizer.json").read_bytes()

    @FUZZ
    @given(
        st.one_of(
            hostile_values.map(lambda v: dump({"type": "char", "chars": v}).encode()),
            corrupt(original),
        )
    )
    def run(data):
        with RunFolder(tmp_path) as run:
            run.write("tokenizer.json", data)
            run.check_all(fuzz, "tokenizer.json bytes", lambda: repr(data[:500]))

    run()
    fuzz.finish()


# -- safetensors -----------------------------------------------------------------------------------
_WEIGHTS = (FIXTURE / "model.safetensors").read_bytes()
_HEADER_LEN = struct.unpack("<Q", _WEIGHTS[:8])[0]
BASE_HEADER = json.loads(_WEIGHTS[8 : 8 + _HEADER_LEN])
BASE_DATA = _WEIGHTS[8 + _HEADER_LEN :]
TENSORS = sorted(k for k in BASE_HEADER if k != "__metadata__")

offsets = st.one_of(
    st.integers(0, len(BASE_DATA) + 16),
    st.sampled_from([-1, 2**32, 2**63 - 1, 2**64 - 1, 2**64]),
)
dtypes = st.one_of(
    st.sampled_from(["F32", "F16", "BF16", "F64", "I64", "I8", "U8", "BOOL", "F8_E4M3", "C64"]),
    st.text(max_size=6),
    plain_values,
)
shapes = st.one_of(
    st.lists(st.integers(0, 300), max_size=4),
    st.lists(st.sampled_from([-1, 2**31, 2**40, 2**63 - 1, 2**64]), min_size=1, max_size=3),
    plain_values,
)
tensor_edits = st.tuples(
    st.sampled_from(TENSORS + ["extra.weight"]),
    st.sampled_from(["data_offsets", "dtype", "shape", "delete", "copy"]),
    st.tuples(offsets, offsets),
    dtypes,
    shapes,
    st.sampled_from(TENSORS),
)
lengths = st.one_of(
    st.none(),  # the true length
    st.integers(0, len(_WEIGHTS) * 2),
    st.sampled_from([2**31, 2**63 - 1, 2**64 - 1, 100_000_001]),
)


def safetensors_bytes(header: dict[str, Any], data: bytes, declared: int | None) -> bytes:
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text) if declared is None else declared) + text + data


def edit_header(edits: list[tuple]) -> dict[str, Any]:
    header = json.loads(json.dumps(BASE_HEADER))
    for name, what, offs, dtype, shape, other in edits:
        if name not in header and what == "delete":
            continue
        entry = header.setdefault(name, dict(BASE_HEADER[other]))
        if what == "data_offsets":
            entry["data_offsets"] = list(offs)
        elif what == "dtype":
            entry["dtype"] = dtype
        elif what == "shape":
            entry["shape"] = shape
        elif what == "delete":
            header.pop(name)
        else:  # the same bytes as another tensor: overlapping storage
            entry["data_offsets"] = list(header.get(other, BASE_HEADER[other])["data_offsets"])
    return header


def test_safetensors_header(fuzz, tmp_path):
    """Weights whose header lies: offsets that overlap or run past the end, wrong dtypes and
    shapes, a declared header length larger than the file, missing or extra tensors."""

    @FUZZ
    @given(
        st.lists(tensor_edits, max_size=4),
        lengths,
        st.integers(0, len(BASE_DATA) + 8),
    )
    def run(edits, declared, cut):
        header = edit_header(edits)
        header["__metadata__"] = {"format": "pt"}
        data = safetensors_bytes(header, BASE_DATA[:cut], declared)
        with RunFolder(tmp_path) as run:
            run.write("model.safetensors", data)
            show = lambda: f"length {declared}, {cut} data bytes, header {json.dumps(header)}"  # noqa: E731
            run.check_all(fuzz, "safetensors header", show)

    run()
    fuzz.finish()


def test_safetensors_bytes(fuzz, tmp_path):
    """A weights file truncated, with bytes flipped or inserted, or junk."""

    @FUZZ
    @given(corrupt(_WEIGHTS))
    def run(data):
        with RunFolder(tmp_path) as run:
            run.write("model.safetensors", data)
            run.check_all(fuzz, "safetensors bytes", lambda: repr(data[:600]))

    run()
    fuzz.finish()


def test_safetensors_metadata(fuzz, tmp_path):
    """The header's metadata: not an object, values that are not strings, a ``zoo.tied`` entry
    that is not JSON, not an object, or names tensors that are not there."""
    tied = st.one_of(
        st.text(max_size=20),
        small_json.map(json.dumps),
        st.dictionaries(st.sampled_from(TENSORS + ["x"]), st.sampled_from(TENSORS + ["y", ""])).map(
            json.dumps
        ),
    )
    metadata = st.one_of(
        st.fixed_dictionaries({"format": st.just("pt"), "zoo.tied": tied}),
        st.dictionaries(st.text(max_size=10), plain_values, max_size=3),
        plain_values,
    )

    @FUZZ
    @given(metadata)
    def run(meta):
        header = json.loads(json.dumps(BASE_HEADER))
        header["__metadata__"] = meta
        data = safetensors_bytes(header, BASE_DATA, None)
        with RunFolder(tmp_path) as run:
            run.write("model.safetensors", data)
            run.check_all(fuzz, "safetensors metadata", lambda: json.dumps(meta))

    run()
    fuzz.finish()


# -- metrics.jsonl ---------------------------------------------------------------------------------
metric_lines = st.one_of(
    st.fixed_dictionaries({"step": plain_values, "elapsed": plain_values}).map(dump),
    st.fixed_dictionaries({"step": st.integers(0, 10), "val_loss": plain_values}).map(dump),
    plain_values.map(dump),
    st.text(max_size=40),
)


def test_metrics_jsonl(fuzz, tmp_path):
    """metrics.jsonl with records of any shape: steps and times of the wrong type, junk lines."""

    @FUZZ
    @given(st.lists(metric_lines, max_size=6))
    def run(lines):
        text = "\n".join(lines) + "\n"
        with RunFolder(tmp_path) as run:
            run.write("metrics.jsonl", text)
            run.check_all(fuzz, "metrics.jsonl", lambda: text, evaluate=False)

    run()
    fuzz.finish()


def test_metrics_jsonl_hostile(fuzz, tmp_path):
    """metrics.jsonl lines that stress the parser, or bytes that are not UTF-8."""
    original = (FIXTURE / "metrics.jsonl").read_bytes()

    @FUZZ
    @given(st.one_of(hostile_values.map(lambda v: dump({"step": v}).encode()), corrupt(original)))
    def run(data):
        with RunFolder(tmp_path) as run:
            run.write("metrics.jsonl", data)
            run.check_all(fuzz, "metrics.jsonl bytes", lambda: repr(data[:500]), evaluate=False)

    run()
    fuzz.finish()


# -- data folders ----------------------------------------------------------------------------------
class DataFolder:
    def __init__(self, root: Path) -> None:
        self.root = Path(tempfile.mkdtemp(dir=root))

    def __enter__(self) -> DataFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def write(self, relative: str, data: bytes) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path


text_bytes = st.one_of(
    st.text().map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.binary(max_size=200),
    st.sampled_from([b"", b"   \n", b"\xef\xbb\xbf", b"\xef\xbb\xbfhello", b"\x00" * 10]),
)
file_names = st.sampled_from(
    ["a.txt", "b.TXT", ".hidden.txt", "sub/c.txt", ".git/d.txt", "e.md", "x/y/z.txt"]
)


def test_text_data(fuzz, tmp_path):
    """Text for ``lm``: a file or a folder of .txt files of any bytes; and ``zoo eval`` on it."""

    @FUZZ
    @given(st.dictionaries(file_names, text_bytes, min_size=1, max_size=4), st.booleans())
    def run(files, evaluate):
        with DataFolder(tmp_path) as data:
            for name, content in files.items():
                data.write(name, content)
            show = lambda: repr(files)[:2000]  # noqa: E731
            fuzz.check("text data", {"target": "read_text", "path": str(data.root)}, show)
            first = str(data.root / next(iter(files)))
            fuzz.check("text file", {"target": "read_text", "path": first}, show)
            if evaluate:
                args = ["eval", str(FIXTURE), "--data", str(data.root)]
                fuzz.check("text data", {"target": "cli", "args": args}, show)

    run()
    fuzz.finish()


csv_fields = st.one_of(
    st.text(max_size=30),
    st.sampled_from(['"', '""', "a,b", "line\nbreak", "\r", "\x00", " ", "\u2028"]),
)
csv_rows = st.lists(st.lists(csv_fields, max_size=4), max_size=6)
headers = st.one_of(
    st.just(["text", "label"]), st.just(["label", "text", "x"]), st.lists(csv_fields)
)


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    import csv

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8", "surrogatepass")


def test_labelled_csv(fuzz, tmp_path):
    """A labelled CSV file: odd quoting, missing columns, short rows, empty labels, junk bytes."""

    @FUZZ
    @given(st.one_of(st.builds(_csv, headers, csv_rows), text_bytes))
    def run(content):
        with DataFolder(tmp_path) as data:
            path = data.write("data.csv", content)
            fuzz.check(
                "labelled CSV",
                {"target": "read_labelled", "path": str(path)},
                lambda: repr(content[:1000]),
            )

    run()
    fuzz.finish()


def test_labelled_csv_huge_field(fuzz, tmp_path):
    """A labelled CSV file with a field longer than the csv module's default limit."""

    @FUZZ
    @given(st.integers(100_000, 400_000), st.sampled_from(["text", "label"]))
    def run(size, column):
        row = {"text": "t", "label": "a", column: "x" * size}
        with DataFolder(tmp_path) as data:
            path = data.write("data.csv", _csv(["text", "label"], [[row["text"], row["label"]]]))
            fuzz.check(
                "labelled CSV field",
                {"target": "read_labelled", "path": str(path)},
                lambda: f"a {column} of {size} characters",
            )

    run()
    fuzz.finish()


jsonl_records = st.one_of(
    st.fixed_dictionaries({"text": plain_values, "label": plain_values}).map(dump),
    st.fixed_dictionaries({"text": st.text(max_size=20), "label": st.text(max_size=5)}).map(dump),
    plain_values.map(dump),
    st.text(max_size=30),
)


def test_labelled_jsonl(fuzz, tmp_path):
    """A labelled JSONL file: records of any shape, labels of any type, junk lines."""

    @FUZZ
    @given(st.lists(jsonl_records, max_size=6), st.sampled_from(["data.jsonl", "data.json"]))
    def run(lines, name):
        content = "\n".join(lines).encode("utf-8", "surrogatepass")
        with DataFolder(tmp_path) as data:
            path = data.write(name, content)
            fuzz.check(
                "labelled JSONL",
                {"target": "read_labelled", "path": str(path)},
                lambda: repr(content[:1000]),
            )

    run()
    fuzz.finish()


def test_labelled_jsonl_hostile(fuzz, tmp_path):
    """A labelled JSONL record with a huge number or a deep nesting."""

    @FUZZ
    @given(st.one_of(huge_ints, deep), st.sampled_from(["text", "label"]))
    def run(value, field):
        record = {"text": "t", "label": "a", field: value}
        with DataFolder(tmp_path) as data:
            path = data.write("data.jsonl", dump(record).encode())
            fuzz.check(
                "labelled JSONL",
                {"target": "read_labelled", "path": str(path)},
                lambda: dump(record)[:500],
            )

    run()
    fuzz.finish()


def test_labelled_folder(fuzz, tmp_path):
    """A class-folder tree: empty classes, hidden folders, files that are not UTF-8."""
    paths = st.sampled_from(
        ["a/1.txt", "a/2.txt", "b/1.txt", ".c/1.txt", "b/deep/x.txt", "d/1.md", "top.txt"]
    )

    @FUZZ
    @given(st.dictionaries(paths, text_bytes, max_size=5), st.lists(st.sampled_from("efg")))
    def run(files, empty):
        with DataFolder(tmp_path) as data:
            for name, content in files.items():
                data.write(name, content)
            for name in empty:
                (data.root / name).mkdir(exist_ok=True)
            fuzz.check(
                "labelled folder",
                {"target": "read_labelled", "path": str(data.root)},
                lambda: repr(files)[:1000] + f" empty {empty}",
            )

    run()
    fuzz.finish()


# -- images ----------------------------------------------------------------------------------------
def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def huge_png(width: int, height: int, depth: int, color: int) -> bytes:
    """A PNG that declares a size and has one tiny (wrong) block of pixel data."""
    header = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def pillow_image(mode: str, size: tuple[int, int], fmt: str, seed: int) -> bytes:
    from PIL import Image

    image = Image.new(mode, size)
    if mode == "P":
        image.putpalette(bytes(range(256)) * 3)
    pixels = image.load()
    for x in range(size[0]):
        for y in range(size[1]):
            pixels[x, y] = (  # noqa: SIM108
                (x * 37 + y * 11 + seed) % 256
                if mode in ("L", "P", "1")
                else (x * 997 + seed) % 65536
                if mode.startswith("I")
                else tuple((x * k + y + seed) % 256 for k in range(len(mode)))
            )
    out = io.BytesIO()
    kwargs = {"transparency": 0} if mode == "P" and fmt in ("PNG", "GIF") else {}
    image.save(out, fmt, **kwargs)
    return out.getvalue()


_FORMATS = {
    "PNG": ".png",
    "JPEG": ".jpg",
    "GIF": ".gif",
    "BMP": ".bmp",
    "TIFF": ".tif",
    "WEBP": ".webp",
    "PPM": ".ppm",
}
_MODES = {
    "PNG": ["1", "L", "P", "RGB", "RGBA", "I;16", "LA"],
    "JPEG": ["L", "RGB", "CMYK"],
    "GIF": ["L", "P"],
    "BMP": ["1", "L", "P", "RGB"],
    "TIFF": ["1", "L", "P", "RGB", "RGBA", "CMYK", "I;16"],
    "WEBP": ["RGB", "RGBA"],
    "PPM": ["1", "L", "RGB"],
}
image_formats = st.sampled_from(sorted(_FORMATS)).flatmap(
    lambda fmt: st.tuples(st.just(fmt), st.sampled_from(_MODES[fmt]))
)
good_images = st.builds(
    lambda fm, w, h, seed: (pillow_image(fm[1], (w, h), fm[0], seed), _FORMATS[fm[0]]),
    image_formats,
    st.integers(1, 12),
    st.integers(1, 12),
    st.integers(0, 255),
)
images = st.one_of(
    good_images,
    good_images.flatmap(lambda pair: st.tuples(corrupt(pair[0]), st.just(pair[1]))),
    st.builds(
        lambda w, h, d, c: (huge_png(w, h, d, c), ".png"),
        st.one_of(st.integers(1, 64), st.sampled_from([2**15, 2**16, 2**24, 2**31 - 1, 2**32 - 1])),
        st.one_of(st.integers(1, 64), st.sampled_from([2**15, 2**16, 2**24, 2**31 - 1, 2**32 - 1])),
        st.sampled_from([1, 2, 4, 8, 16, 3, 0]),
        st.sampled_from([0, 2, 3, 4, 6, 1, 7]),
    ),
    st.tuples(st.binary(max_size=100), st.sampled_from([".png", ".jpg", ".gif", ".tiff"])),
)


def test_images(fuzz, tmp_path):
    """Image folders: truncated and corrupt files, 16-bit, palette, CMYK, huge declared sizes."""

    @FUZZ
    @given(
        st.lists(st.tuples(st.sampled_from(["cat", "dog"]), images), min_size=1, max_size=4),
        st.sampled_from([1, 3]),
    )
    def run(files, channels):
        with DataFolder(tmp_path) as data:
            written = []
            for i, (label, (content, suffix)) in enumerate(files):
                written.append(data.write(f"{label}/{i}{suffix}", content))
            show = lambda: repr([(label, c[:200], s) for label, (c, s) in files])  # noqa: E731
            for path in written:
                case = {"target": "read_image", "path": str(path), "channels": channels}
                fuzz.check("image", case, show)
            case = {"target": "read_images", "path": str(data.root), "channels": channels}
            fuzz.check("image folder", case, show)

    run()
    fuzz.finish()


# -- the harness itself ----------------------------------------------------------------------------
def test_worker_tells_results_errors_and_failures(worker):
    """The harness can fail: a stray exception is a failure naming where it came from, a
    command's usage error (exit 2) is one too; a good run loads, a missing one is a ZooError."""
    answer = worker.run({"target": "_raise", "path": "boom"})
    assert answer["outcome"] == "failure" and answer["detail"].startswith("KeyError"), answer
    assert "fuzz_worker.py" in answer["where"], answer
    usage = worker.run({"target": "cli", "args": ["info", "--no-such-option"]})
    assert usage["outcome"] == "failure" and "exit 2" in usage["detail"], usage
    assert worker.run({"target": "load", "path": str(FIXTURE)})["outcome"] == "ok"
    missing = {"target": "load", "path": str(FIXTURE / "missing")}
    assert worker.run(missing)["outcome"] == "zoo_error"
    cli_ok = worker.run({"target": "cli", "args": ["info", str(FIXTURE)]})
    assert cli_ok["outcome"] == "ok", cli_ok
    cli_error = worker.run({"target": "cli", "args": ["eval", str(FIXTURE / "missing")]})
    assert cli_error["outcome"] == "zoo_error", cli_error


def test_worker_death_hang_and_memory_are_failures(monkeypatch):
    """A worker that dies or hangs is reported and replaced; an allocation past the memory limit
    is refused and reported; the worker answers the next case each time."""
    monkeypatch.setattr(sys.modules[__name__], "TIMEOUT", 10.0)
    w = Worker()
    good = {"target": "load", "path": str(FIXTURE)}
    try:
        for target, where in (("_die", "died"), ("_hang", "hang"), ("_allocate", "")):
            answer = w.run({"target": target, "path": ""})
            assert answer["outcome"] == "failure", (target, answer)
            assert where in answer["where"], (target, answer)
            assert w.run(good)["outcome"] == "ok", target
        assert "MemoryError" in answer["detail"], answer
    finally:
        w.stop()
        w.stderr.close()


def test_fuzz_fails_the_test_on_a_failure(worker):
    """Hypothesis, the worker and Fuzz.check together: an input the worker reports as a failure
    fails the test, with the input and the traceback in its message."""
    fuzz = Fuzz(worker, "self-check")

    @settings(FUZZ, max_examples=3)
    @given(st.text(min_size=1, max_size=5))
    def run(name):
        fuzz.check("self-check", {"target": "_raise", "path": name}, lambda: name)
        fuzz.finish()

    with pytest.raises(AssertionError, match="KeyError"):
        run()


# -- last: its hangs (a million layers) cost a long run the most time -----------------------------
sizes = st.one_of(
    st.integers(-3, 3),
    st.integers(2**20, 2**40),
    st.sampled_from([2**31 - 1, 2**31, 2**62, 2**63 - 1, 2**64, 10**30]),
)
SIZE_FIELDS = ["vocab_size", "embed_dim", "hidden_size", "num_layers"]


def test_config_huge_model_sizes(fuzz, tmp_path):
    """Model sizes a hostile config declares (a billion-wide layer) before its weights are read."""

    @FUZZ
    @given(st.dictionaries(st.sampled_from(SIZE_FIELDS), sizes, min_size=1), st.booleans())
    def run(edits, tied):
        if tied and ("embed_dim" in edits or "hidden_size" in edits):  # tying needs them equal
            edits["embed_dim"] = edits["hidden_size"] = edits.get(
                "embed_dim", edits.get("hidden_size")
            )
        else:
            edits["tie_weights"] = tied
        config = json.loads(json.dumps(BASE_CONFIG))
        config["model_config"].update(edits)
        text = json.dumps(config)
        with RunFolder(tmp_path) as run:
            run.write("config.json", text)
            run.check_all(fuzz, "config.json model size", lambda: json.dumps(edits))

    run()
    fuzz.finish()
