// Transformer ops on float32 numpy arrays; each returns a new array.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>

#include "bindings.h"
#include "../kernels/attention.h"
#include "../kernels/ops.h"
#include "../kv_cache.h"
#include "../kernels/threadpool.h"

using namespace pyllama;

namespace {

py::array_t<float> like(const FloatArray& x) {
    std::vector<py::ssize_t> shape(x.shape(), x.shape() + x.ndim());
    return py::array_t<float>(shape);
}

int64_t last_dim(const FloatArray& x) {
    if (x.ndim() < 1) throw py::value_error("expected at least a 1-d array");
    return x.shape(x.ndim() - 1);
}

const float* opt_vec(const std::optional<FloatArray>& w, int64_t n, const char* what) {
    if (!w) return nullptr;
    if (w->size() != n) throw py::value_error(std::string(what) + " must have the length of the last dimension");
    return w->data();
}

using Unary = void (*)(const float*, float*, int64_t);
using Binary = void (*)(const float*, const float*, float*, int64_t);

py::array_t<float> unary(FloatArray x, Unary f) {
    auto y = like(x);
    float* yp = y.mutable_data();
    py::gil_scoped_release r;
    f(x.data(), yp, x.size());
    return y;
}

py::array_t<float> binary(FloatArray a, FloatArray b, Binary f) {
    if (a.size() != b.size()) throw py::value_error("operands must have the same number of elements");
    auto y = like(a);
    float* yp = y.mutable_data();
    py::gil_scoped_release r;
    f(a.data(), b.data(), yp, a.size());
    return y;
}

}  // namespace

