#include "kv_cache.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "kernels/ops.h"

namespace pyllama {

namespace {

constexpr uint32_t kStateMagic = 0x31564b50;  // "PKV1"

int32_t range_end(int32_t p1) { return p1 < 0 ? INT32_MAX : p1; }
int32_t range_begin(int32_t p0) { return p0 < 0 ? 0 : p0; }

template <typename T>
void put(std::vector<uint8_t>& out, T v) {
    const size_t at = out.size();
    out.resize(at + sizeof(T));
    std::memcpy(out.data() + at, &v, sizeof(T));
}

struct Reader {
    const uint8_t* p;
    size_t left;
    template <typename T>
    T get() {
        T v;
        take(&v, sizeof(T));
        return v;
    }
    void take(void* dst, size_t n) {
        if (n > left) throw KvCacheError("sequence state is truncated");
        std::memcpy(dst, p, n);
        p += n;
        left -= n;
    }
};

}  // namespace

namespace {
// llama-server's --cache-type-k/-v choices, by ggml name
const std::pair<const char*, GgmlType> kCacheTypes[] = {
    {"f32", GgmlType::F32},   {"f16", GgmlType::F16},   {"bf16", GgmlType::BF16},
    {"q8_0", GgmlType::Q8_0}, {"q4_0", GgmlType::Q4_0}, {"q4_1", GgmlType::Q4_1},
    {"iq4_nl", GgmlType::IQ4_NL}, {"q5_0", GgmlType::Q5_0}, {"q5_1", GgmlType::Q5_1},
};
}  // namespace

GgmlType kv_cache_type(const std::string& name) {
    std::string all;
    for (const auto& [n, t] : kCacheTypes) {
        if (name == n) return t;
        all += (all.empty() ? "" : ", ") + std::string(n);
    }
    throw std::invalid_argument("unsupported KV cache type '" + name + "' (" + all + ")");
}

bool is_kv_cache_type(GgmlType type) {
    for (const auto& [n, t] : kCacheTypes)
        if (t == type) return true;
    return false;
}

void visible_cells(const int32_t* kv_pos, const uint64_t* kv_seq, int64_t n_kv, const int32_t* q_pos,
                   const int32_t* q_seq, int64_t n_tokens, int32_t window, VisibleCells& out) {
    uint64_t wanted = 0;
    for (int64_t t = 0; t < n_tokens; ++t) wanted |= 1ull << q_seq[t];
    // (pos, cell) lists per wanted sequence, sorted by position
    std::vector<std::pair<int32_t, int32_t>> lists[kMaxSeq];
    for (int64_t c = 0; c < n_kv; ++c) {
        if (kv_pos[c] < 0) continue;
        for (uint64_t m = kv_seq[c] & wanted; m; m &= m - 1)
            lists[__builtin_ctzll(m)].emplace_back(kv_pos[c], (int32_t)c);
    }
    int64_t offset[kMaxSeq] = {};
    out.cells.clear();
    for (int s = 0; s < kMaxSeq; ++s) {
        if (!(wanted >> s & 1)) continue;
        std::sort(lists[s].begin(), lists[s].end());
        offset[s] = (int64_t)out.cells.size();
        for (const auto& pc : lists[s]) out.cells.push_back(pc.second);
    }
    out.begin.resize(n_tokens);
    out.end.resize(n_tokens);
    for (int64_t t = 0; t < n_tokens; ++t) {
        const auto& l = lists[q_seq[t]];
        const int32_t p = q_pos[t];
        const auto hi = std::upper_bound(l.begin(), l.end(), std::make_pair(p, INT32_MAX));
        auto lo = l.begin();
        if (window > 0) lo = std::lower_bound(l.begin(), hi, std::make_pair(p - window + 1, INT32_MIN));
        out.begin[t] = offset[q_seq[t]] + (lo - l.begin());
        out.end[t] = offset[q_seq[t]] + (hi - l.begin());
    }
}

KvCache::KvCache(int64_t n_ctx, std::vector<KvLayerSpec> layers, GgmlType type_k, GgmlType type_v)
    : layers_(std::move(layers)), type_k_(type_k), type_v_(type_v) {
    if (n_ctx <= 0) throw KvCacheError("the KV cache needs at least one cell");
    for (GgmlType t : {type_k, type_v})
        if (!is_kv_cache_type(t))
            throw KvCacheError("KV cache types are f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0 and q5_1");
    const int bk = type_traits((uint32_t)type_k)->block_size, bv = type_traits((uint32_t)type_v)->block_size;
    pos_.assign(n_ctx, -1);
    seqs_.assign(n_ctx, 0);
    for (const KvLayerSpec& l : layers_) {
        if (l.head_dim_k % bk || l.head_dim_v % bv)
            throw KvCacheError("head dimension " + std::to_string(l.head_dim_k) +
                               " is not a multiple of the KV cache type's block size");
        k_cell_bytes_.push_back(row_size(type_k, l.head_dim_k) * (size_t)l.n_head_kv);
        v_cell_bytes_.push_back(row_size(type_v, l.head_dim_v) * (size_t)l.n_head_kv);
        k_.emplace_back(k_cell_bytes_.back() * (size_t)n_ctx);
        v_.emplace_back(v_cell_bytes_.back() * (size_t)n_ctx);
    }
}

void KvCache::check_seq(int seq, bool allow_all) {
    if (seq >= kMaxSeq || (seq < 0 && !allow_all))
        throw KvCacheError("sequence id " + std::to_string(seq) + " is out of range [0, " +
                           std::to_string(kMaxSeq) + ")");
}

void KvCache::clear_cell(int64_t c) {
    if (pos_[c] >= 0) --n_used_;
    pos_[c] = -1;
    seqs_[c] = 0;
}

bool KvCache::find_slot(const int32_t* pos, const uint64_t* seqs, int64_t n, int32_t* cells_out) {
    if (n > size() - n_used_) return false;
    const int64_t n_ctx = size();
    int64_t c = head_ % n_ctx;
    for (int64_t i = 0; i < n; ++i) {
        while (pos_[c] >= 0) c = (c + 1) % n_ctx;
        pos_[c] = pos[i];
        seqs_[c] = seqs[i];
        cells_out[i] = (int32_t)c;
        ++n_used_;
        c = (c + 1) % n_ctx;
    }
    head_ = c;
    return true;
}

void KvCache::release(const int32_t* cells, int64_t n) {
    for (int64_t i = 0; i < n; ++i) clear_cell(cells[i]);
}

bool KvCache::selected(int64_t c, int seq, int32_t p0, int32_t p1) const {
    return pos_[c] >= range_begin(p0) && pos_[c] < range_end(p1) && (seq < 0 || (seqs_[c] >> seq & 1));
}

void KvCache::seq_rm(int seq, int32_t p0, int32_t p1) {
    check_seq(seq, true);
    for (int64_t c = 0; c < size(); ++c) {
        if (!selected(c, seq, p0, p1)) continue;
        if (seq >= 0) seqs_[c] &= ~(1ull << seq);
        if (seq < 0 || !seqs_[c]) clear_cell(c);
    }
}

void KvCache::seq_cp(int src, int dst, int32_t p0, int32_t p1) {
    check_seq(src, false);
    check_seq(dst, false);
    if (src == dst) return;
    for (int64_t c = 0; c < size(); ++c)
        if (selected(c, src, p0, p1)) seqs_[c] |= 1ull << dst;
}

void KvCache::seq_keep(int seq) {
    check_seq(seq, false);
    for (int64_t c = 0; c < size(); ++c) {
        if (pos_[c] < 0) continue;
        if (seqs_[c] >> seq & 1)
            seqs_[c] = 1ull << seq;
        else
            clear_cell(c);
    }
}

namespace {

// Rotate one cell's K heads (n_head_kv, head_dim_k) by a position delta: the angle of a
// position is linear in it, so this is the rotation from p to p + delta, without the
// magnitude YaRN gives at a position (that was applied when K was written).
void rope_shift(float* k, int32_t delta, const KvLayerSpec& s) {
    RopeParams rp;
    rp.n_rot = s.n_rot;
    rp.freq_base = s.rope_base;
    rp.freq_scale = s.rope_scale;
    rp.ext_factor = s.rope_ext_factor;
    rp.beta_fast = s.rope_beta_fast;
    rp.beta_slow = s.rope_beta_slow;
    rp.n_ctx_orig = s.rope_n_ctx_orig;
    rp.freq_factors = s.rope_freq_factors.empty() ? nullptr : s.rope_freq_factors.data();
    std::vector<float> cs((size_t)s.n_rot);
    rope_angles_ext(&delta, 1, rp, cs.data(), /*unit=*/true);
    rope_apply(k, cs.data(), 1, s.n_head_kv, s.head_dim_k, s.n_rot, s.rope_neox);
}

}  // namespace

void KvCache::rerotate(int64_t c, int32_t delta) {
    if (delta == 0) return;
    const KernelTable& kt = kernels();
    std::vector<float> buf;
    for (int64_t l = 0; l < n_layer(); ++l) {
        const KvLayerSpec& s = layers_[l];
        if (s.n_rot <= 0) continue;
        const int64_t n = s.n_head_kv * s.head_dim_k;
        buf.resize(n);
        uint8_t* k = k_cell(l, c);  // (n_head_kv, head_dim_k)
        for (int64_t h = 0; h < s.n_head_kv; ++h)
            kt.dequantize[(int)type_k_](k + h * row_size(type_k_, s.head_dim_k), buf.data() + h * s.head_dim_k,
                                        s.head_dim_k);
        rope_shift(buf.data(), delta, s);
        for (int64_t h = 0; h < s.n_head_kv; ++h)
            kt.quantize[(int)type_k_](buf.data() + h * s.head_dim_k, k + h * row_size(type_k_, s.head_dim_k),
                                      s.head_dim_k);
    }
}

void KvCache::seq_add(int seq, int32_t p0, int32_t p1, int32_t delta) {
    check_seq(seq, true);
    if (delta == 0) return;
    for (int64_t c = 0; c < size(); ++c) {
        if (!selected(c, seq, p0, p1)) continue;
        const int64_t np = (int64_t)pos_[c] + delta;
        if (np < 0) {
            clear_cell(c);
            continue;
        }
        pos_[c] = (int32_t)np;
        rerotate(c, delta);
    }
}

void KvCache::seq_div(int seq, int32_t p0, int32_t p1, int d) {
    check_seq(seq, true);
    if (d <= 0) throw KvCacheError("seq_div needs a positive divisor");
    if (d == 1) return;
    for (int64_t c = 0; c < size(); ++c) {
        if (!selected(c, seq, p0, p1)) continue;
        const int32_t np = pos_[c] / d;
        const int32_t delta = np - pos_[c];
        pos_[c] = np;
        rerotate(c, delta);
    }
}

int32_t KvCache::seq_pos_min(int seq) const {
    check_seq(seq, false);
    int32_t r = -1;
    for (int64_t c = 0; c < size(); ++c)
        if (pos_[c] >= 0 && (seqs_[c] >> seq & 1) && (r < 0 || pos_[c] < r)) r = pos_[c];
    return r;
}

int32_t KvCache::seq_pos_max(int seq) const {
    check_seq(seq, false);
    int32_t r = -1;
    for (int64_t c = 0; c < size(); ++c)
        if (pos_[c] >= 0 && (seqs_[c] >> seq & 1)) r = std::max(r, pos_[c]);
    return r;
}

int64_t KvCache::seq_n_cells(int seq) const {
    check_seq(seq, false);
    int64_t n = 0;
    for (int64_t c = 0; c < size(); ++c) n += pos_[c] >= 0 && (seqs_[c] >> seq & 1);
    return n;
}

void KvCache::clear() {
    std::fill(pos_.begin(), pos_.end(), -1);
    std::fill(seqs_.begin(), seqs_.end(), 0);
    n_used_ = 0;
    head_ = 0;
}

double KvCache::fragmentation() const {
    int64_t last = -1;
    for (int64_t c = 0; c < size(); ++c)
        if (pos_[c] >= 0) last = c;
    if (last < 0) return 0.0;
    return 1.0 - (double)n_used_ / (double)(last + 1);
}

void KvCache::defrag() {
    int64_t dst = 0;
    for (int64_t c = 0; c < size(); ++c) {
        if (pos_[c] < 0) continue;
        if (c != dst) {
            pos_[dst] = pos_[c];
            seqs_[dst] = seqs_[c];
            pos_[c] = -1;
            seqs_[c] = 0;
            for (int64_t l = 0; l < n_layer(); ++l) {
                std::memcpy(k_cell(l, dst), k_cell(l, c), k_cell_bytes_[l]);
                std::memcpy(v_cell(l, dst), v_cell(l, c), v_cell_bytes_[l]);
            }
        }
        ++dst;
    }
    head_ = dst % size();
}

std::vector<uint8_t> KvCache::seq_save(int seq) const {
    check_seq(seq, false);
    std::vector<std::pair<int32_t, int32_t>> cells;  // (pos, cell), in position order
    for (int64_t c = 0; c < size(); ++c)
        if (pos_[c] >= 0 && (seqs_[c] >> seq & 1)) cells.emplace_back(pos_[c], (int32_t)c);
    std::sort(cells.begin(), cells.end());
    std::vector<uint8_t> out;
    put<uint32_t>(out, kStateMagic);
    put<uint32_t>(out, (uint32_t)n_layer());
    put<uint32_t>(out, (uint32_t)type_k_);
    put<uint32_t>(out, (uint32_t)type_v_);
    put<uint32_t>(out, (uint32_t)cells.size());
    for (int64_t l = 0; l < n_layer(); ++l) {
        put<uint64_t>(out, k_cell_bytes_[l]);
        put<uint64_t>(out, v_cell_bytes_[l]);
    }
    for (const auto& pc : cells) put<int32_t>(out, pc.first);
    for (int64_t l = 0; l < n_layer(); ++l) {
        for (const auto& pc : cells) {
            const uint8_t* k = k_[l].data() + (size_t)pc.second * k_cell_bytes_[l];
            out.insert(out.end(), k, k + k_cell_bytes_[l]);
        }
        for (const auto& pc : cells) {
            const uint8_t* v = v_[l].data() + (size_t)pc.second * v_cell_bytes_[l];
            out.insert(out.end(), v, v + v_cell_bytes_[l]);
        }
    }
    return out;
}

void KvCache::seq_restore(int seq, const uint8_t* data, size_t n) {
    check_seq(seq, false);
    if (seq_n_cells(seq) != 0) throw KvCacheError("sequence " + std::to_string(seq) + " is not empty");
    Reader r{data, n};
    if (r.get<uint32_t>() != kStateMagic) throw KvCacheError("not a pyllama sequence state");
    const uint32_t nl = r.get<uint32_t>(), tk = r.get<uint32_t>(), tv = r.get<uint32_t>();
    const uint32_t n_cells = r.get<uint32_t>();
    if (nl != n_layer() || tk != (uint32_t)type_k_ || tv != (uint32_t)type_v_)
        throw KvCacheError("sequence state was saved from a cache with another layout");
    for (int64_t l = 0; l < n_layer(); ++l)
        if (r.get<uint64_t>() != k_cell_bytes_[l] || r.get<uint64_t>() != v_cell_bytes_[l])
            throw KvCacheError("sequence state was saved from a cache with another layout");
    // sizes come from the data: bound them before allocating anything
    if ((int64_t)n_cells > size())
        throw KvCacheError("no room in the KV cache for " + std::to_string(n_cells) + " cells (it has " +
                           std::to_string(size()) + ")");
    size_t rows = 0;
    for (int64_t l = 0; l < n_layer(); ++l) rows += (k_cell_bytes_[l] + v_cell_bytes_[l]) * (size_t)n_cells;
    if (r.left != sizeof(int32_t) * (size_t)n_cells + rows) throw KvCacheError("sequence state has the wrong size");
    std::vector<int32_t> pos(n_cells), cells(n_cells);
    r.take(pos.data(), sizeof(int32_t) * n_cells);
    // a sequence holds each position once; saved states list them in increasing order
    for (uint32_t i = 0; i < n_cells; ++i)
        if (pos[i] < 0 || (i > 0 && pos[i] <= pos[i - 1]))
            throw KvCacheError("sequence state holds a negative or repeated position");
    std::vector<uint64_t> seqs(n_cells, 1ull << seq);
    if (!find_slot(pos.data(), seqs.data(), n_cells, cells.data()))
        throw KvCacheError("no room in the KV cache for " + std::to_string(n_cells) + " cells");
    for (int64_t l = 0; l < n_layer(); ++l) {
        for (uint32_t i = 0; i < n_cells; ++i) r.take(k_cell(l, cells[i]), k_cell_bytes_[l]);
        for (uint32_t i = 0; i < n_cells; ++i) r.take(v_cell(l, cells[i]), v_cell_bytes_[l]);
    }
}

KvView KvCache::view(int64_t layer) const {
    const KvLayerSpec& s = layers_[layer];
    return KvView{k_[layer].data(), v_[layer].data(), type_k_, type_v_,
                  row_size(type_k_, s.head_dim_k), row_size(type_v_, s.head_dim_v),
                  k_cell_bytes_[layer], v_cell_bytes_[layer]};
}

size_t KvCache::cell_bytes() const {
    size_t n = 0;
    for (int64_t l = 0; l < n_layer(); ++l) n += k_cell_bytes_[l] + v_cell_bytes_[l];
    return n;
}

size_t KvCache::memory_bytes() const {
    size_t n = pos_.size() * (sizeof(int32_t) + sizeof(uint64_t));
    for (int64_t l = 0; l < n_layer(); ++l) n += k_[l].size() + v_[l].size();
    return n;
}

}  // namespace pyllama
