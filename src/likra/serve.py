"""``likra serve``: a Likra model as a batched HTTP answer verifier.

A practitioner has a question and a few candidate answers and asks, for each, how likely it is
correct and whether it looks like a plausible wrong answer. ``POST /v1/score`` answers with the
heads' log-likelihoods, the per-character Likra score ``L+ - w L-`` (``likra.rules``), its softmax
at temperature T (given, or fitted at start on an eval score table with ``--calibrate-on``) and
the candidates *flagged as likely wrong*: probability below 1/k (k candidates: less than an even
share) **and** per-character log-likelihood under the negative head above the positive head's (the
head trained on wrong answers finds the candidate likelier than the head trained on right ones).

Concurrent requests are batched: one worker takes every request waiting, waits up to
``--max-batch-wait-ms`` for more, and scores all their items in ONE ``Scorer.score`` call, so the
engine's shared-prefix packing fills its forwards and throughput grows with concurrency. At most
``--queue-size`` requests wait; beyond that the answer is 503 at once, never a hang. A batch that
fails is scored again request by request, so one bad request fails alone.
"""


import asyncio
import hashlib
import time
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np

from .api import DEFAULT_TEMPLATE, question_item
from .command import Common, command, option
from .io import DTYPES
from .errors import ConfigError, InputRefused, LikraError
from .io import per_char
from .models import BASE_HEAD
from .rules import Heads, fit_temperature, get_rule, rule_heads, rule_scores, softmax_probs
from .scoring.table import option_matrix

FLAG_RULE = ("probability below 1/k (k candidates) and a per-character log-likelihood under the negative head "
             "above the positive head's")
PLAIN = {"extra_forbidden": "unknown field", "string_pattern_mismatch": "is empty (only spaces)",
         "string_too_short": "is empty", "missing": "is required"}


@dataclass
class ServeOptions(Common):
    model: str = option("smollm2-135m", "base model: embedded name, local folder or hub id")
    positive: str | None = option(None, "positive head adapter folder, or 'base' (Base-Likra: L_base - w L-)")
    negative: str | None = option(None, "negative head adapter folder")
    weight: float = option(1.0, "w in L+ - w L- (a request may override it)")
    temperature: float | None = option(None, "softmax temperature of the probabilities (default 1)")
    calibrate_on: str | None = option(None, "eval score table (likra eval's parquet) with positive and negative "
                                             "heads: fit the temperature on it at start")
    host: str = option("127.0.0.1", "address to listen on")
    port: int = option(8000, "port to listen on")
    max_batch_wait_ms: float = option(5.0, "how long the batcher waits for more requests after the first")
    max_candidates: int = option(16, "most candidates per request")
    max_chars: int = option(2000, "longest question or candidate, in characters")
    queue_size: int = option(64, "most requests waiting; more get 503")
    dtype: str = option("fp32", "model precision (fp32, bf16, bf16-mixed: see likra.models.load_base)", choices=DTYPES)


def likely_wrong(probs: np.ndarray, per_char_positive: np.ndarray, per_char_negative: np.ndarray) -> np.ndarray:
    """The flag (``FLAG_RULE``): less than an even share of the probability, and likelier under the
    head trained on wrong answers than under the one trained on right ones."""
    return (probs < 1 / len(probs)) & (per_char_negative > per_char_positive)


def fitted_temperature(table_path: str, weight: float, rule: str = "likra") -> tuple[float, int]:
    """T minimising the gold options' NLL on an eval table (``likra.rules.fit_temperature``), and its n."""
    from .scoring.table import ScoreTable

    table = ScoreTable.load(table_path)
    try:
        scores, gold = rule_scores(table, rule, weight, True, Heads())
    except LikraError as err:
        raise ConfigError(f"--calibrate-on {table_path}: {err}") from None
    return fit_temperature(scores, gold), len(gold)


