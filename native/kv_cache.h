// The KV cache: one store of n_ctx cells shared by every sequence.
//
//   cell c:  pos[c]  (-1 = empty)   seqs[c]  (bit s set = sequence s holds it)
//   layer l: K (n_ctx, n_head_kv, head_dim_k) in type_k
//            V (n_ctx, n_head_kv, head_dim_v) in type_v
//
// A cell shared by several sequences (a common prompt prefix) is stored once.
// Cells need not be contiguous: attention visits a sequence's cells in
// position order (visible_cells), so where a token lands never changes a
// result. Sequence ids are 0..63.
//
// The bookkeeping works with zero layers, so it is testable without a model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/attention.h"
#include "kernels/block_formats.h"
#include "kernels/kernels.h"

namespace pyllama {

constexpr int kMaxSeq = 64;

// The element type a cache type name stands for (llama.cpp's --cache-type-k/-v: f32,
// f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1); throws std::invalid_argument naming
// the choices.
GgmlType kv_cache_type(const std::string& name);
bool is_kv_cache_type(GgmlType type);

// Shape and RoPE of one layer's cache; rope is needed to re-rotate K when
// positions shift (seq_add, seq_div).
struct KvLayerSpec {
    int64_t n_head_kv = 1;
    int64_t head_dim_k = 0, head_dim_v = 0;
    int64_t n_rot = 0;
    float rope_base = 10000.0f, rope_scale = 1.0f;
    bool rope_neox = false;
    std::vector<float> rope_freq_factors;  // (n_rot/2) or empty
    // YaRN's angle mixing (ops.h RopeParams); the magnitude is left out of a re-rotation
    float rope_ext_factor = 0.0f, rope_beta_fast = 32.0f, rope_beta_slow = 1.0f;
    int32_t rope_n_ctx_orig = 0;
};

// Per query token, the cells it may attend to: cells[begin[t], end[t]),
// sorted by position (so reductions run in a fixed order).
struct VisibleCells {
    std::vector<int32_t> cells;
    std::vector<int64_t> begin, end;
};

// Build VisibleCells for queries (q_pos, q_seq) over cells (kv_pos, kv_seq):
// a query sees the cells of its sequence at positions <= its own and, with a
// window w > 0, at positions > q_pos - w.
void visible_cells(const int32_t* kv_pos, const uint64_t* kv_seq, int64_t n_kv, const int32_t* q_pos,
                   const int32_t* q_seq, int64_t n_tokens, int32_t window, VisibleCells& out);

// Zeroed storage whose pages the OS commits on first write (calloc maps large blocks
// from zero pages): a KV cache as large as a model's training context costs memory
// only for the cells that get used.
class LazyZeroBuffer {
   public:
    explicit LazyZeroBuffer(size_t n) : n_(n), p_(static_cast<uint8_t*>(std::calloc(n ? n : 1, 1))) {
        if (!p_) throw std::bad_alloc();
    }
    ~LazyZeroBuffer() { std::free(p_); }
    LazyZeroBuffer(LazyZeroBuffer&& o) noexcept : n_(o.n_), p_(o.p_) { o.p_ = nullptr; o.n_ = 0; }
    LazyZeroBuffer(const LazyZeroBuffer& o) : LazyZeroBuffer(o.n_) { std::memcpy(p_, o.p_, n_); }
    LazyZeroBuffer& operator=(const LazyZeroBuffer& o) {
        if (this != &o) {
            LazyZeroBuffer t(o);
            std::swap(n_, t.n_);
            std::swap(p_, t.p_);
        }
        return *this;
    }
    LazyZeroBuffer& operator=(LazyZeroBuffer&& o) noexcept {
        std::swap(n_, o.n_);
        std::swap(p_, o.p_);
        return *this;
    }
    uint8_t* data() { return p_; }
    const uint8_t* data() const { return p_; }
    size_t size() const { return n_; }

