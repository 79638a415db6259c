// Type traits and run-time selection of the kernel table by CPUID.
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "kernels.h"

namespace pyllama {

const TypeTraits* type_traits(uint32_t type) {
    static const TypeTraits f32{"f32", 1, 4, GgmlType::F32};
    static const TypeTraits f16{"f16", 1, 2, GgmlType::F16};
    static const TypeTraits bf16{"bf16", 1, 2, GgmlType::BF16};
    static const TypeTraits q4_0{"q4_0", QK4_0, sizeof(block_q4_0), GgmlType::Q8_0};
    static const TypeTraits q4_1{"q4_1", QK4_1, sizeof(block_q4_1), GgmlType::Q8_1};
    static const TypeTraits q5_0{"q5_0", QK5_0, sizeof(block_q5_0), GgmlType::Q8_0};
    static const TypeTraits q5_1{"q5_1", QK5_1, sizeof(block_q5_1), GgmlType::Q8_1};
    static const TypeTraits q8_0{"q8_0", QK8_0, sizeof(block_q8_0), GgmlType::Q8_0};
    static const TypeTraits q8_1{"q8_1", QK8_1, sizeof(block_q8_1), GgmlType::Q8_1};
    static const TypeTraits iq4_nl{"iq4_nl", QK4_NL, sizeof(block_iq4_nl), GgmlType::Q8_0};
    static const TypeTraits q2_K{"q2_K", QK_K, sizeof(block_q2_K), GgmlType::Q8_K};
    static const TypeTraits q3_K{"q3_K", QK_K, sizeof(block_q3_K), GgmlType::Q8_K};
    static const TypeTraits q4_K{"q4_K", QK_K, sizeof(block_q4_K), GgmlType::Q8_K};
    static const TypeTraits q5_K{"q5_K", QK_K, sizeof(block_q5_K), GgmlType::Q8_K};
    static const TypeTraits q6_K{"q6_K", QK_K, sizeof(block_q6_K), GgmlType::Q8_K};
    static const TypeTraits q8_K{"q8_K", QK_K, sizeof(block_q8_K), GgmlType::Q8_K};
    switch (static_cast<GgmlType>(type)) {
        case GgmlType::F32: return &f32;
        case GgmlType::F16: return &f16;
        case GgmlType::BF16: return &bf16;
        case GgmlType::Q4_0: return &q4_0;
        case GgmlType::Q4_1: return &q4_1;
        case GgmlType::Q5_0: return &q5_0;
        case GgmlType::Q5_1: return &q5_1;
        case GgmlType::Q8_0: return &q8_0;
        case GgmlType::Q8_1: return &q8_1;
        case GgmlType::IQ4_NL: return &iq4_nl;
        case GgmlType::Q2_K: return &q2_K;
        case GgmlType::Q3_K: return &q3_K;
        case GgmlType::Q4_K: return &q4_K;
        case GgmlType::Q5_K: return &q5_K;
        case GgmlType::Q6_K: return &q6_K;
        case GgmlType::Q8_K: return &q8_K;
    }
    return nullptr;
}

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
