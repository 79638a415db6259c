// The GGUF header parser on arbitrary bytes: it may throw GgufError, nothing else,
// and what it returns must lie inside the buffer.
#include <cstdint>
#include <cstdlib>

#include "gguf/gguf_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const pyllama::GgufHeader h = pyllama::parse_gguf(data, size);
        for (const auto& kv : h.kvs) {
            for (const auto& s : kv.strings)
                if (s.first > size || s.second > size - s.first) std::abort();
            if (kv.type != pyllama::GGUF_STRING && kv.elem_type != pyllama::GGUF_STRING) {
                const size_t n = pyllama::gguf_scalar_size(kv.type == pyllama::GGUF_ARRAY ? kv.elem_type : kv.type);
                const uint64_t count = kv.type == pyllama::GGUF_ARRAY ? kv.count : 1;
                if (n && (kv.offset > size || count > (size - kv.offset) / n)) std::abort();
            }
        }
        if (h.data_offset > size + h.alignment) std::abort();
    } catch (const pyllama::GgufError&) {
    }
    return 0;
}
