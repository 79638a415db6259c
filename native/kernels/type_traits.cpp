// Block size, bytes per block and the activation format of every GGML type
// (apart from isa.cpp, so the GGUF parser's fuzz target links without the kernels).
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

}  // namespace pyllama
