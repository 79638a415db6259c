// Block-format kernels: dequantize, activation quantization, dot products,
// matmul and row lookup, each selectable per ISA level for testing.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "bindings.h"
#include "../kernels/kernels.h"
#include "../kernels/matmul.h"
#include "../kernels/repack.h"
#include "../kernels/threadpool.h"

using namespace pyllama;

namespace {

Isa parse_isa(const std::optional<std::string>& name) {
    if (!name) return active_isa();
    if (*name == "generic") return Isa::Generic;
    if (*name == "avx2") return Isa::Avx2;
    if (*name == "avx512") return Isa::Avx512;
    throw py::value_error("unknown ISA level '" + *name + "' (generic, avx2, avx512)");
}

const KernelTable& table(const std::optional<std::string>& isa) {
    const Isa want = parse_isa(isa);
    if (want > best_supported_isa())
        throw py::value_error(std::string("this CPU does not support ") + isa_name(want));
    return kernels_for(want);
}

const TypeTraits& traits(uint32_t type) {
    const TypeTraits* tr = type_traits(type);
    if (!tr) throw py::value_error("unknown ggml type " + std::to_string(type));
    return *tr;
}

// Pointer and byte size of any buffer (bytes, numpy view, mmap).
std::pair<const uint8_t*, size_t> bytes_of(const py::buffer& b) {
    py::buffer_info info = b.request();
    return {static_cast<const uint8_t*>(info.ptr), (size_t)info.size * (size_t)info.itemsize};
}

void check_blocks(const TypeTraits& tr, int64_t n) {
    if (n < 0 || n % tr.block_size != 0)
        throw py::value_error(std::to_string(n) + " elements is not a multiple of the " + tr.name + " block size");
}

WeightView weight_view(const py::buffer& w, uint32_t type, int64_t n_rows, int64_t n_cols) {
    const TypeTraits& tr = traits(type);
    check_blocks(tr, n_cols);
    auto [ptr, size] = bytes_of(w);
    const size_t row = tr.type_size * (size_t)(n_cols / tr.block_size);
    if (n_rows < 0 || size < row * (size_t)n_rows)
        throw py::value_error("weight buffer holds " + std::to_string(size) + " bytes, need " +
                              std::to_string(row * (size_t)n_rows));
    return WeightView{ptr, static_cast<GgmlType>(type), n_rows, n_cols, row};
}

py::array_t<float> dequantize(const py::buffer& src, uint32_t type, int64_t n, const std::optional<std::string>& isa) {
    const TypeTraits& tr = traits(type);
    check_blocks(tr, n);
    auto [ptr, size] = bytes_of(src);
    if (size < tr.type_size * (size_t)(n / tr.block_size)) throw py::value_error("source buffer too small");
    const KernelTable& kt = table(isa);
    if (!kt.dequantize[type]) throw py::value_error(std::string("no dequantize for ") + tr.name);
    py::array_t<float> out(n);
    float* dst = out.mutable_data();
    {
        py::gil_scoped_release release;
        kt.dequantize[type](ptr, dst, n);
    }
    return out;
}

py::array_t<uint8_t> quantize(FloatArray x, uint32_t type, const std::optional<std::string>& isa) {
    const TypeTraits& tr = traits(type);
    const KernelTable& kt = table(isa);
    if (!kt.quantize[type]) throw py::value_error(std::string("no activation quantizer for ") + tr.name);
    const int64_t n = x.size();
    check_blocks(tr, n);
    py::array_t<uint8_t> out((py::ssize_t)(tr.type_size * (size_t)(n / tr.block_size)));
    {
        py::gil_scoped_release release;
        kt.quantize[type](x.data(), out.mutable_data(), n);
    }
    return out;
}

float vec_dot(uint32_t type, int64_t n, const py::buffer& w, const py::buffer& a, const std::optional<std::string>& isa) {
    const TypeTraits& tr = traits(type);
    check_blocks(tr, n);
    const TypeTraits& at = traits(static_cast<uint32_t>(tr.vec_dot_type));
    auto [wp, ws] = bytes_of(w);
    auto [ap, as] = bytes_of(a);
    if (ws < tr.type_size * (size_t)(n / tr.block_size) || as < at.type_size * (size_t)(n / at.block_size))
        throw py::value_error("buffer too small for vec_dot");
    const KernelTable& kt = table(isa);
    if (!kt.vec_dot[type]) throw py::value_error(std::string("no dot product for ") + tr.name);
    return kt.vec_dot[type](n, wp, ap);
}

// The packed copy of a weight matrix, or None when its type has no packed layout.
py::object pack_rows_py(const py::buffer& w, uint32_t type, int64_t n_rows, int64_t n_cols) {
    const WeightView wv = weight_view(w, type, n_rows, n_cols);
    const size_t bytes = packed_bytes(wv.type, n_rows, n_cols);
    if (bytes == 0) return py::none();
    py::array_t<uint8_t> out((py::ssize_t)bytes);
    uint8_t* dst = out.mutable_data();
    {
        py::gil_scoped_release release;
        pack_rows(wv.type, wv.data, wv.row_stride, n_rows, n_cols, dst);
    }
    return std::move(out);
}

py::array_t<float> matmul_py(const py::buffer& w, uint32_t type, int64_t n_rows, int64_t n_cols, FloatArray x,
                             const std::optional<py::buffer>& packed, const std::optional<std::string>& isa) {
    WeightView wv = weight_view(w, type, n_rows, n_cols);
    if (packed) {
        auto [pp, ps] = bytes_of(*packed);
        const size_t need = packed_bytes(wv.type, n_rows, n_cols);
        if (need == 0 || ps != need)
            throw py::value_error("packed buffer holds " + std::to_string(ps) + " bytes, expected " +
                                  std::to_string(need));
        wv.packed = pp;
    }
    if (!type_traits(type) || !table(isa).vec_dot[type]) throw py::value_error("no dot product for this type");
    if (x.ndim() != 2 || x.shape(1) != n_cols) throw py::value_error("x must be (M, K) with K = n_cols");
    const int64_t m = x.shape(0);
    const KernelTable& kt = table(isa);
    py::array_t<float> y({(py::ssize_t)m, (py::ssize_t)n_rows});
    float* yp = y.mutable_data();
    const float* xp = x.data();
    {
        py::gil_scoped_release release;
        matmul(wv, xp, m, n_cols, yp, n_rows, default_pool(), kt);
    }
    return y;
}

py::array_t<float> get_rows_py(const py::buffer& w, uint32_t type, int64_t n_rows, int64_t n_cols, IntArray ids) {
    const WeightView wv = weight_view(w, type, n_rows, n_cols);
    const int32_t* ip = ids.data();
    for (py::ssize_t i = 0; i < ids.size(); ++i)
        if (ip[i] < 0 || ip[i] >= n_rows) throw py::index_error("row id " + std::to_string(ip[i]) + " out of range");
    py::array_t<float> out({(py::ssize_t)ids.size(), (py::ssize_t)n_cols});
    float* op = out.mutable_data();
    {
        py::gil_scoped_release release;
        get_rows(wv, ip, ids.size(), op, kernels());
    }
    return out;
}

// Reads every byte of a buffer on the thread pool (the benchmark's bandwidth probe).
uint64_t read_probe(const py::buffer& b) {
    auto [ptr, size] = bytes_of(b);
    const uint64_t* words = reinterpret_cast<const uint64_t*>(ptr);
    const size_t n = size / 8;
    std::vector<uint64_t> partial(default_pool().n_threads() * 8, 0);
    const ReadWordsFn read = kernels().read_words;
    {
        py::gil_scoped_release release;
        default_pool().run([&](int ith, int nth) {
            const size_t chunk = (n + nth - 1) / nth;
            const size_t i0 = std::min(n, chunk * ith), i1 = std::min(n, i0 + chunk);
            partial[ith * 8] = read(words + i0, i1 - i0);
        });
    }
    uint64_t total = 0;
    for (uint64_t v : partial) total += v;
    return total;
}

}  // namespace

