// Kernel self-test: every block format's dequantize and dot product on random
// blocks, at every ISA level this CPU runs, against the portable reference
// (the generic kernels) and against a float64 sum over the dequantized values.
// Built apart from the extension, with no Python, so it can be cross-compiled
// (aarch64) and run under qemu-user: tests/native/test_kernel_selftest.py.
//
//   kernel_selftest [seed]
//
// Prints a line per format, then "N passed, M failed" (exit status 1 on any
// failure) and "digest <16 hex digits>": a hash of the bits of every generic
// result. The generic kernels round alike on every architecture
// (-ffp-contract=off, no libm on these paths), so the digest is the same on
// x86-64 and aarch64.
#include <cinttypes>
#include <cstdarg>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kernels.h"
#include "repack.h"

using namespace pyllama;

namespace {

constexpr int64_t kCols = 1024;  // elements per row: 32 blocks of 32 or 4 of 256
constexpr int kRows = 8;         // weight rows (one packed group of 8)
constexpr int kActs = 4;         // activation rows
constexpr int kRounds = 3;       // fresh random data per format
constexpr double kTol = 1e-4;    // |dot - exact| <= kTol * sum |w_i * a_i|

// splitmix64: the same stream on every platform (no <random> distributions).
struct Rng {
    uint64_t s;
    uint64_t next() {
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    float uniform() { return (float)(next() >> 40) * (1.0f / 16777216.0f); }  // [0, 1)
    // Roughly normal (Irwin-Hall of 4): additions only, so bit-identical everywhere.
    float normal() { return (uniform() + uniform() + uniform() + uniform() - 2.0f) * 1.7320508f; }
};

struct Digest {
    uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
    void bytes(const void* p, size_t n) {
        const uint8_t* b = static_cast<const uint8_t*>(p);
        for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
    }
};

int g_passed = 0, g_failed = 0;

bool check(bool ok, const std::string& what) {
    if (ok) {
        ++g_passed;
    } else {
        ++g_failed;
        std::printf("FAIL %s\n", what.c_str());
    }
    return ok;
}

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, f);
    std::vsnprintf(buf, sizeof buf, f, ap);
    va_end(ap);
    return buf;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

struct Format {
    GgmlType type;
    std::vector<size_t> scale_offsets;  // F16 scale fields, set to finite realistic values
    bool signed_scales;
};

// As tests/helpers/blocks.py: quantized bits uniformly random, scales finite.
const std::vector<Format>& formats() {
    static const std::vector<Format> f = {
        {GgmlType::F32, {}, false},
        {GgmlType::F16, {}, false},
        {GgmlType::BF16, {}, false},
        {GgmlType::Q4_0, {offsetof(block_q4_0, d)}, true},
        {GgmlType::Q4_1, {offsetof(block_q4_1, d), offsetof(block_q4_1, m)}, true},
        {GgmlType::Q5_0, {offsetof(block_q5_0, d)}, true},
        {GgmlType::Q5_1, {offsetof(block_q5_1, d), offsetof(block_q5_1, m)}, true},
        {GgmlType::Q8_0, {offsetof(block_q8_0, d)}, true},
        {GgmlType::Q8_1, {offsetof(block_q8_1, d), offsetof(block_q8_1, s)}, true},
        {GgmlType::IQ4_NL, {offsetof(block_iq4_nl, d)}, true},
        {GgmlType::Q2_K, {offsetof(block_q2_K, d), offsetof(block_q2_K, dmin)}, false},
        {GgmlType::Q3_K, {offsetof(block_q3_K, d)}, true},
        {GgmlType::Q4_K, {offsetof(block_q4_K, d), offsetof(block_q4_K, dmin)}, false},
        {GgmlType::Q5_K, {offsetof(block_q5_K, d), offsetof(block_q5_K, dmin)}, false},
        {GgmlType::Q6_K, {offsetof(block_q6_K, d)}, true},
        {GgmlType::Q8_K, {}, true},  // float d, set below
    };
    return f;
}

// n_rows rows of kCols values of type t, valid random blocks.
std::vector<uint8_t> random_rows(const Format& f, int n_rows, Rng& rng) {
    const TypeTraits* tr = type_traits(static_cast<uint32_t>(f.type));
    const size_t row = row_size(f.type, kCols);
    std::vector<uint8_t> out(row * n_rows);
    const int64_t n = kCols * n_rows;
    if (f.type == GgmlType::F32 || f.type == GgmlType::F16 || f.type == GgmlType::BF16) {
        for (int64_t i = 0; i < n; ++i) {
            const float v = rng.normal();
            if (f.type == GgmlType::F32) std::memcpy(&out[i * 4], &v, 4);
            const uint16_t h = f.type == GgmlType::F16 ? fp32_to_fp16(v) : fp32_to_bf16(v);
            if (f.type != GgmlType::F32) std::memcpy(&out[i * 2], &h, 2);
        }
        return out;
    }
    for (auto& b : out) b = (uint8_t)rng.next();
    const int64_t n_blocks = n / tr->block_size;
    for (int64_t i = 0; i < n_blocks; ++i) {
        uint8_t* block = &out[i * tr->type_size];
        const float sign = f.signed_scales && (rng.next() & 1) ? -1.0f : 1.0f;
        if (f.type == GgmlType::Q8_K) {
            const float d = sign * (1e-3f + 4.9e-2f * rng.uniform());
            std::memcpy(block + offsetof(block_q8_K, d), &d, 4);
            continue;
        }
        for (size_t off : f.scale_offsets) {
            const fp16_t h = fp32_to_fp16(sign * (1e-3f + 4.9e-2f * rng.uniform()));
            std::memcpy(block + off, &h, 2);
        }
    }
    return out;
}

std::vector<float> dequantize(const KernelTable& k, GgmlType t, const void* src, int64_t n) {
    std::vector<float> y(n);
    k.dequantize[static_cast<int>(t)](src, y.data(), n);
    return y;
}

struct Levels {
    std::vector<const KernelTable*> tables;  // generic first, then each level above it this CPU runs
    std::string names;
};

Levels levels() {
    Levels l;
    for (Isa isa : {Isa::Generic, Isa::Avx2, Isa::Avx512}) {
        const KernelTable& k = kernels_for(isa);
        if (k.isa != isa) continue;  // this CPU does not run the level
        l.tables.push_back(&k);
        l.names += std::string(l.names.empty() ? "" : " ") + isa_name(isa);
    }
    return l;
}

void test_format(const Format& f, const Levels& lv, Rng& rng, Digest& digest) {
    const int ti = static_cast<int>(f.type);
    const TypeTraits* tr = type_traits(static_cast<uint32_t>(f.type));
    const KernelTable& G = *lv.tables[0];
    const size_t wrow = row_size(f.type, kCols);
    const int before = g_failed;
    int n_dot = 0;
    for (int round = 0; round < kRounds; ++round) {
        const std::vector<uint8_t> w = random_rows(f, kRows, rng);
        // Dequantize: every level gives the generic kernel's bits, all finite.
        const std::vector<float> ref = dequantize(G, f.type, w.data(), kCols * kRows);
        digest.bytes(ref.data(), ref.size() * sizeof(float));
        bool finite = true;
        for (float v : ref) finite = finite && std::isfinite(v);
        check(finite, fmt("%s dequantize: non-finite values from valid blocks", tr->name));
        for (size_t l = 1; l < lv.tables.size(); ++l) {
            const std::vector<float> y = dequantize(*lv.tables[l], f.type, w.data(), kCols * kRows);
            check(std::memcmp(y.data(), ref.data(), y.size() * sizeof(float)) == 0,
                  fmt("%s dequantize (%s) differs from generic", tr->name, isa_name(lv.tables[l]->isa)));
        }
        if (!G.vec_dot[ti]) continue;  // Q8_1, Q8_K: activation formats only

        // Activations in the format's vec_dot_type, quantized by the generic kernel.
        const GgmlType at = tr->vec_dot_type;
        const size_t arow = row_size(at, kCols);
        std::vector<float> x(kCols * kActs);
        for (float& v : x) v = rng.normal();
        std::vector<uint8_t> a(arow * kActs);
        for (int j = 0; j < kActs; ++j) G.quantize[static_cast<int>(at)](&x[j * kCols], &a[j * arow], kCols);
        digest.bytes(a.data(), a.size());
        const std::vector<float> adq = dequantize(G, at, a.data(), kCols * kActs);

        for (const KernelTable* k : lv.tables) {
            const char* isa = isa_name(k->isa);
            for (int r = 0; r < kRows; ++r) {
                for (int j = 0; j < kActs; ++j) {
                    double exact = 0.0, scale = 0.0;
                    for (int64_t i = 0; i < kCols; ++i) {
                        const double p = (double)ref[r * kCols + i] * (double)adq[j * kCols + i];
                        exact += p;
                        scale += std::fabs(p);
                    }
                    const float d = k->vec_dot[ti](kCols, &w[r * wrow], &a[j * arow]);
                    if (k == &G) digest.bytes(&d, sizeof d);
                    const float g = G.vec_dot[ti](kCols, &w[r * wrow], &a[j * arow]);
                    check(std::fabs(d - exact) <= kTol * scale && std::fabs(d - g) <= kTol * scale,
                          fmt("%s vec_dot (%s) row %d act %d: %.9g, generic %.9g, exact %.9g", tr->name, isa, r, j,
                              d, g, exact));
                    ++n_dot;
                }
            }
            // Multi-row variants: the same bits as vec_dot of the same level.
            if (k->vec_dot4[ti]) {
                for (int j = 0; j < kActs; ++j) {
                    float out[4];
                    for (int r0 = 0; r0 + 4 <= kRows; r0 += 4) {
                        k->vec_dot4[ti](kCols, &w[r0 * wrow], wrow, &a[j * arow], out);
                        for (int r = 0; r < 4; ++r)
                            check(same_bits(out[r], k->vec_dot[ti](kCols, &w[(r0 + r) * wrow], &a[j * arow])),
                                  fmt("%s vec_dot4 (%s) row %d differs from vec_dot", tr->name, isa, r0 + r));
                    }
                }
            }
            if (k->vec_dot_acts4[ti]) {
                for (int r = 0; r < kRows; ++r) {
                    float out[kActs * 2];
                    k->vec_dot_acts4[ti](kCols, &w[r * wrow], a.data(), arow, out, 2);
                    for (int j = 0; j < kActs; ++j)
                        check(same_bits(out[j * 2], k->vec_dot[ti](kCols, &w[r * wrow], &a[j * arow])),
                              fmt("%s vec_dot_acts4 (%s) act %d differs from vec_dot", tr->name, isa, j));
                }
            }
            // Packed row groups: the same values as vec_dot up to rounding.
            if (k->vec_dot8[ti] && packed_block_bytes(f.type)) {
                std::vector<uint8_t> packed(packed_bytes(f.type, kRows, kCols));
                pack_rows(f.type, w.data(), wrow, kRows, kCols, packed.data());
                std::vector<int32_t> sums(kCols / 32);
                for (int j = 0; j < kActs; ++j) {
                    act_block_sums(at, &a[j * arow], kCols, sums.data());
                    float out[kRows];
                    k->vec_dot8[ti](kCols, packed.data(), &a[j * arow], sums.data(), out);
                    if (k == &G) digest.bytes(out, sizeof out);
                    for (int r = 0; r < kRows; ++r) {
                        const float d = k->vec_dot[ti](kCols, &w[r * wrow], &a[j * arow]);
                        check(std::fabs(out[r] - d) <= kTol * std::fabs(d) + 1e-6f,
                              fmt("%s vec_dot8 (%s) row %d act %d: %.9g, vec_dot %.9g", tr->name, isa, r, j, out[r],
                                  d));
                    }
                }
            }
        }
    }
    std::printf("%-7s dequantize%s%s\n", tr->name,
                n_dot ? fmt(", dot product (%d rows x activations)", n_dot / (int)lv.tables.size()).c_str() : "",
                g_failed == before ? ": ok" : ": FAILED");
}

}  // namespace

int main(int argc, char** argv) {
    Rng rng{argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 20240611ull};
    const Levels lv = levels();
    std::printf("kernel self-test: levels %s, %" PRId64 " values per row\n", lv.names.c_str(), kCols);
    Digest digest;
    for (const Format& f : formats()) test_format(f, lv, rng, digest);
    std::printf("%d passed, %d failed\n", g_passed, g_failed);
    std::printf("digest %016" PRIx64 "\n", digest.h);
    return g_failed ? 1 : 0;
}
