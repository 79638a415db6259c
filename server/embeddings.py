"""Embeddings and reranking as llama-server serves them: the requests checked in its
order, one engine task per input (or per document), and the answers.

- `/embedding`, `/embeddings`: a list of `{"index", "embedding"}`, `embedding` a list of
  rows: every token's (unnormalized) with pooling none, else the one pooled vector.
- `/v1/embeddings` (OpenAI): `{"model", "object": "list", "usage", "data": [{"embedding",
  "index", "object": "embedding"}]}`, the vector as floats or base64 (float32 bytes);
  a body with `content` instead of `input` gets the native answer, as in llama-server.
- `/rerank` and its aliases: Jina's shape `{"model", "object", "usage", "results":
  [{"index", "relevance_score"}]}` sorted by score and cut to `top_n`, or TEI's list of
  `{"index", "score"(, "text")}` when the documents come as `texts`."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np

from pyllama.embedding import vector_json
from pyllama.engine import EmbeddingResult, EmbedParams, TaskRequest

from .errors import MEDIA_PARTS, bad_request, media_unsupported, not_supported
from .json_text import RawJSON
from .lora import request_scales
from .params import field
from .prompts import refuse_too_long, split_prompts, tokenize_prompt

MAX_DOCUMENTS = 1024


def check_embeddings(st, oai: bool) -> None:
    if not st.config.embedding:
        raise not_supported("This server does not support embeddings. Start it with `--embeddings`")
    if oai and st.llm.pooling_type == "none":
        raise bad_request("Pooling type 'none' is not OAI compatible. Please use a different pooling type")


def check_rerank(st) -> None:
    if not st.config.embedding or st.llm.pooling_type != "rank":
        raise not_supported("This server does not support reranking. Start it with `--reranking`")


def _task(st, ids: list[int], normalize: int) -> TaskRequest:
    """(Its size is checked by the engine, in llama-server's order: see embedding_job.)"""
    return TaskRequest(prompt=ids, cache_prompt=False, n_predict=0,
                       embedding=EmbedParams(st.llm.pooling_type, normalize), lora=request_scales(st, {}))


@dataclass
class EmbeddingRequest:
    tasks: list[TaskRequest]
    oai: bool
    base64: bool
    model: str

    def answer(self, results: list[EmbeddingResult]):
        if not self.oai:
            return [{"index": i, "embedding": RawJSON("[" + ",".join(vector_json(v) for v in r.vectors) + "]")}
                    for i, r in enumerate(results)]
        data = []
        for i, r in enumerate(results):
            vec = np.ascontiguousarray(r.vectors[0], dtype=np.float32)
            if self.base64:
                data.append({"embedding": base64.b64encode(vec.tobytes()).decode("ascii"), "index": i,
                             "object": "embedding", "encoding_format": "base64"})
            else:
                data.append({"embedding": RawJSON(vector_json(vec)), "index": i, "object": "embedding"})
        n = sum(r.n_prompt for r in results)
        return {"model": self.model, "object": "list", "usage": {"prompt_tokens": n, "total_tokens": n},
                "data": data}


def embedding_request(st, body: dict, oai: bool) -> EmbeddingRequest:
    """`input` (or `content`: the native answer) as one prompt or several, each a
    string, token ids or a mix (tokenized with special tokens, as llama-server)."""
    if "input" in body:
        prompt = body["input"]
    elif "content" in body:
        oai, prompt = False, body["content"]
    else:
        raise bad_request("\"input\" or \"content\" must be provided")
    use_base64 = False
    if "encoding_format" in body:
        fmt = body["encoding_format"]
        if fmt == "base64":
            use_base64 = True
        elif fmt != "float":
            raise bad_request("The format to return the embeddings in. Can be either float or base64")
    if prompt is None:
        raise bad_request("\"input\" must be a string, a list of tokens, or a list of prompts")
    pooling = st.llm.pooling_type
    ids = [tokenize_prompt(st, _content_text(p), pooling=pooling) for p in split_prompts(prompt)]
    if any(not t for t in ids):
        raise bad_request("Input content cannot be empty")
    normalize = field(body, "embd_normalize", int, st.config.embd_normalize)
    if normalize < -1:
        raise bad_request("Field 'embd_normalize': must be -1 (none), 0, 1, 2 or a p-norm above 2")
    model = body.get("model") if isinstance(body.get("model"), str) else st.alias
    return EmbeddingRequest([_task(st, t, normalize) for t in ids], oai, use_base64, model)


def _content_text(prompt):
    """An input given as an object with a `content` array of chat parts (the shape
    OpenRouter uses for vision embeddings, which llama-server takes): its text parts, as
    they are; media parts need a multimodal model, which this server does not load."""
    if not isinstance(prompt, dict) or "content" not in prompt:
        return prompt
    parts = prompt["content"]
    if not isinstance(parts, list):
        raise bad_request("\"content\" must be an array")
    text = []
    for part in parts:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in MEDIA_PARTS:
            raise media_unsupported(MEDIA_PARTS[kind])
        if kind != "text":
            raise bad_request("unsupported content[].type")
        if part.get("text") is not None and not isinstance(part["text"], str):
            raise bad_request("a text content part's \"text\" must be a string")
        text.append(part.get("text") or "")
    return "".join(text)


@dataclass
class RerankRequest:
    tasks: list[TaskRequest]
    documents: list[str]
    top_n: int
    tei: bool
    return_text: bool
    model: str

    def answer(self, results: list[EmbeddingResult]):
        label = "score" if self.tei else "relevance_score"
        ranked = []
        for i, r in enumerate(results):
            elem = {"index": i, label: float(r.vectors[0][0])}
            if self.return_text:
                elem["text"] = self.documents[i]
            ranked.append(elem)
        ranked.sort(key=lambda e: -e[label])  # stable: equal scores keep the documents' order
        ranked = ranked[:self.top_n]
        if self.tei:
            return ranked
        n = sum(r.n_prompt for r in results)
        return {"model": self.model, "object": "list", "usage": {"prompt_tokens": n, "total_tokens": n},
                "results": ranked}


def rerank_request(st, body: dict) -> RerankRequest:
    """`query` and `documents` (strings, or objects with a `text`; TEI's `texts`),
    `top_n` (default: all), `return_text` (TEI)."""
    tei = "texts" in body
    if "query" not in body:
        raise bad_request("\"query\" must be provided")
    query = body["query"]
    if not isinstance(query, str):
        raise bad_request("\"query\" must be a string")
    docs = body.get("documents", body.get("texts"))
    if not isinstance(docs, list) or not docs:
        raise bad_request("\"documents\" must be a non-empty string array")
    if len(docs) > MAX_DOCUMENTS:
        raise bad_request(f"\"documents\": at most {MAX_DOCUMENTS} documents per request")
    texts = []
    for d in docs:
        if isinstance(d, dict) and isinstance(d.get("text"), str):
            d = d["text"]
        if not isinstance(d, str):
            raise bad_request("\"documents\" must be a non-empty string array")
        texts.append(d)
    top_n = field(body, "top_n", int, len(texts))
    if top_n < 0:
        raise bad_request("Field 'top_n': must not be negative")
    return_text = tei and field(body, "return_text", bool, False)
    tasks = []
    for d in texts:
        refuse_too_long(st, [query, d], pooling="rank")
        tasks.append(_task(st, st.llm.rerank_tokens(query, d), -1))
    model = body.get("model") if isinstance(body.get("model"), str) else st.alias
    return RerankRequest(tasks, texts, top_n, tei, return_text, model)
