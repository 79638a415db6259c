// KvCache: the cell bookkeeping (usable with no model) and its layer storage.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "../kernels/kernels.h"
#include "../kv_cache.h"

using namespace pyllama;

namespace {

void check_cell(const KvCache& kv, int64_t layer, int64_t cell) {
    if (layer < 0 || layer >= kv.n_layer() || cell < 0 || cell >= kv.size())
        throw py::index_error("layer or cell index out of range");
}

// One cell's K (or V) of one layer: its element type, bytes and elements.
struct CellRow {
    GgmlType type;
    uint8_t* data;
    int64_t elems;
};

CellRow cell_row(KvCache& kv, int64_t layer, int64_t cell, bool is_k) {
    check_cell(kv, layer, cell);
    const KvView v = kv.view(layer);
    const GgmlType t = is_k ? v.type_k : v.type_v;
    const TypeTraits* tr = type_traits((uint32_t)t);
    const size_t bytes = is_k ? v.k_cell_bytes : v.v_cell_bytes;
    return {t, is_k ? kv.k_cell(layer, cell) : kv.v_cell(layer, cell), (int64_t)(bytes / tr->type_size) * tr->block_size};
}

FloatArray get_cell(KvCache& kv, int64_t layer, int64_t cell, bool is_k) {
    const CellRow r = cell_row(kv, layer, cell, is_k);
    FloatArray out(r.elems);
    kernels().dequantize[(int)r.type](r.data, out.mutable_data(), r.elems);
    return out;
}

void set_cell(KvCache& kv, int64_t layer, int64_t cell, bool is_k, const FloatArray& x) {
    const CellRow r = cell_row(kv, layer, cell, is_k);
    if (x.size() != r.elems) throw py::value_error("wrong number of elements for one cell");
    kernels().quantize[(int)r.type](x.data(), r.data, r.elems);
}

}  // namespace

