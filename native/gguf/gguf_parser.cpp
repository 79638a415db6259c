#include "gguf_parser.h"

#include <cstring>
#include <limits>
#include <unordered_set>

#include "../kernels/block_formats.h"

namespace pyllama {

size_t gguf_scalar_size(uint32_t type) {
    switch (type) {
        case GGUF_UINT8: case GGUF_INT8: case GGUF_BOOL: return 1;
        case GGUF_UINT16: case GGUF_INT16: return 2;
        case GGUF_UINT32: case GGUF_INT32: case GGUF_FLOAT32: return 4;
        case GGUF_UINT64: case GGUF_INT64: case GGUF_FLOAT64: return 8;
        default: return 0;
    }
}

namespace {

constexpr int kMaxDims = 4;  // GGML_MAX_DIMS

class Reader {
   public:
    Reader(const uint8_t* d, size_t n) : d_(d), n_(n) {}
    size_t pos() const { return p_; }
    size_t remaining() const { return n_ - p_; }

    template <typename T>
    T read(const char* what) {
        need(sizeof(T), what);
        T v;
        std::memcpy(&v, d_ + p_, sizeof(T));
        p_ += sizeof(T);
        return v;
    }
    // A GGUF string: uint64 length then bytes. Returns (offset, length).
    std::pair<size_t, size_t> string_ref(const char* what) {
        const uint64_t len = read<uint64_t>(what);
        if (len > remaining())
            throw GgufError(std::string("truncated file: ") + what + " has length " + std::to_string(len) +
                            " but only " + std::to_string(remaining()) + " bytes remain");
        const size_t off = p_;
        p_ += len;
        return {off, (size_t)len};
    }
    std::string string(const char* what) {
        auto r = string_ref(what);
        return std::string(reinterpret_cast<const char*>(d_ + r.first), r.second);
    }
    void skip(uint64_t bytes, const char* what) {
        need(bytes, what);
        p_ += bytes;
    }

