"""likra serve on a tiny random Llama with two random LoRA heads: the API's shape, every refused
input naming its field, batched scores equal to one-by-one scores, 503 on a full queue, the page."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.parse

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from likra.api import LikraModel  # noqa: E402
from likra.serve import ServeOptions, build_verifier, make_app  # noqa: E402

Q = "Which gas do plants take in?"
C = ["carbon dioxide", "oxygen", "water"]


@pytest.fixture(scope="module")
def verifier(tmp_path_factory, tiny_tokenizer):
    import torch
    from conftest import save_tiny_model
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread avoids spinning against a busy machine's other work

    root = tmp_path_factory.mktemp("serve")
    model_dir = save_tiny_model(root / "model", tiny_tokenizer)
    for seed, head in enumerate(("positive", "negative")):
        torch.manual_seed(seed)
        cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir), cfg).save_pretrained(root / head)
    yield build_verifier(ServeOptions(model=str(model_dir), positive=str(root / "positive"),
                                      negative=str(root / "negative"), weight=0.5, temperature=2.0))
    torch.set_num_threads(threads)


@pytest.fixture()
def client(verifier):
    with TestClient(make_app(verifier, max_batch_wait_ms=1, max_candidates=4, max_chars=60, queue_size=4)) as c:
        yield c


def test_score_answers_the_documented_shape(client, verifier):
    r = client.post("/v1/score", json={"question": Q, "candidates": C})
    assert r.status_code == 200, r.text
    d = r.json()
    assert [c["text"] for c in d["candidates"]] == C and d["answer"] == C[d["choice"]]
    assert abs(sum(c["probability"] for c in d["candidates"]) - 1) < 1e-9 and d["temperature"] == 2.0
    for k, c in enumerate(d["candidates"]):
        assert c["score"] == pytest.approx(c["loglik_positive"] / len(C[k]) - 0.5 * c["loglik_negative"] / len(C[k]))
        assert c["flagged"] == (k in d["flagged"]) == (c["probability"] < 1 / 3 and c["per_char_negative"] > c["per_char_positive"])
    w0 = client.post("/v1/score", json={"question": Q, "candidates": C, "weight": 0.0}).json()
    assert w0["weight"] == 0.0  # and it is used: at w = 0 the score is the positive head's alone
    assert [c["score"] for c in w0["candidates"]] == pytest.approx([c["per_char_positive"] for c in w0["candidates"]])
    h = client.get("/health").json()
    assert set(h["heads"]) == {"positive", "negative"} and len(h["base_fingerprint"]) == 16 and h["versions"]["likra"]
    m = client.get("/metrics").json()
    assert m["requests"] == 2 and m["by_status"] == {"200": 2} and m["latency_s"]["p50"] > 0
    assert "likely wrong" in json.dumps(client.get("/openapi.json").json())


@pytest.mark.parametrize("body, status, field", [
    ({"candidates": C}, 422, "question: is required"),
    ({"question": "", "candidates": C}, 422, "question: is empty"),
    ({"question": "   ", "candidates": C}, 422, "question: is empty"),
    ({"question": Q}, 422, "candidates: is required"),
    ({"question": Q, "candidates": ["one"]}, 422, "candidates: List should have at least 2"),
    ({"question": Q, "candidates": list("abcde")}, 422, "candidates: List should have at most 4"),
    ({"question": Q, "candidates": ["a", 5]}, 422, "candidates[1]: Input should be a valid string"),
    ({"question": Q, "candidates": "a,b"}, 422, "candidates: Input should be a valid list"),
    ({"question": Q, "candidates": ["a", "x" * 61]}, 422, "candidates[1]: String should have at most 60"),
    ({"question": "x" * 61, "candidates": C}, 422, "question: String should have at most 60"),
    ({"question": Q, "candidates": ["a", "a "]}, 422, "candidates[1]: repeats candidates[0]"),
    ({"question": Q, "candidates": C, "temp": 1}, 422, "temp: unknown field"),
    ({"question": Q, "candidates": C, "weight": -1}, 422, "weight: Input should be greater than or equal to 0"),
    ("{not json", 400, "body: malformed JSON"),
])
def test_bad_input_is_refused_naming_the_field(client, body, status, field):
    r = (client.post("/v1/score", content=body, headers={"Content-Type": "application/json"}) if isinstance(body, str)
         else client.post("/v1/score", json=body))
    assert r.status_code == status and field in r.json()["error"], r.text
    assert client.post("/v1/score", json={"question": Q, "candidates": C}).status_code == 200  # still serving


def test_a_failing_request_fails_alone(verifier):
    """A request the engine refuses (continuation beyond the model window) is 422; its batch-mates score."""
    long = " ".join(["carbon"] * 300)
    calls, real = [], verifier.scorer.score
    verifier.scorer.score = lambda items, *a, **kw: (calls.append(len(items)), real(items, *a, **kw))[1]
    try:
        with TestClient(make_app(verifier, max_batch_wait_ms=1000, max_chars=5000)) as c:
            out = {}
            threads = [threading.Thread(target=lambda k=k, cs=cs: out.__setitem__(k, c.post(
                "/v1/score", json={"question": Q, "candidates": cs}))) for k, cs in enumerate([C, [long, "oxygen"]])]
            [t.start() for t in threads]
            [t.join() for t in threads]
            m = c.get("/metrics").json()
    finally:
        verifier.scorer.score = real
    assert out[0].status_code == 200 and out[1].status_code == 422 and "exceeds the model window" in out[1].json()["error"]
    # both shared one batch, which failed and was retried request by request
    assert m["batch_size"]["max"] == 2 and calls == [2, 1, 1]


def test_concurrent_requests_are_batched_and_equal_one_by_one(verifier):
    questions = [(f"{Q} ({i})", [f"carbon dioxide {i}", "oxygen", "water", "nitrogen"][: 2 + i % 3]) for i in range(8)]
    single = LikraModel(verifier.scorer.heads.model, verifier.scorer.encoder.tok, weight=0.5, temperature=2.0)
    gate, real = threading.Event(), verifier.scorer.score

    def gated(*a, **kw):  # the first batch waits until every request is in: the next batch takes all the rest
        gate.wait(30)
        return real(*a, **kw)

    verifier.scorer.score = gated
    try:
        with TestClient(make_app(verifier, max_batch_wait_ms=1, queue_size=16)) as c:
            out = {}
            threads = [threading.Thread(target=lambda i=i, q=q: out.__setitem__(i, c.post(
                "/v1/score", json={"question": q[0], "candidates": q[1]}).json())) for i, q in enumerate(questions)]
            [t.start() for t in threads]
            deadline = time.time() + 30
            while (lambda m: m["queued"] + m["in_flight"])(c.get("/metrics").json()) < len(questions):
                assert time.time() < deadline
                time.sleep(0.01)
            gate.set()
            [t.join() for t in threads]
            m = c.get("/metrics").json()
    finally:
        verifier.scorer.score = real
    assert m["batch_size"]["max"] >= len(questions) // 2 and m["batches"] <= 2 and m["by_status"] == {"200": 8}
    for i, (q, cands) in enumerate(questions):
        alone = single.score(q, cands)
        assert [c["score"] for c in out[i]["candidates"]] == pytest.approx(alone.scores, abs=1e-5)
        assert [c["probability"] for c in out[i]["candidates"]] == pytest.approx(alone.probabilities, abs=1e-5)


def test_a_full_queue_answers_503(verifier):
    gate, real = threading.Event(), verifier.scorer.score
    verifier.scorer.score = lambda *a, **kw: (gate.wait(30), real(*a, **kw))[1]
    try:
        with TestClient(make_app(verifier, max_batch_wait_ms=0, queue_size=1)) as c:
            body = {"question": Q, "candidates": C}
            codes = []
            threads = [threading.Thread(target=lambda: codes.append(c.post("/v1/score", json=body).status_code))
                       for _ in range(2)]
            deadline = time.time() + 30  # a server that never gets there fails the test rather than hanging it
            threads[0].start()
            while c.get("/metrics").json()["batches"] < 1:  # the worker holds request 1 ...
                assert time.time() < deadline
                time.sleep(0.01)
            threads[1].start()
            while c.get("/metrics").json()["queued"] < 1:  # ... and request 2 fills the queue
                assert time.time() < deadline
                time.sleep(0.01)
            r = c.post("/v1/score", json=body)
            assert r.status_code == 503 and "queue full" in r.json()["error"] and r.headers["retry-after"] == "1"
            gate.set()
            [t.join() for t in threads]
            assert codes == [200, 200] and c.post("/v1/score", json=body).status_code == 200
    finally:
        verifier.scorer.score = real


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_page_renders_probability_bars(verifier):
    import uvicorn
    from browser import INSTALL, browser, inspect_url

    if not browser():
        pytest.skip(f"chromium-headless-shell is not installed ({INSTALL})")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(make_app(verifier), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.time() + 30
        while not server.started:
            assert time.time() < deadline, "the server did not start in 30 s"
            time.sleep(0.05)
        query = urllib.parse.urlencode({"question": Q, "candidates": "\n".join(C)})
        dom = inspect_url(f"http://127.0.0.1:{port}/?{query}")
    finally:
        server.should_exit = True
        thread.join(10)
    import re

    bars = re.findall(r'class="bar"[^>]*data-probability="([0-9.e-]+)"', dom)
    assert len(bars) == 3 and abs(sum(map(float, bars)) - 1) < 1e-6, dom[-3000:]
    assert all(c in dom for c in C) and 'id="error"></p>' in dom


def test_calibrate_on_fits_the_temperature_at_start(verifier, tmp_path):
    from likra.rules import fit_temperature, rule_scores
    from likra.serve import question_item

    items = [question_item(f"q{i}", f"{Q} ({i})", C, gold=i % 3) for i in range(6)]
    table = verifier.scorer.score(items, ["base", "positive", "negative"], progress=False)
    table.save(tmp_path / "eval.parquet")
    heads = verifier.info["heads"]
    v = build_verifier(ServeOptions(model=verifier.info["model"], positive=heads["positive"]["adapter"],
                                    negative=heads["negative"]["adapter"], weight=0.5, calibrate_on=str(tmp_path / "eval.parquet")))
    assert v.temperature == pytest.approx(fit_temperature(*rule_scores(table, "likra", 0.5)))  # fitted at the served weight
    assert v.temperature != pytest.approx(fit_temperature(*rule_scores(table, "likra", 1.0)))
    assert v.info["calibration"]["questions"] == 6
    with TestClient(make_app(v)) as c:
        assert c.get("/health").json()["calibration"]["fitted_temperature"] == v.temperature


def test_the_command_refuses_a_missing_head(capsys):
    from likra.cli import main

    assert main(["serve", "--positive", "base"]) == 2
    assert "--negative ADAPTER" in capsys.readouterr().err