class Verifier:
    """Scores batches of (question, candidates) requests with one engine call per batch."""

    def __init__(self, scorer, weight: float = 1.0, temperature: float = 1.0, base_likra: bool = False,
                 template: str = DEFAULT_TEMPLATE, info: dict | None = None):
        self.scorer, self.weight, self.temperature, self.template = scorer, weight, temperature, template
        self.rule = get_rule("base-likra" if base_likra else "likra")
        self.heads = rule_heads(self.rule.name, Heads(base=BASE_HEAD))  # [plus-head, negative]
        self.info = info or {}

    def score_batch(self, requests: list[dict]) -> list[dict | Exception]:
        """One engine call for all requests; if it fails, each request alone so only the bad one fails."""
        try:
            return self._score(requests)
        except Exception:  # noqa: BLE001 (the batch is retried request by request below)
            if len(requests) == 1:
                raise
        out: list[dict | Exception] = []
        for r in requests:
            try:
                out += self._score([r])
            except Exception as err:  # noqa: BLE001 (returned to its request)
                out.append(err)
        return out

    def _score(self, requests: list[dict]) -> list[dict]:
        items = [question_item(f"r{k}", r["question"], r["candidates"], self.template) for k, r in enumerate(requests)]
        table = self.scorer.score(items, self.heads, progress=False)
        plus, minus = (option_matrix(table, h) for h in self.heads)
        return [self._answer(r, lp, ln, nc) for r, lp, ln, nc in zip(requests, plus.loglik, minus.loglik, plus.n_chars)]

    def _answer(self, request: dict, lp: np.ndarray, ln: np.ndarray, n_chars: np.ndarray) -> dict:
        w = self.weight if request.get("weight") is None else request["weight"]
        pp, pn = per_char(lp, n_chars), per_char(ln, n_chars)
        s = self.rule.combine(w, pp, pn)
        probs = softmax_probs([s], self.temperature)[0]
        flagged = [int(i) for i in np.flatnonzero(likely_wrong(probs, pp, pn))]
        choice = int(np.argmax(s))
        return {
            "choice": choice, "answer": request["candidates"][choice], "flagged": flagged, "weight": w,
            "temperature": self.temperature,
            "candidates": [{"text": c, "loglik_positive": float(lp[i]), "loglik_negative": float(ln[i]),
                            "per_char_positive": float(pp[i]), "per_char_negative": float(pn[i]), "score": float(s[i]),
                            "probability": float(probs[i]), "flagged": i in flagged}
                           for i, c in enumerate(request["candidates"])],
        }


class Batcher:
    """A bounded queue and one worker: each engine call takes every request that is waiting."""

    def __init__(self, verifier: Verifier, wait_ms: float, queue_size: int):
        self.verifier, self.wait_s = verifier, wait_ms / 1000
        self.queue: asyncio.Queue = asyncio.Queue(queue_size)
        self.batch_sizes: deque[int] = deque(maxlen=10_000)
        self.batches = self.in_flight = 0
        self.task: asyncio.Task | None = None

    def submit(self, request: dict) -> asyncio.Future:
        """Queue a request; raises asyncio.QueueFull when ``queue_size`` are already waiting."""
        fut = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((request, fut))
        return fut

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            deadline = loop.time() + self.wait_s
            while True:
                try:
                    batch.append(self.queue.get_nowait() if loop.time() >= deadline else
                                 await asyncio.wait_for(self.queue.get(), deadline - loop.time()))
                except (asyncio.QueueEmpty, asyncio.TimeoutError):
                    break
            self.batches += 1
            self.batch_sizes.append(len(batch))
            self.in_flight = len(batch)
            try:
                results = await asyncio.to_thread(self.verifier.score_batch, [r for r, _ in batch])
            except Exception as err:  # noqa: BLE001 (a single request's failure goes back to it)
                results = [err]
            self.in_flight = 0
            for (_, fut), res in zip(batch, results):
                if not fut.done():
                    (fut.set_exception if isinstance(res, Exception) else fut.set_result)(res)


def _quantiles(values) -> dict[str, float | None]:
    v = np.asarray(values, dtype=float)
    return {f"p{q}": (float(np.percentile(v, q)) if len(v) else None) for q in (50, 95, 99)}


