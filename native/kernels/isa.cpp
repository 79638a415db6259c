// Run-time selection of the kernel table by CPUID.
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "kernels.h"

namespace pyllama {

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::Generic: return "generic";
        case Isa::Avx2: return "avx2";
        case Isa::Avx512: return "avx512";
    }
    return "?";
}

Isa best_supported_isa() {
#if defined(__x86_64__) || defined(_M_X64)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
        __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        return Isa::Avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        return Isa::Avx2;
#endif
    return Isa::Generic;
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
    if (isa >= Isa::Avx2) fill_avx2(t);
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
