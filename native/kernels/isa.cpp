// Run-time selection of the kernel table by CPUID.
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "kernels.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace pyllama {

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::Generic: return "generic";
        case Isa::Avx2: return "avx2";
        case Isa::Avx512: return "avx512";
    }
    return "?";
}

#if defined(__x86_64__)
namespace {

// The x86 level from CPUID itself, the same on GCC and Clang (Linux, macOS),
// with no dependence on a compiler runtime's CPU model (__builtin_cpu_supports)
// or on which feature names a compiler version knows: an extension counts when
// the CPU has it and the OS saves its registers (XCR0), else it would fault.
// (macOS enables the AVX-512 state lazily, so Macs with AVX-512 run avx2.)
Isa x86_best_isa() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return Isa::Generic;
    const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28), f16c = c & (1u << 29);
    if (!osxsave || !avx || __get_cpuid_max(0, nullptr) < 7) return Isa::Generic;
    unsigned xcr0_lo = 0, xcr0_hi = 0;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    const bool ymm_state = (xcr0_lo & 0x06) == 0x06;  // SSE + AVX registers
    const bool zmm_state = (xcr0_lo & 0xe6) == 0xe6;  // ... + opmask, ZMM0-15 upper halves, ZMM16-31
    __cpuid_count(7, 0, a, b, c, d);
    const bool avx2 = b & (1u << 5);
    const bool avx512 = (b & (1u << 16)) && (b & (1u << 17)) && (b & (1u << 30)) && (b & (1u << 31)) &&  // F DQ BW VL
                        (c & (1u << 11));                                                            // VNNI
    if (!ymm_state || !avx2 || !fma || !f16c) return Isa::Generic;
    return avx512 && zmm_state ? Isa::Avx512 : Isa::Avx2;
}

}  // namespace
#endif

Isa best_supported_isa() {
#if defined(__x86_64__)
    static const Isa best = x86_best_isa();
    return best;
#else
    return Isa::Generic;
#endif
}

namespace {

uint64_t read_words_generic(const uint64_t* p, size_t n) {
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += p[i];
        s1 += p[i + 1];
        s2 += p[i + 2];
        s3 += p[i + 3];
    }
    for (; i < n; ++i) s0 += p[i];
    return s0 + s1 + s2 + s3;
}

KernelTable build(Isa isa) {
    KernelTable t;
    t.isa = isa;
    fill_dequantize_generic(t);
    fill_quantize_generic(t);
    fill_quantize_store(t);
    fill_vec_dot_generic(t);
    t.read_words = read_words_generic;
#if defined(PYLLAMA_X86)
    if (isa >= Isa::Avx2) {
        fill_avx2(t);
        fill_gemm_avx2(t);
        fill_ops_avx2(t);
    }
    if (isa >= Isa::Avx512) fill_avx512(t);
#endif
    return t;
}

Isa cap_from_env() {
    const char* v = std::getenv("PYLLAMA_ISA");
    const Isa best = best_supported_isa();
    if (!v || !*v) return best;
    Isa want = best;
    if (!std::strcmp(v, "generic")) want = Isa::Generic;
    else if (!std::strcmp(v, "avx2")) want = Isa::Avx2;
    else if (!std::strcmp(v, "avx512")) want = Isa::Avx512;
    return want < best ? want : best;
}

}  // namespace

const KernelTable& kernels_for(Isa isa) {
    static const KernelTable generic = build(Isa::Generic);
#if defined(PYLLAMA_X86)
    static const KernelTable avx2 = build(best_supported_isa() >= Isa::Avx2 ? Isa::Avx2 : Isa::Generic);
    static const KernelTable avx512 = build(best_supported_isa());
    if (isa >= Isa::Avx512) return avx512;
    if (isa >= Isa::Avx2) return avx2;
#endif
    (void)isa;
    return generic;
}

Isa active_isa() {
    static const Isa isa = cap_from_env();
    return isa;
}

const KernelTable& kernels() { return kernels_for(active_isa()); }

}  // namespace pyllama