void register_ops(py::module_& m) {
    m.def("rms_norm", [](FloatArray x, std::optional<FloatArray> w, float eps) {
        const int64_t n = last_dim(x);
        const float* wp = opt_vec(w, n, "weight");
        auto y = like(x);
        float* yp = y.mutable_data();
        py::gil_scoped_release r;
        rms_norm(x.data(), wp, yp, n ? x.size() / n : 0, n, eps);
        return y;
    }, py::arg("x"), py::arg("weight") = py::none(), py::kw_only(), py::arg("eps") = 1e-6f,
       "Row-wise RMSNorm over the last dimension, optionally times weight.");
    m.def("layer_norm", [](FloatArray x, std::optional<FloatArray> w, std::optional<FloatArray> b, float eps) {
        const int64_t n = last_dim(x);
        const float* wp = opt_vec(w, n, "weight");
        const float* bp = opt_vec(b, n, "bias");
        auto y = like(x);
        float* yp = y.mutable_data();
        py::gil_scoped_release r;
        layer_norm(x.data(), wp, bp, yp, n ? x.size() / n : 0, n, eps);
        return y;
    }, py::arg("x"), py::arg("weight") = py::none(), py::arg("bias") = py::none(), py::kw_only(),
       py::arg("eps") = 1e-5f, "Row-wise LayerNorm over the last dimension.");
    m.def("rope", [](FloatArray x, IntArray pos, int64_t n_rot, float freq_base, float freq_scale, bool neox) {
        if (x.ndim() != 3) throw py::value_error("x must be (n_tokens, n_head, head_dim)");
        const int64_t nt = x.shape(0), nh = x.shape(1), hd = x.shape(2);
        if (pos.size() != nt) throw py::value_error("pos must have one entry per token");
        if (n_rot <= 0) n_rot = hd;
        if (n_rot > hd || n_rot % 2) throw py::value_error("n_rot must be even and <= head_dim");
        py::array_t<float> y({nt, nh, hd});
        float* yp = y.mutable_data();
        std::memcpy(yp, x.data(), sizeof(float) * x.size());
        py::gil_scoped_release r;
        rope(yp, pos.data(), nt, nh, hd, n_rot, freq_base, freq_scale, neox);
        return y;
    }, py::arg("x"), py::arg("pos"), py::kw_only(), py::arg("n_rot") = 0, py::arg("freq_base") = 10000.0f,
       py::arg("freq_scale") = 1.0f, py::arg("neox") = false,
       "Rotary position embedding; neox pairs (i, i+n_rot/2), normal pairs (2i, 2i+1).");
    m.def("softmax", [](FloatArray x, float scale, float softcap) {
        const int64_t n = last_dim(x);
        auto y = like(x);
        float* yp = y.mutable_data();
        py::gil_scoped_release r;
        softmax(x.data(), yp, n ? x.size() / n : 0, n, scale, softcap);
        return y;
    }, py::arg("x"), py::kw_only(), py::arg("scale") = 1.0f, py::arg("softcap") = 0.0f,
       "Row softmax of x*scale, soft-capped as cap*tanh(v/cap) when softcap > 0.");
    m.def("silu", [](FloatArray x) { return unary(x, silu); });
    m.def("gelu_tanh", [](FloatArray x) { return unary(x, gelu_tanh); });
    m.def("gelu_erf", [](FloatArray x) { return unary(x, gelu_erf); });
    m.def("swiglu", [](FloatArray g, FloatArray u) { return binary(g, u, swiglu); }, "silu(gate) * up");
    m.def("geglu", [](FloatArray g, FloatArray u) { return binary(g, u, geglu); }, "gelu_tanh(gate) * up");
    m.def("gelu_ggml", [](FloatArray x) { return unary(x, gelu_ggml); }, "GELU-tanh through ggml's F16 table");
    m.def("geglu_ggml", [](FloatArray g, FloatArray u) { return binary(g, u, geglu_ggml); },
          "gelu_ggml(gate) * up");
    m.def("add", [](FloatArray a, FloatArray b) { return binary(a, b, add); });
    m.def("mul", [](FloatArray a, FloatArray b) { return binary(a, b, mul); });
    m.def("scale", [](FloatArray a, float s) {
        auto y = like(a);
        float* yp = y.mutable_data();
        py::gil_scoped_release r;
        scale(a.data(), s, yp, a.size());
        return y;
    });
    m.def("attention", [](FloatArray q, CArray<uint16_t> k, CArray<uint16_t> v, IntArray q_pos, IntArray q_seq,
                          IntArray kv_pos, SeqArray kv_seq, float scale, float softcap, int32_t window) {
        if (q.ndim() != 3 || k.ndim() != 3 || v.ndim() != 3) throw py::value_error("q, k, v must be 3-d");
        if (k.shape(2) != q.shape(2) || v.shape(0) != k.shape(0) || v.shape(1) != k.shape(1) || v.shape(2) != q.shape(2))
            throw py::value_error("k and v must be (n_kv, n_head_kv, head_dim)");
        if (k.shape(1) <= 0 || q.shape(1) % k.shape(1)) throw py::value_error("n_head must be a multiple of n_head_kv");
        if (q_pos.size() != q.shape(0) || q_seq.size() != q.shape(0) || kv_pos.size() != k.shape(0) ||
            kv_seq.size() != k.shape(0))
            throw py::value_error("position/sequence arrays do not match q or k");
        for (py::ssize_t i = 0; i < q_seq.size(); ++i)
            if (q_seq.data()[i] < 0 || q_seq.data()[i] >= 64) throw py::value_error("sequence ids must be in [0, 64)");
        const int64_t nt = q.shape(0), nh = q.shape(1), hd = q.shape(2), nkv = k.shape(0), nhkv = k.shape(1);
        py::array_t<float> out({nt, nh, hd});
        VisibleCells vis;
        visible_cells(kv_pos.data(), kv_seq.data(), nkv, q_pos.data(), q_seq.data(), nt, window, vis);
        AttentionArgs a{};
        a.q = q.data();
        const size_t row = sizeof(uint16_t) * hd;
        a.kv = KvView{reinterpret_cast<const uint8_t*>(k.data()), reinterpret_cast<const uint8_t*>(v.data()),
                      GgmlType::F16, GgmlType::F16, row, row, row * nhkv, row * nhkv};
        a.cells = vis.cells.data();
        a.begin = vis.begin.data();
        a.end = vis.end.data();
        a.out = out.mutable_data();
        a.n_tokens = nt;
        a.n_head = nh;
        a.n_head_kv = nhkv;
        a.head_dim_k = a.head_dim_v = hd;
        a.scale = scale;
        a.softcap = softcap;
        py::gil_scoped_release r;
        attention(a, default_pool(), kernels());
        return out;
    }, py::arg("q"), py::arg("k"), py::arg("v"), py::arg("q_pos"), py::arg("q_seq"), py::arg("kv_pos"),
       py::arg("kv_seq"), py::kw_only(), py::arg("scale"), py::arg("softcap") = 0.0f, py::arg("window") = 0,
       "Causal GQA attention of q (n_tokens, n_head, hd) over F16 K/V (n_kv, n_head_kv, hd) given as uint16 bits.");
}
