#include "matmul.h"

#include "repack.h"

#include <algorithm>
#include <atomic>
#include <vector>

namespace pyllama {

namespace {

// Tile sizes: a tile of kRowTile weight rows stays in L1/L2 while it meets up
// to kActTile activation rows, so prefill reads each weight block once per
// tile of tokens rather than once per token.
constexpr int64_t kRowTile = 16;
constexpr int64_t kActTile = 64;
static_assert(kRowTile % kPackRows == 0, "packed groups must not straddle tiles");

std::vector<uint8_t>& act_buffer() {
    thread_local std::vector<uint8_t> buf;
    return buf;
}

std::vector<int32_t>& sums_buffer() {
    thread_local std::vector<int32_t> buf;
    return buf;
}

// Below this many activation rows the row-by-row kernels do as well.
constexpr int64_t kMinPanelRows = 4;

// Y = X Wᵀ through the kernel table's panel kernels (every result equal to the
// row-by-row kernels'): activation rows laid out as panels, then tiles of
// kRowTile weight rows x kActTile activation rows, claimed dynamically.
void matmul_panels(const WeightView& w, const float* x, int64_t m, int64_t x_stride, float* y, int64_t y_stride,
                   ThreadPool& pool, PanelActFn panel_act, GemmPanelFn gemm) {
    const int64_t k = w.n_cols, n = w.n_rows;
    std::vector<uint8_t>& buf = act_buffer();
    if (buf.size() < sizeof(float) * (size_t)(m * k)) buf.resize(sizeof(float) * (size_t)(m * k));
    float* act = reinterpret_cast<float*>(buf.data());
    const int64_t n_row_tiles = (n + kRowTile - 1) / kRowTile;
    const int64_t n_act_tiles = (m + kActTile - 1) / kActTile;
    std::atomic<int64_t> next_tile{0}, next_row{0}, rows_done{0};
    const uint8_t* wbase = static_cast<const uint8_t*>(w.data);
    pool.run([&](int, int) {
        for (int64_t r; (r = next_row.fetch_add(1)) < m;) {
            panel_act(x + r * x_stride, act + r * k, k);
            rows_done.fetch_add(1, std::memory_order_acq_rel);
        }
        wait_until([&] { return rows_done.load(std::memory_order_acquire) >= m; });
        // row tiles outermost: a thread's consecutive claims tend to share weights
        for (int64_t t; (t = next_tile.fetch_add(1)) < n_row_tiles * n_act_tiles;) {
            const int64_t rt = t / n_act_tiles, mt = t % n_act_tiles;
            const int64_t r0 = rt * kRowTile, r1 = std::min(n, r0 + kRowTile);
            const int64_t m0 = mt * kActTile, m1 = std::min(m, m0 + kActTile);
            gemm(k, wbase + r0 * w.row_stride, w.row_stride, r1 - r0, act + m0 * k, m1 - m0, y + m0 * y_stride + r0,
                 y_stride);
        }
    });
}

}  // namespace

void matmul(const WeightView& w, const float* x, int64_t m, int64_t x_stride, float* y,
            int64_t y_stride, ThreadPool& pool, const KernelTable& kt) {
    const TypeTraits* wt = type_traits(static_cast<uint32_t>(w.type));
    const GgmlType at = wt->vec_dot_type;
    const int64_t k = w.n_cols;
    const size_t act_row = row_size(at, k);
    const VecDotFn dot = kt.vec_dot[static_cast<int>(w.type)];
    const VecDot4Fn dot4 = kt.vec_dot4[static_cast<int>(w.type)];
    const VecDotActs4Fn acts4 = kt.vec_dot_acts4[static_cast<int>(w.type)];
    const VecDot8Fn dot8 = w.packed ? kt.vec_dot8[static_cast<int>(w.type)] : nullptr;
    // rows [0, n_packed) come from the packed groups when a packed kernel exists
    const int64_t n_packed = dot8 ? w.n_rows / kPackRows * kPackRows : 0;
    const size_t group_bytes = packed_block_bytes(w.type) * (size_t)(k / 32);
    const uint8_t* pbase = static_cast<const uint8_t*>(w.packed);
    const QuantizeFn quant = kt.quantize[static_cast<int>(at)];
    const PanelActFn panel_act = kt.panel_act[static_cast<int>(w.type)];
    const GemmPanelFn gemm = kt.gemm_panel[static_cast<int>(w.type)];
    if (panel_act && gemm && !dot8 && k % 32 == 0 && m >= kMinPanelRows) {
        matmul_panels(w, x, m, x_stride, y, y_stride, pool, panel_act, gemm);
        return;
    }

    // (M, act_row bytes): activations in the weight type's dot-product format.
    std::vector<uint8_t>& buf = act_buffer();
    if (buf.size() < act_row * (size_t)m) buf.resize(act_row * (size_t)m);
    uint8_t* act = buf.data();
    // (M, K / 32): per-block activation sums for the packed kernels; Q8_1
    // activations carry theirs already (s), so only Q8_0 rows need them
    const int64_t nb = k / 32;
    const bool need_sums = dot8 && at == GgmlType::Q8_0;
    std::vector<int32_t>& sums_buf = sums_buffer();
    if (need_sums && sums_buf.size() < (size_t)(nb * m)) sums_buf.resize((size_t)(nb * m));
    int32_t* sums = sums_buf.data();

    const int64_t n = w.n_rows;
    const int64_t n_row_tiles = (n + kRowTile - 1) / kRowTile;
    const int64_t n_act_tiles = (m + kActTile - 1) / kActTile;
    std::atomic<int64_t> next_tile{0};
    std::atomic<int64_t> next_row{0};
    std::atomic<int64_t> rows_done{0};

    const uint8_t* wbase = static_cast<const uint8_t*>(w.data);
    pool.run([&](int, int) {
        // Phase 1: quantize activation rows (rows claimed dynamically). Then wait
        // for the rows others claimed and are still quantizing - never for a
        // thread that has not arrived (the pool may run this call on any thread).
        for (int64_t r; (r = next_row.fetch_add(1)) < m;) {
            quant(x + r * x_stride, act + r * act_row, k);
            if (need_sums) act_block_sums(at, act + r * act_row, k, sums + r * nb);
            rows_done.fetch_add(1, std::memory_order_acq_rel);
        }
        wait_until([&] { return rows_done.load(std::memory_order_acquire) >= m; });
        // Phase 2: output tiles, claimed dynamically.
        const int64_t total = n_row_tiles * n_act_tiles;
        for (int64_t t; (t = next_tile.fetch_add(1)) < total;) {
            const int64_t rt = t / n_act_tiles, mt = t % n_act_tiles;
            const int64_t r0 = rt * kRowTile, r1 = std::min(n, r0 + kRowTile);
            const int64_t m0 = mt * kActTile, m1 = std::min(m, m0 + kActTile);
            // rows [r0, rp) come from packed groups (tiles start at multiples of
            // 16, so groups never straddle them), rows [rp, r1) from plain rows
            const int64_t rp = std::max(r0, std::min(r1, n_packed));
            for (int64_t i = m0; i < m1; ++i)
                for (int64_t r = r0; r < rp; r += kPackRows)
                    dot8(k, pbase + (size_t)(r / kPackRows) * group_bytes, act + i * act_row,
                         need_sums ? sums + i * nb : nullptr, y + i * y_stride + r);
            int64_t i = m0;
            // four activation rows per weight row; each result equals dot's bit for bit
            if (acts4)
                for (; i + 4 <= m1; i += 4)
                    for (int64_t r = rp; r < r1; ++r)
                        acts4(k, wbase + r * w.row_stride, act + i * act_row, act_row, y + i * y_stride + r, y_stride);
            for (; i < m1; ++i) {
                const uint8_t* a = act + i * act_row;
                float* yrow = y + i * y_stride;
                int64_t r = rp;
                // groups of 4 start at multiples of 4 (tiles are too), so which
                // kernel computes a row depends only on N: results stay invariant
                if (dot4)
                    for (; r + 4 <= r1; r += 4) dot4(k, wbase + r * w.row_stride, w.row_stride, a, yrow + r);
                for (; r < r1; ++r) yrow[r] = dot(k, wbase + r * w.row_stride, a);
            }
        }
    });
}

void get_rows(const WeightView& w, const int32_t* ids, int64_t n_ids, float* out, const KernelTable& kt) {
    const DequantizeFn deq = kt.dequantize[static_cast<int>(w.type)];
    for (int64_t i = 0; i < n_ids; ++i)
        deq(static_cast<const uint8_t*>(w.data) + (size_t)ids[i] * w.row_stride, out + i * w.n_cols, w.n_cols);
}

}  // namespace pyllama