   private:
    size_t n_;
    uint8_t* p_;
};

class KvCacheError : public std::runtime_error {
   public:
    using std::runtime_error::runtime_error;
};

class KvCache {
   public:
    KvCache(int64_t n_ctx, std::vector<KvLayerSpec> layers, GgmlType type_k, GgmlType type_v);

    int64_t size() const { return (int64_t)pos_.size(); }
    int64_t n_layer() const { return (int64_t)layers_.size(); }
    int64_t n_used() const { return n_used_; }
    int32_t cell_pos(int64_t c) const { return pos_[c]; }
    uint64_t cell_seqs(int64_t c) const { return seqs_[c]; }
    const int32_t* pos_data() const { return pos_.data(); }
    const uint64_t* seqs_data() const { return seqs_.data(); }
    GgmlType type_k() const { return type_k_; }
    GgmlType type_v() const { return type_v_; }
    // Bytes of K and V one cell holds over all layers.
    size_t cell_bytes() const;

    // Claim one empty cell per token (searching from the last claim), setting its
    // position and sequences. All or nothing: false (nothing changed) when fewer
    // than n cells are free.
    bool find_slot(const int32_t* pos, const uint64_t* seqs, int64_t n, int32_t* cells_out);
    // Release cells claimed by find_slot (undo of a failed decode).
    void release(const int32_t* cells, int64_t n);

    // Position ranges are [p0, p1); p0 < 0 means 0, p1 < 0 means infinity.
    // seq < 0 means every sequence.
    void seq_rm(int seq, int32_t p0, int32_t p1);
    void seq_cp(int src, int dst, int32_t p0, int32_t p1);
    void seq_keep(int seq);
    // Shift positions by delta (cells pushed below 0 are removed) and re-rotate K.
    void seq_add(int seq, int32_t p0, int32_t p1, int32_t delta);
    // Integer-divide positions by d and re-rotate K.
    void seq_div(int seq, int32_t p0, int32_t p1, int d);
    // -1 when the sequence holds no cell.
    int32_t seq_pos_min(int seq) const;
    int32_t seq_pos_max(int seq) const;
    int64_t seq_n_cells(int seq) const;
    void clear();

    // Holes below the last used cell over that span (0 = compact).
    double fragmentation() const;
    // Move used cells to the front, keeping their order; K/V rows move with them.
    void defrag();

    // One sequence's cells (positions, K and V of every layer) as bytes, and back
    // into sequence `seq` (which must be empty; throws KvCacheError on a
    // mismatched layout or when there is no room).
    std::vector<uint8_t> seq_save(int seq) const;
    void seq_restore(int seq, const uint8_t* data, size_t n);

    // Layer storage.
    uint8_t* k_cell(int64_t layer, int64_t cell) { return k_[layer].data() + (size_t)cell * k_cell_bytes_[layer]; }
    uint8_t* v_cell(int64_t layer, int64_t cell) { return v_[layer].data() + (size_t)cell * v_cell_bytes_[layer]; }
    KvView view(int64_t layer) const;
    size_t memory_bytes() const;

    void visible(const int32_t* q_pos, const int32_t* q_seq, int64_t n_tokens, int32_t window,
                 VisibleCells& out) const {
        visible_cells(pos_.data(), seqs_.data(), size(), q_pos, q_seq, n_tokens, window, out);
    }

   private:
    // Cell c holds a position in [p0, p1) (open bounds when negative) and, unless seq < 0, sequence seq.
    bool selected(int64_t c, int seq, int32_t p0, int32_t p1) const;
    void clear_cell(int64_t c);
    void rerotate(int64_t c, int32_t delta);
    static void check_seq(int seq, bool allow_all);

    std::vector<KvLayerSpec> layers_;
    GgmlType type_k_, type_v_;
    std::vector<int32_t> pos_;    // (n_ctx)
    std::vector<uint64_t> seqs_;  // (n_ctx)
    std::vector<LazyZeroBuffer> k_, v_;               // per layer (n_ctx, k_cell_bytes)
    std::vector<size_t> k_cell_bytes_, v_cell_bytes_;
    int64_t head_ = 0;
    int64_t n_used_ = 0;
};

}  // namespace pyllama
