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


def _run(st, req):
    results = collect(st.engine, req.tasks, watcher(request.environ))
    return json_response(lambda: req.answer(results))


def _embeddings(oai: bool):
    st = state()
    E.check_embeddings(st, oai)
    return _run(st, offload(E.embedding_request, st, json_body(), oai))


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
    return _run(st, offload(E.rerank_request, st, json_body()))