   private:
    void need(uint64_t bytes, const char* what) const {
        if (bytes > remaining())
            throw GgufError(std::string("truncated file while reading ") + what + " at byte " + std::to_string(p_));
    }
    const uint8_t* d_;
    size_t n_;
    size_t p_ = 0;
};

// Names in error messages: printable ASCII kept, every other byte as \xNN.
std::string shown(const std::string& name) {
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned char c : name.substr(0, 200)) {
        if (c >= 0x20 && c < 0x7f) {
            out += (char)c;
        } else {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

const char* type_name(uint32_t t) {
    static const char* names[] = {"uint8", "int8",  "uint16", "int16",  "uint32", "int32", "float32",
                                  "bool",  "string", "array", "uint64", "int64",  "float64"};
    return t <= GGUF_FLOAT64 ? names[t] : "unknown";
}

void read_value(Reader& r, GgufKV& kv) {
    const std::string ctx = "value of '" + shown(kv.key) + "'";
    if (kv.type == GGUF_STRING) {
        kv.strings.push_back(r.string_ref(ctx.c_str()));
        return;
    }
    if (kv.type == GGUF_ARRAY) {
        kv.elem_type = r.read<uint32_t>(ctx.c_str());
        kv.count = r.read<uint64_t>(ctx.c_str());
        if (kv.elem_type == GGUF_ARRAY)
            throw GgufError("metadata key '" + shown(kv.key) + "' is a nested array, which is not supported");
        if (kv.elem_type == GGUF_STRING) {
            // each string needs at least its 8-byte length
            if (kv.count > r.remaining() / 8)
                throw GgufError("truncated file: string array '" + shown(kv.key) + "' claims " + std::to_string(kv.count) +
                                " elements");
            kv.strings.reserve(kv.count);
            for (uint64_t i = 0; i < kv.count; ++i) kv.strings.push_back(r.string_ref(ctx.c_str()));
            return;
        }
        const size_t es = gguf_scalar_size(kv.elem_type);
        if (es == 0)
            throw GgufError("metadata key '" + shown(kv.key) + "' has an array of unknown type " +
                            std::to_string(kv.elem_type));
        if (kv.count > r.remaining() / es)
            throw GgufError("truncated file: array '" + shown(kv.key) + "' claims " + std::to_string(kv.count) + " " +
                            type_name(kv.elem_type) + " elements past the end of the file");
        kv.offset = r.pos();
        r.skip(kv.count * es, ctx.c_str());
        return;
    }
    const size_t es = gguf_scalar_size(kv.type);
    if (es == 0) throw GgufError("metadata key '" + shown(kv.key) + "' has unknown value type " + std::to_string(kv.type));
    kv.offset = r.pos();
    r.skip(es, ctx.c_str());
}

}  // namespace

GgufHeader parse_gguf(const uint8_t* data, size_t size) {
    Reader r(data, size);
    GgufHeader h;
    if (size < 4 || std::memcmp(data, "GGUF", 4) != 0) throw GgufError("bad magic: not a GGUF file");
    r.skip(4, "magic");
    h.version = r.read<uint32_t>("version");
    if (h.version == 1) throw GgufError("unsupported GGUF version 1 (re-convert the model)");
    if (h.version < 2 || h.version > 3) throw GgufError("unsupported GGUF version " + std::to_string(h.version));
    const uint64_t n_tensors = r.read<uint64_t>("tensor count");
    const uint64_t n_kv = r.read<uint64_t>("metadata count");
    // Each metadata entry takes >= 12 bytes, each tensor info >= 24.
    if (n_kv > r.remaining() / 12) throw GgufError("truncated file: metadata count " + std::to_string(n_kv) + " is too large");
    if (n_tensors > r.remaining() / 24)
        throw GgufError("truncated file: tensor count " + std::to_string(n_tensors) + " is too large");

    h.kvs.reserve(n_kv);
    std::unordered_set<std::string> keys;
    for (uint64_t i = 0; i < n_kv; ++i) {
        GgufKV kv;
        kv.key = r.string("metadata key");
        if (!keys.insert(kv.key).second) throw GgufError("duplicate metadata key '" + shown(kv.key) + "'");
        kv.type = r.read<uint32_t>("metadata type");
        read_value(r, kv);
        if (kv.key == "general.alignment") {
            if (kv.type != GGUF_UINT32) throw GgufError("general.alignment must be uint32");
            uint32_t a;
            std::memcpy(&a, data + kv.offset, 4);
            if (a == 0 || (a & (a - 1)) != 0)
                throw GgufError("general.alignment " + std::to_string(a) + " is not a power of two");
            h.alignment = a;
        }
        h.kvs.push_back(std::move(kv));
    }

    h.tensors.reserve(n_tensors);
    std::unordered_set<std::string> names;
    for (uint64_t i = 0; i < n_tensors; ++i) {
        GgufTensorInfo t;
        t.name = r.string("tensor name");
        if (!names.insert(t.name).second) throw GgufError("duplicate tensor name '" + shown(t.name) + "'");
        const uint32_t n_dims = r.read<uint32_t>("tensor dimensions");
        if (n_dims == 0 || n_dims > kMaxDims)
            throw GgufError("tensor '" + shown(t.name) + "' has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
        int64_t n_elems = 1;
        for (uint32_t d = 0; d < n_dims; ++d) {
            const uint64_t ne = r.read<uint64_t>("tensor shape");
            if (ne == 0 || ne > (uint64_t)std::numeric_limits<int64_t>::max() ||
                (int64_t)ne > std::numeric_limits<int64_t>::max() / n_elems)
                throw GgufError("tensor '" + shown(t.name) + "' has an invalid or overflowing shape");
            n_elems *= (int64_t)ne;
            t.ne.push_back((int64_t)ne);
        }
        t.type = r.read<uint32_t>("tensor type");
        const TypeTraits* tr = type_traits(t.type);
        if (!tr || t.type == static_cast<uint32_t>(GgmlType::Q8_1) || t.type == static_cast<uint32_t>(GgmlType::Q8_K))
            throw GgufError("tensor '" + shown(t.name) + "' has unsupported type " + std::to_string(t.type));
        if (t.ne[0] % tr->block_size != 0)
            throw GgufError("tensor '" + shown(t.name) + "' row length " + std::to_string(t.ne[0]) +
                            " is not a multiple of the " + tr->name + " block size");
        const uint64_t n_blocks = (uint64_t)n_elems / tr->block_size;
        if (n_blocks > std::numeric_limits<uint64_t>::max() / tr->type_size)
            throw GgufError("tensor '" + shown(t.name) + "' is too large");
        t.nbytes = n_blocks * tr->type_size;
        t.offset = r.read<uint64_t>("tensor offset");
        if (t.offset % h.alignment != 0)
            throw GgufError("tensor '" + shown(t.name) + "' offset " + std::to_string(t.offset) + " is not aligned to " +
                            std::to_string(h.alignment));
        h.tensors.push_back(std::move(t));
    }

    const size_t pad = (h.alignment - r.pos() % h.alignment) % h.alignment;
    h.data_offset = r.pos() + pad;
    if (!h.tensors.empty() && h.data_offset > size) throw GgufError("truncated file: no tensor data section");
    const size_t data_size = size >= h.data_offset ? size - h.data_offset : 0;
    for (const auto& t : h.tensors) {
        if (t.offset > data_size || t.nbytes > data_size - t.offset)
            throw GgufError("tensor '" + shown(t.name) + "' data (offset " + std::to_string(t.offset) + ", " +
                            std::to_string(t.nbytes) + " bytes) runs past the end of the file (truncated?)");
    }
    return h;
}

}  // namespace pyllama