void register_kernels(py::module_& m) {
    m.def("best_isa", [] { return std::string(isa_name(best_supported_isa())); },
          "Best ISA level this CPU supports: generic, avx2 or avx512.");
    m.def("active_isa", [] { return std::string(isa_name(active_isa())); },
          "ISA level in use (best supported, capped by PYLLAMA_ISA).");
    m.def("set_num_threads", &set_default_threads, py::arg("n"),
          "Resize the compute thread pool (n <= 0: one per hardware thread).");
    m.def("num_threads", [] { return default_pool().n_threads(); });
    m.def("read_probe", &read_probe, py::arg("buffer"),
          "Sum a buffer's 64-bit words on the thread pool: a memory read-bandwidth probe.");
    m.def("type_info", [](uint32_t type) {
        const TypeTraits& tr = traits(type);
        return py::make_tuple(std::string(tr.name), tr.block_size, tr.type_size, static_cast<uint32_t>(tr.vec_dot_type));
    }, py::arg("type"), "(name, block_size, type_size, vec_dot_type) of a ggml type.");
    m.def("dequantize", &dequantize, py::arg("src"), py::arg("type"), py::arg("n"), py::kw_only(),
          py::arg("isa") = py::none(), "Dequantize n elements of a block-format buffer to float32.");
    m.def("quantize", &quantize, py::arg("x"), py::arg("type"), py::kw_only(), py::arg("isa") = py::none(),
          "Quantize floats to an activation format (q8_0, q8_1, q8_K, f16, bf16, f32) or a KV cache format "
          "(q4_0, q4_1, q5_0, q5_1, iq4_nl).");
    m.def("vec_dot", &vec_dot, py::arg("type"), py::arg("n"), py::arg("w"), py::arg("a"), py::kw_only(),
          py::arg("isa") = py::none(),
          "Dot product of a weight row (type) with an activation row in its vec_dot_type.");
    m.def("matmul", &matmul_py, py::arg("w"), py::arg("type"), py::arg("n_rows"), py::arg("n_cols"), py::arg("x"),
          py::kw_only(), py::arg("packed") = py::none(), py::arg("isa") = py::none(),
          "Y[M,N] = X[M,K] . W[N,K]^T on the thread pool; W stays in its block format.\n"
          "packed: the result of pack_rows(W, ...); its row groups are read instead of W's rows.");
    m.def("pack_rows", &pack_rows_py, py::arg("w"), py::arg("type"), py::arg("n_rows"), py::arg("n_cols"),
          "Row-interleaved copy of W (groups of 8 rows) for the packed matvec kernels, or None\n"
          "when the type has no packed layout.");
    m.def("get_rows", &get_rows_py, py::arg("w"), py::arg("type"), py::arg("n_rows"), py::arg("n_cols"), py::arg("ids"),
          "Dequantize the rows `ids` of a block-format table.");
}
