// Block size, bytes per block and the activation format of every GGML type
// (apart from isa.cpp, so the GGUF parser's fuzz target links without the kernels).
#include <array>

#include "kernels.h"

namespace pyllama {

namespace {

template <typename T>
struct Element {  // the float formats: one value per "block"
    using Block = T;
    static constexpr int values = 1;
};

}  // namespace

const TypeTraits* type_traits(uint32_t type) {
    static const std::array<TypeTraits, kMaxType> table = [] {
        std::array<TypeTraits, kMaxType> t{};  // name nullptr: unknown type
        auto add = [&](GgmlType ty, const char* name, GgmlType vec_dot_type, auto tag) {
            using Tag = decltype(tag);
            t[static_cast<int>(ty)] = TypeTraits{name, Tag::values, sizeof(typename Tag::Block), vec_dot_type};
        };
        add(GgmlType::F32, "f32", GgmlType::F32, Element<float>{});
        add(GgmlType::F16, "f16", GgmlType::F16, Element<fp16_t>{});
        add(GgmlType::BF16, "bf16", GgmlType::BF16, Element<bf16_t>{});
        for_each_block_format(add);
        return t;
    }();
    return type < table.size() && table[type].name ? &table[type] : nullptr;
}

}  // namespace pyllama
