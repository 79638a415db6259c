"""/embedding, /embeddings and /v1/embeddings; /rerank, /reranking, /v1/rerank and
/v1/reranking (server/embeddings.py makes the requests and the answers)."""

from __future__ import annotations

from flask import Blueprint, request

from .. import embeddings as E
from ..disconnect import watcher
from ..generation import collect
from ..offload import json_response, offload
from .common import json_body, state

bp = Blueprint("embeddings", __name__)


# A body up to this size is read into tasks on the request's greenlet, and an answer of
# up to INLINE_VALUES numbers is built there too: a worker thread's round trip costs
# more than such work (a short sentence is tokenized in tens of microseconds; 384 floats
# are written in about 60), and at one sentence per request it was a tenth of the time.
INLINE_BODY = 4096
INLINE_VALUES = 8192


def _parse(fn, st, *args):
    small = request.content_length is not None and request.content_length <= INLINE_BODY
    return fn(st, json_body(), *args) if small else offload(fn, st, json_body(), *args)


def _run(st, req):
    results = collect(st.engine, req.tasks, watcher(request.environ))
    n_values = sum(r.vectors.size for r in results)
    return json_response(lambda: req.answer(results), inline=n_values <= INLINE_VALUES)


def _embeddings(oai: bool):
    st = state()
    E.check_embeddings(st, oai)
    return _run(st, _parse(E.embedding_request, st, oai))


@bp.post("/embedding")
@bp.post("/embeddings")
def embeddings():
    return _embeddings(oai=False)


@bp.post("/v1/embeddings")
def v1_embeddings():
    return _embeddings(oai=True)


@bp.post("/rerank")
@bp.post("/reranking")
@bp.post("/v1/rerank")
@bp.post("/v1/reranking")
def rerank():
    st = state()
    E.check_rerank(st)
    return _run(st, _parse(E.rerank_request, st))