void register_kv_cache(py::module_& m) {
    py::register_exception<KvCacheError>(m, "KvCacheError", PyExc_ValueError);
    py::class_<KvLayerSpec>(m, "KvLayerSpec", "Shape and RoPE of one layer's cache.")
        .def(py::init([](int64_t n_head_kv, int64_t head_dim_k, int64_t head_dim_v, int64_t n_rot, float rope_base,
                         float rope_scale, bool rope_neox) {
                 return KvLayerSpec{n_head_kv, head_dim_k, head_dim_v, n_rot, rope_base, rope_scale, rope_neox, {}};
             }),
             py::kw_only(), py::arg("n_head_kv") = 1, py::arg("head_dim_k") = 32, py::arg("head_dim_v") = 32,
             py::arg("n_rot") = 0, py::arg("rope_base") = 10000.0f, py::arg("rope_scale") = 1.0f,
             py::arg("rope_neox") = false);

    py::class_<KvCache>(m, "KvCache",
                        "n_ctx cells shared by all sequences (ids 0..63); position ranges are [p0, p1) with "
                        "negative bounds meaning open, seq < 0 meaning every sequence.")
        .def(py::init([](int64_t n_ctx, std::vector<KvLayerSpec> layers, const std::string& tk, const std::string& tv) {
                 return new KvCache(n_ctx, std::move(layers), kv_cache_type(tk), kv_cache_type(tv));
             }),
             py::arg("n_ctx"), py::kw_only(), py::arg("layers") = std::vector<KvLayerSpec>{},
             py::arg("type_k") = "f16", py::arg("type_v") = "f16")
        .def_property_readonly("size", &KvCache::size)
        .def_property_readonly("n_used", &KvCache::n_used)
        .def_property_readonly("n_layer", &KvCache::n_layer)
        .def_property_readonly("memory_bytes", &KvCache::memory_bytes)
        .def_property_readonly("cell_bytes", &KvCache::cell_bytes, "bytes of K and V per cell, over all layers")
        .def_property_readonly("type_k", [](const KvCache& kv) { return (uint32_t)kv.type_k(); }, "ggml type of K")
        .def_property_readonly("type_v", [](const KvCache& kv) { return (uint32_t)kv.type_v(); }, "ggml type of V")
        .def("cells", [](const KvCache& kv) {
            IntArray pos(kv.size());
            SeqArray seqs(kv.size());
            std::copy(kv.pos_data(), kv.pos_data() + kv.size(), pos.mutable_data());
            std::copy(kv.seqs_data(), kv.seqs_data() + kv.size(), seqs.mutable_data());
            return py::make_tuple(pos, seqs);
        }, "(pos, seqs) of every cell: pos -1 = empty, seqs a bit set of sequence ids.")
        .def("find_slot", [](KvCache& kv, IntArray pos, SeqArray seqs) -> py::object {
            if (pos.size() != seqs.size()) throw py::value_error("pos and seqs must have the same length");
            IntArray cells(pos.size());
            if (!kv.find_slot(pos.data(), seqs.data(), pos.size(), cells.mutable_data())) return py::none();
            return std::move(cells);
        }, py::arg("pos"), py::arg("seqs"), "Claim a cell per token; the cell indices, or None when full.")
        .def("seq_rm", &KvCache::seq_rm, py::arg("seq"), py::arg("p0") = -1, py::arg("p1") = -1)
        .def("seq_cp", &KvCache::seq_cp, py::arg("src"), py::arg("dst"), py::arg("p0") = -1, py::arg("p1") = -1)
        .def("seq_keep", &KvCache::seq_keep, py::arg("seq"))
        .def("seq_add", &KvCache::seq_add, py::arg("seq"), py::arg("p0"), py::arg("p1"), py::arg("delta"),
             "Shift positions in [p0, p1) by delta, re-rotating K; cells pushed below 0 are removed.")
        .def("seq_div", &KvCache::seq_div, py::arg("seq"), py::arg("p0"), py::arg("p1"), py::arg("d"))
        .def("seq_pos_min", &KvCache::seq_pos_min, py::arg("seq"))
        .def("seq_pos_max", &KvCache::seq_pos_max, py::arg("seq"))
        .def("seq_n_cells", &KvCache::seq_n_cells, py::arg("seq"))
        .def("clear", &KvCache::clear)
        .def("fragmentation", &KvCache::fragmentation)
        .def("defrag", &KvCache::defrag, py::call_guard<py::gil_scoped_release>())
        .def("seq_save", [](const KvCache& kv, int seq) {
            std::vector<uint8_t> b;
            {
                py::gil_scoped_release r;
                b = kv.seq_save(seq);
            }
            return py::bytes(reinterpret_cast<const char*>(b.data()), b.size());
        }, py::arg("seq"), "One sequence's cells (positions, K, V) as bytes.")
        .def("seq_restore", [](KvCache& kv, int seq, py::bytes data) {
            std::string s = data;
            py::gil_scoped_release r;
            kv.seq_restore(seq, reinterpret_cast<const uint8_t*>(s.data()), s.size());
        }, py::arg("seq"), py::arg("data"), "Load a saved state into an empty sequence.")
        .def("get_k", [](KvCache& kv, int64_t layer, int64_t cell) { return get_cell(kv, layer, cell, true); },
             py::arg("layer"), py::arg("cell"), "K of one cell as floats (n_head_kv * head_dim_k).")
        .def("set_k", [](KvCache& kv, int64_t layer, int64_t cell, FloatArray x) { set_cell(kv, layer, cell, true, x); },
             py::arg("layer"), py::arg("cell"), py::arg("x"))
        .def("get_v", [](KvCache& kv, int64_t layer, int64_t cell) { return get_cell(kv, layer, cell, false); },
             py::arg("layer"), py::arg("cell"))
        .def("set_v", [](KvCache& kv, int64_t layer, int64_t cell, FloatArray x) { set_cell(kv, layer, cell, false, x); },
             py::arg("layer"), py::arg("cell"), py::arg("x"))
        .def("visible", [](const KvCache& kv, IntArray q_pos, IntArray q_seq, int32_t window) {
            if (q_pos.size() != q_seq.size()) throw py::value_error("q_pos and q_seq must have the same length");
            for (py::ssize_t i = 0; i < q_seq.size(); ++i)
                if (q_seq.data()[i] < 0 || q_seq.data()[i] >= kMaxSeq) throw py::value_error("sequence id out of range");
            VisibleCells vc;
            kv.visible(q_pos.data(), q_seq.data(), q_pos.size(), window, vc);
            py::list out;
            for (py::ssize_t t = 0; t < q_pos.size(); ++t)
                out.append(std::vector<int32_t>(vc.cells.begin() + vc.begin[t], vc.cells.begin() + vc.end[t]));
            return out;
        }, py::arg("q_pos"), py::arg("q_seq"), py::kw_only(), py::arg("window") = 0,
           "Per query token, the cells it attends to, in position order.");
}
