// Parser of the GGUF container: header, metadata and tensor table, read from
// a memory-mapped file without copying tensor data. Every read is bounds
// checked; malformed input throws GgufError with a message naming the problem.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace pyllama {

struct GgufError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

enum GgufValueType : uint32_t {
    GGUF_UINT8 = 0, GGUF_INT8 = 1, GGUF_UINT16 = 2, GGUF_INT16 = 3, GGUF_UINT32 = 4,
    GGUF_INT32 = 5, GGUF_FLOAT32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9,
    GGUF_UINT64 = 10, GGUF_INT64 = 11, GGUF_FLOAT64 = 12,
};

// Bytes of one scalar of a fixed-size value type, 0 for strings/arrays/unknown.
size_t gguf_scalar_size(uint32_t type);

struct GgufKV {
    std::string key;
    uint32_t type = 0;        // GgufValueType
    uint32_t elem_type = 0;   // arrays: element type
    uint64_t count = 0;       // arrays: number of elements
    size_t offset = 0;        // scalars and numeric arrays: first byte of the value
    // strings and string arrays: (offset, length) of each string's bytes
    std::vector<std::pair<size_t, size_t>> strings;
};

struct GgufTensorInfo {
    std::string name;
    std::vector<int64_t> ne;  // ggml order: ne[0] is the row length
    uint32_t type = 0;        // GgmlType
    uint64_t offset = 0;      // relative to the data section
    size_t nbytes = 0;
};

struct GgufHeader {
    uint32_t version = 0;
    size_t alignment = 32;
    size_t data_offset = 0;   // absolute offset of the tensor data section
    std::vector<GgufKV> kvs;
    std::vector<GgufTensorInfo> tensors;
};

GgufHeader parse_gguf(const uint8_t* data, size_t size);

}  // namespace pyllama
