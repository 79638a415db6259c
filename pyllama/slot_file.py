"""Slot files: one sequence's KV cache and the tokens it holds, on disk, so that a
slot restored from it continues exactly as if it had never been saved.

A file is checked whole before anything of it is used: a truncated, tampered or
foreign file (another model, another KV cache type, adapters not loaded) is a
SlotFileError (an InvalidRequest) that says which, never a crash.

Layout (little-endian):

    offset  size  field
         0     8  magic b"PYLLSLOT"
         8     4  version (1)
        12     4  header size H (128)
        16    32  model fingerprint (Llama.fingerprint, raw sha256)
        48     4  K type (ggml type id)
        52     4  V type
        56     4  layers
        60     4  n_tokens: tokens the sequence holds (positions 0 .. n_tokens - 1)
        64     8  bytes of K and V per cell (all layers)
        72     8  S: bytes of the KV state
        80     4  L: LoRA entries
        84     4  0
        88    32  sha256 of the whole file with these 32 bytes zeroed
       120     8  0
         H  36 L  LoRA entries: the adapters the cache was computed with (32-byte
                  adapter fingerprint, f32 scale), nonzero scales only
           4 n_tokens  tokens (int32)
                   S  the KV state (the native KvCache.seq_save bytes: positions, K, V)

The file's size is exactly H + 36 L + 4 n_tokens + S.
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass

import numpy as np

from .errors import InvalidRequest

MAGIC = b"PYLLSLOT"
VERSION = 1
HEADER = struct.Struct("<8sII32sIIIIQQII32s8s")
assert HEADER.size == 128
LORA_ENTRY = struct.Struct("<32sf")
_CHECKSUM_AT = 88


class SlotFileError(InvalidRequest):
    """A slot file that cannot be restored here; the message says why."""


@dataclass(frozen=True)
class KvLayout:
    """What a KV state's bytes mean: must match between the saving and restoring cache."""

    type_k: int
    type_v: int
    n_layer: int
    cell_bytes: int

    @classmethod
    def of(cls, kv) -> "KvLayout":
        return cls(kv.type_k, kv.type_v, kv.n_layer, kv.cell_bytes)


@dataclass(frozen=True)
class SlotState:
    """One slot's cache as the engine hands it over: its tokens, the native KV state and
    the LoRA adapters it was computed with ((adapter fingerprint hex, scale), nonzero)."""

    tokens: list[int]
    state: bytes
    lora: tuple[tuple[str, float], ...] = ()


def max_size(layout: KvLayout, n_tokens: int, n_lora: int = 64) -> int:
    """An upper bound on the size of a valid file of at most n_tokens tokens (to refuse
    reading a huge file at all)."""
    return (HEADER.size + LORA_ENTRY.size * n_lora + 4 * n_tokens + 64 + 16 * layout.n_layer
            + n_tokens * (4 + layout.cell_bytes))


def pack(slot: SlotState, model_fingerprint: str, layout: KvLayout) -> bytes:
    """The file's bytes."""
    lora = b"".join(LORA_ENTRY.pack(bytes.fromhex(fp), scale) for fp, scale in slot.lora)
    tokens = np.asarray(slot.tokens, dtype="<i4").tobytes()
    header = HEADER.pack(MAGIC, VERSION, HEADER.size, bytes.fromhex(model_fingerprint), layout.type_k,
                         layout.type_v, layout.n_layer, len(slot.tokens), layout.cell_bytes, len(slot.state),
                         len(slot.lora), 0, bytes(32), bytes(8))
    h = hashlib.sha256(header)
    h.update(lora)
    h.update(tokens)
    h.update(slot.state)
    header = header[:_CHECKSUM_AT] + h.digest() + header[_CHECKSUM_AT + 32:]
    return b"".join((header, lora, tokens, slot.state))


def unpack(data: bytes, model_fingerprint: str, layout: KvLayout, *, n_vocab: int, n_ctx: int) -> SlotState:
    """The slot state a file holds, after checking it whole: its structure and size, its
    checksum, that it was saved from this model with a KV cache of this layout, that
    it fits a slot of n_ctx cells, and that its tokens are in the vocabulary."""
    if len(data) < HEADER.size or data[:8] != MAGIC:
        if data[:8] == MAGIC:
            raise SlotFileError("the slot file is truncated (its header is incomplete)")
        raise SlotFileError("not a pyllama slot file (bad magic)")
    (_, version, header_size, model_fp, type_k, type_v, n_layer, n_tokens, cell_bytes, state_bytes, n_lora, _,
     checksum, _) = HEADER.unpack_from(data)
    if version != VERSION:
        raise SlotFileError(f"the slot file has format version {version}; this pyllama reads version {VERSION}")
    if header_size != HEADER.size:
        raise SlotFileError(f"the slot file's header size {header_size} is wrong (expected {HEADER.size})")
    expected = HEADER.size + LORA_ENTRY.size * n_lora + 4 * n_tokens + state_bytes
    if len(data) < expected:
        raise SlotFileError(f"the slot file is truncated: {len(data)} bytes, its header says {expected}")
    if len(data) > expected:
        raise SlotFileError(f"the slot file has {len(data) - expected} bytes past its end")
    h = hashlib.sha256(data[:_CHECKSUM_AT])
    h.update(bytes(32))
    h.update(memoryview(data)[_CHECKSUM_AT + 32:])
    if h.digest() != checksum:
        raise SlotFileError("the slot file's checksum does not match: it was changed or damaged")
    if model_fp.hex() != model_fingerprint:
        raise SlotFileError("the slot file was saved from another model (or another quantization of it)")
    mine = KvLayout(type_k, type_v, n_layer, cell_bytes)
    if mine != layout:
        raise SlotFileError(f"the slot file holds a KV cache of another layout (K type {type_k}, V type {type_v}, "
                            f"{n_layer} layers, {cell_bytes} bytes per cell; this server: K type {layout.type_k}, "
                            f"V type {layout.type_v}, {layout.n_layer} layers, {layout.cell_bytes} bytes per "
                            f"cell): restore it with the same --cache-type-k/-v")
    if n_tokens > n_ctx:
        raise SlotFileError(f"the slot file holds {n_tokens} tokens, more than a slot's context ({n_ctx})")
    at = HEADER.size
    lora = []
    for _ in range(n_lora):
        fp, scale = LORA_ENTRY.unpack_from(data, at)
        if not math.isfinite(scale):
            raise SlotFileError("the slot file holds a LoRA scale that is not a number")
        lora.append((fp.hex(), float(scale)))
        at += LORA_ENTRY.size
    tokens = np.frombuffer(data, dtype="<i4", count=n_tokens, offset=at)
    at += 4 * n_tokens
    if n_tokens and (int(tokens.min()) < 0 or int(tokens.max()) >= n_vocab):
        raise SlotFileError("the slot file holds token ids outside the model's vocabulary")
    return SlotState(tokens=tokens.tolist(), state=bytes(memoryview(data)[at:]), lora=tuple(lora))