def make_app(verifier: Verifier, max_batch_wait_ms: float = 5.0, max_candidates: int = 16, max_chars: int = 2000,
             queue_size: int = 64):
    """The FastAPI app; the batcher's worker runs for the app's lifespan."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, HTTPException, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse
    from pydantic import BaseModel, ConfigDict, Field, StrictStr, StringConstraints
    from starlette.exceptions import HTTPException as StarletteHTTPException

    text = Annotated[StrictStr, StringConstraints(min_length=1, max_length=max_chars, pattern=r"\S")]

    class ScoreRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        question: text = Field(description=f"the question (1 to {max_chars} characters, not only spaces)")
        candidates: list[text] = Field(min_length=2, max_length=max_candidates,
                                       description=f"2 to {max_candidates} distinct candidate answers")
        weight: float | None = Field(None, ge=0, description=f"w in L+ - w L- (default {verifier.weight})")

    class Candidate(BaseModel):
        text: str
        loglik_positive: float = Field(description="log-likelihood under the positive head (base for Base-Likra), summed")
        loglik_negative: float = Field(description="log-likelihood under the negative head, summed")
        per_char_positive: float
        per_char_negative: float
        score: float = Field(description="per-character Likra score L+ - w L-")
        probability: float = Field(description="softmax of the scores at the server's temperature")
        flagged: bool = Field(description=f"likely wrong: {FLAG_RULE}")

    class ScoreResponse(BaseModel):
        choice: int = Field(description="index of the highest-scoring candidate")
        answer: str
        flagged: list[int] = Field(description=f"candidates flagged as likely wrong: {FLAG_RULE}")
        weight: float
        temperature: float
        candidates: list[Candidate]

    batcher = Batcher(verifier, max_batch_wait_ms, queue_size)
    latencies: deque[float] = deque(maxlen=10_000)
    statuses: Counter = Counter()

    @asynccontextmanager
    async def lifespan(app):
        batcher.task = asyncio.create_task(batcher.run())
        yield
        batcher.task.cancel()

    app = FastAPI(title="likra serve", lifespan=lifespan,
                  description=f"Likra answer verifier. Flagged as likely wrong: {FLAG_RULE}.")
    app.state.batcher = batcher

    @app.middleware("http")
    async def measure(request: Request, call_next):
        t0 = time.perf_counter()
        response = await call_next(request)
        if request.url.path == "/v1/score":
            statuses[response.status_code] += 1
            latencies.append(time.perf_counter() - t0)
        return response

    @app.exception_handler(RequestValidationError)
    async def refused(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        if any(e["type"] == "json_invalid" for e in errors):
            return JSONResponse({"error": f"body: malformed JSON ({errors[0]['ctx'].get('error', '')})"}, 400)
        msgs = []
        for e in errors:
            loc = [x for x in e["loc"] if x != "body"]
            name = "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in loc).lstrip(".") or "body"
            msgs.append(f"{name}: {PLAIN.get(e['type'], e['msg'])}")
        return JSONResponse({"error": "; ".join(msgs)}, 422)

    @app.post("/v1/score", response_model=ScoreResponse, summary="score candidate answers to a question")
    async def score(body: ScoreRequest):
        seen: dict[str, int] = {}
        for k, c in enumerate(body.candidates):
            if c.strip() in seen:
                raise HTTPException(422, f"candidates[{k}]: repeats candidates[{seen[c.strip()]}]; give distinct candidates")
            seen[c.strip()] = k
        try:
            fut = batcher.submit(body.model_dump())
        except asyncio.QueueFull:
            raise HTTPException(503, f"queue full ({queue_size} requests waiting): retry later",
                                headers={"Retry-After": "1"}) from None
        try:
            return await fut
        except InputRefused as err:
            raise HTTPException(422, str(err).replace("item 'r0'", "candidates")) from None
        except Exception as err:  # noqa: BLE001 (a bug in scoring: this request fails, the server stays)
            raise HTTPException(500, f"scoring failed: {type(err).__name__}: {err}") from None

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return JSONResponse({"error": exc.detail}, exc.status_code, headers=exc.headers)

    @app.get("/health")
    async def health():
        return {"status": "ok", "rule": verifier.rule.formula, "weight": verifier.weight,
                "temperature": verifier.temperature, **verifier.info,
                "limits": {"max_candidates": max_candidates, "max_chars": max_chars, "queue_size": queue_size,
                           "max_batch_wait_ms": max_batch_wait_ms}}

    @app.get("/metrics")
    async def metrics():
        sizes = list(batcher.batch_sizes)
        return {"requests": sum(statuses.values()), "by_status": {str(k): v for k, v in sorted(statuses.items())},
                "queued": batcher.queue.qsize(), "in_flight": batcher.in_flight, "batches": batcher.batches,
                "batch_size": {"mean": float(np.mean(sizes)) if sizes else None, "max": max(sizes, default=None),
                               "histogram": {str(k): v for k, v in sorted(Counter(sizes).items())}},
                "latency_s": _quantiles(latencies)}

    @app.get("/", response_class=HTMLResponse)
    async def page():
        return PAGE

    return app


def _file_sha(folder: str) -> str:
    f = Path(folder) / "adapter_model.safetensors"
    return hashlib.sha256(f.read_bytes()).hexdigest()[:16]


def build_verifier(o: ServeOptions) -> Verifier:
    """Load the base and both heads once; fix the temperature (given, fitted, or 1)."""
    import importlib.metadata as md
    from .models import attach_adapters, load_base, load_tokenizer, weights_fingerprint
    from .scoring.engine import Scorer

    if not o.negative or not o.positive:
        raise ConfigError("likra serve needs --positive ADAPTER (or 'base') and --negative ADAPTER")
    if o.temperature is not None and o.calibrate_on:
        raise ConfigError("give --temperature or --calibrate-on, not both")
    if o.temperature is not None and o.temperature <= 0:
        raise ConfigError(f"--temperature must be positive, not {o.temperature}")
    base_likra = o.positive == "base"
    calibration = None
    temperature = o.temperature or 1.0
    if o.calibrate_on:
        temperature, n = fitted_temperature(o.calibrate_on, o.weight, "base-likra" if base_likra else "likra")
        calibration = {"table": o.calibrate_on, "questions": n, "fitted_temperature": temperature}
    adapters = {"negative": o.negative} | ({} if base_likra else {"positive": o.positive})
    base = load_base(o.model, o.dtype)
    fingerprint = weights_fingerprint(base)
    model = attach_adapters(base, adapters)
    info = {"model": o.model, "base_fingerprint": fingerprint, "calibration": calibration,
            "heads": {name: {"adapter": path, "sha256": _file_sha(path)} for name, path in adapters.items()},
            "versions": {p: md.version(p) for p in ("likra", "torch", "transformers", "peft", "fastapi", "uvicorn")}}
    return Verifier(Scorer(model, load_tokenizer(o.model)), o.weight, temperature, base_likra, info=info)


@command("serve", "serve a Likra model as a batched HTTP answer verifier (POST /v1/score, GET /health, /metrics, /)",
         ServeOptions)
def run(o: ServeOptions, argv: list[str] | None = None) -> None:
    try:
        import uvicorn
    except ImportError:
        raise ConfigError("likra serve needs FastAPI and uvicorn: pip install 'likra[serve]'") from None
    verifier = build_verifier(o)
    app = make_app(verifier, o.max_batch_wait_ms, o.max_candidates, o.max_chars, o.queue_size)
    print(f"likra serve: {o.model} at http://{o.host}:{o.port}/ (temperature {verifier.temperature:.4g})", flush=True)
    uvicorn.run(app, host=o.host, port=o.port, log_level="warning" if o.quiet else "info")


# The try-it page: no external resources. ?question=...&candidates=a%0Ab fills the form and scores at once.
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>likra serve</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.4 system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;color:#222}
textarea{width:100%;box-sizing:border-box;font:inherit}
.row{margin:.5rem 0}.label{display:flex;justify-content:space-between}
.track{background:#eee;height:1.1rem;border-radius:3px}.bar{background:#3a7;height:100%;border-radius:3px}
.flagged .bar{background:#d54}.flagged .label::after{content:" likely wrong";color:#d54}
#error{color:#b00}
</style></head><body>
<h1>likra serve</h1>
<form id="f"><label>Question<textarea id="question" rows="2" required></textarea></label>
<label>Candidates, one per line<textarea id="candidates" rows="5" required></textarea></label>
<button>Score</button></form>
<p id="error"></p><div id="results"></div>
<script>
const $ = id => document.getElementById(id);
async function score() {
  $('error').textContent = ''; $('results').textContent = '';
  const body = {question: $('question').value,
                candidates: $('candidates').value.split('\\n').map(s => s.trim()).filter(Boolean)};
  const r = await fetch('v1/score', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                     body: JSON.stringify(body)});
  const data = await r.json();
  if (!r.ok) { $('error').textContent = data.error; return; }
  for (const c of data.candidates) {
    const row = document.createElement('div');
    row.className = 'row' + (c.flagged ? ' flagged' : '');
    const label = document.createElement('div'), track = document.createElement('div'), bar = document.createElement('div');
    label.className = 'label'; track.className = 'track'; bar.className = 'bar';
    const name = document.createElement('span'), pct = document.createElement('span');
    name.textContent = c.text; pct.textContent = (100 * c.probability).toFixed(1) + '%';
    label.append(name, pct);
    bar.style.width = (100 * c.probability).toFixed(1) + '%'; bar.dataset.probability = c.probability;
    track.append(bar); row.append(label, track); $('results').append(row);
  }
}
$('f').addEventListener('submit', e => { e.preventDefault(); score().catch(err => $('error').textContent = err); });
const q = new URLSearchParams(location.search);
if (q.get('question')) { $('question').value = q.get('question'); $('candidates').value = q.get('candidates') || '';
                         score().catch(err => $('error').textContent = err); }
</script></body></html>
"""
